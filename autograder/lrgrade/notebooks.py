"""Notebook sources: jupytext percent files in ``solutions/`` built into .ipynb.

``solutions/NN-topic/NN-topic.py`` is the single source of truth for a notebook. Cells
carry nbgrader metadata in their header, written short::

    # %% nbgrader={"grade_id": "gd_trajectory", "solution": true}
    # %% nbgrader={"grade_id": "test_gd_trajectory", "grade": true, "points": 2}
    # %% nbgrader={"grade_id": "setup", "locked": true}

and :func:`build_notebook` fills in the rest of nbgrader's schema (version 3).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import jupytext
import nbformat

REPO = Path(__file__).resolve().parents[2]
# Where the sources and the handout are unless the caller says otherwise (`lrgrade
# --solutions DIR --course DIR`).
SOLUTIONS = REPO / "solutions"
COURSE = REPO / "course"
CONFIG = REPO / "autograder" / "nbgrader_config.py"
METADATA_KEY = "lr_schedules"  # notebook metadata: {"assignment": "NN-topic"}
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"  # nbgrader's markers

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}

_ASSIGNMENT = re.compile(r"^\d\d-[a-z0-9-]+$")
_GRADE_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def cache_dir(kind: str) -> Path | None:
    """Where lrgrade keeps what it can rebuild (``kind``: "mutation", "fonts", "pins"):
    $LRGRADE_CACHE/KIND, by default ~/.cache/lr-schedules/KIND; LRGRADE_CACHE=off keeps none."""
    root = os.environ.get("LRGRADE_CACHE") or str(Path.home() / ".cache" / "lr-schedules")
    return None if root == "off" else Path(root) / kind


class SourceError(ValueError):
    """A notebook source breaks the course's conventions."""


def assignments(root: Path = SOLUTIONS) -> list[str]:
    """The assignment folders under ``root`` (``NN-topic``), in order."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _ASSIGNMENT.match(p.name))


def source_path(assignment: str, root: Path = SOLUTIONS) -> Path:
    return root / assignment / f"{assignment}.py"


def _normalise(meta: dict, where: str) -> dict:
    unknown = set(meta) - {"grade_id", "solution", "grade", "points", "locked", "task"}
    if unknown:
        raise SourceError(f"{where}: unknown nbgrader keys {sorted(unknown)}")
    grade_id = meta.get("grade_id")
    if not grade_id or not _GRADE_ID.match(grade_id):
        raise SourceError(f"{where}: every nbgrader cell needs a grade_id of letters, digits, _ or -")
    solution, grade, task = bool(meta.get("solution")), bool(meta.get("grade")), bool(meta.get("task"))
    out = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": bool(meta.get("locked", not solution)),
        "schema_version": 3,
        "solution": solution,
        "task": task,
    }
    if grade:
        points = meta.get("points")
        if not isinstance(points, (int, float)) or points <= 0:
            raise SourceError(f"{where} ({grade_id}): a graded cell needs points > 0")
        out["points"] = points
    elif "points" in meta:
        raise SourceError(f"{where} ({grade_id}): points only make sense on a graded cell")
    return out


def build_notebook(path: Path, assignment: str | None = None) -> nbformat.NotebookNode:
    """Read a percent-format source and return the instructor notebook (with solutions)."""
    path = Path(path)
    assignment = assignment or path.parent.name
    nb = jupytext.read(path, fmt="py:percent")
    seen: set[str] = set()
    for index, cell in enumerate(nb.cells):
        where = f"{path.name}, cell {index}"
        meta, tags = cell.metadata.get("nbgrader"), cell.metadata.get("tags")
        cell.metadata = {"tags": list(tags)} if tags else {}  # tags: "illustration" (nbgrader_config.py)
        cell.id = f"cell-{index:03d}"
        if meta is None:
            continue
        meta = _normalise(meta, where)
        if meta["grade_id"] in seen:
            raise SourceError(f"{where}: grade_id {meta['grade_id']!r} is used twice")
        seen.add(meta["grade_id"])
        if meta["solution"] and cell.cell_type == "code" and "### BEGIN SOLUTION" not in cell.source:
            raise SourceError(f"{where} ({meta['grade_id']}): a solution cell needs ### BEGIN/END SOLUTION")
        if HIDDEN_BEGIN in cell.source and not meta["grade"]:
            raise SourceError(f"{where} ({meta['grade_id']}): hidden tests belong in a graded cell")
        cell.metadata["nbgrader"] = meta
        cell.id = meta["grade_id"]
    nb.metadata = {
        "kernelspec": KERNELSPEC,
        "language_info": {"name": "python"},
        METADATA_KEY: {"assignment": assignment},
    }
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)
    return nb


def write_notebook(nb: nbformat.NotebookNode, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


class NotebookError(ValueError):
    """A file that is not a readable notebook of this course."""


def read_any(path: Path) -> nbformat.NotebookNode:
    """Read a notebook, with a clear error if it is not valid notebook JSON."""
    try:
        return nbformat.read(str(path), as_version=4)
    except FileNotFoundError:
        raise NotebookError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError, nbformat.reader.NotJSONError) as err:
        raise NotebookError(f"{path.name}: not a notebook (malformed JSON)") from err
    except Exception as err:  # nbformat raises several kinds for a broken file
        raise NotebookError(f"{path.name}: not a readable notebook ({type(err).__name__}: {err})") from err


def assignment_of(nb: nbformat.NotebookNode | None, path: Path, known: list[str]) -> str:
    """Which assignment a notebook belongs to: its metadata, else its file name."""
    meta = nb.metadata.get(METADATA_KEY, {}) if nb is not None else {}
    name = meta.get("assignment") if isinstance(meta, dict) else None
    if name in known:
        return name
    stem = Path(path).stem
    for candidate in known:  # "01-why-lr-matters (1).ipynb", "01-why-lr-matters-alice.ipynb"
        if stem.startswith(candidate) or stem.startswith(candidate[:2] + "-"):
            return candidate
    raise NotebookError(
        f"{Path(path).name}: cannot tell which assignment this is (known: {', '.join(known)}). "
        "Was it saved from a course notebook?"
    )
