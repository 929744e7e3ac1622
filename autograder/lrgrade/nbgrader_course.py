"""A throw-away nbgrader course directory, driven through nbgrader's own commands.

Every tool (release, check, grade, course-dir) builds one of these: the config from
``autograder/nbgrader_config.py``, ``source/<A>/<A>.ipynb`` for each assignment, and a
gradebook filled by ``nbgrader generate_assignment``. Each nbgrader command runs in its
own process (``lrgrade.nbgrader_runner``, which keeps nbgrader imported between commands),
so a student's notebook that crashes or hangs a kernel cannot take the grading tool down
with it.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry

from .nbgrader_runner import NbgraderTimeout, nbgrader_env, runner_for
from .notebooks import CONFIG, write_notebook
from .preprocessors import error_outputs


def course_config():
    """``autograder/nbgrader_config.py``, loaded as nbgrader loads it (a traitlets Config)."""
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader(CONFIG.name, str(CONFIG.parent)).load_config()


def source_files(folder: Path) -> list[tuple[str, Path]]:
    """(path relative to ``folder``, path) of every file under it, in order, but hidden files
    and ``__pycache__``: what a digest of code or data covers, wherever the folder lies."""
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            found.append((str(rel), path))
    return found


def code_digest(config=None) -> bytes:
    """A digest of the code a verdict depends on: the grader's own, nbgrader_config.py, and
    the course's folders that the kernel reads (``SandboxKernelManager.read_only``: for this
    course lrcourse and data/), with the versions of Python and the installed packages."""
    import hashlib
    from importlib.metadata import distributions

    config = config or course_config()
    folders = [Path(__file__).parent] + [Path(p) for p in config.SandboxKernelManager.get("read_only", [])]
    digest = hashlib.sha256(CONFIG.read_bytes())
    for folder in folders:  # named relative to the folder: a clone elsewhere has the same digest
        for rel, path in source_files(folder):
            digest.update(f"{folder.name}/{rel}".encode() + b"\0" + path.read_bytes())
    installed = sorted(f"{d.metadata['Name']}=={d.version}" for d in distributions())
    digest.update("\n".join([sys.version, *installed]).encode())
    return digest.digest()


@dataclass
class TestResult:
    grade_id: str
    score: float
    max_score: float
    message: str  # why it failed ("" when it passed)
    manual: bool = False  # graded by a person (a written answer), not by a test
    pending: bool = False  # a written answer that still waits for its grader

    @property
    def passed(self) -> bool:
        return self.score >= self.max_score


@dataclass
class NotebookResult:
    student: str
    assignment: str
    score: float
    max_score: float
    status: str  # "graded", or what went wrong
    tests: list[TestResult]

    @property
    def pending_manual(self) -> float:
        """Points that wait for a person: written answers nobody has graded yet."""
        return sum(t.max_score for t in self.tests if t.pending)


class NbgraderCourse:
    def __init__(self, root: Path, cell_timeout: int | None = None, env: dict[str, str] | None = None,
                 cell_cpu: float | None = None):
        self.root = Path(root).resolve()
        self.cell_timeout = cell_timeout  # wall-clock backstop per cell (seconds)
        self.cell_cpu = cell_cpu          # CPU seconds per cell
        self.env = dict(env or {})  # extra variables for nbgrader (the sandbox settings)

    # -- set-up ----------------------------------------------------------------------
    def create(self, sources: dict[str, nbformat.NotebookNode]) -> "NbgraderCourse":
        """Write the config and the source notebooks and register every assignment."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_config()
        for assignment, nb in sources.items():
            write_notebook(nb, self.root / "source" / assignment / f"{assignment}.ipynb")
            self.run("generate_assignment", assignment, "--force", check=True)
        return self

    def _write_config(self, root: Path | None = None) -> None:
        """Write nbgrader_config.py; ``root`` is where the folder will be (default: where it is)."""
        config = CONFIG.read_text() + f"\nc.CourseDirectory.root = {str(root or self.root)!r}\n"
        if self.cell_timeout:
            config += f"c.Execute.timeout = {int(self.cell_timeout)}\n"
        if self.cell_cpu:
            config += f"c.TrustedExecute.cpu_limit = {float(self.cell_cpu)!r}\n"
        (self.root / "nbgrader_config.py").write_text(config)

    def clone(self, dest: Path, env: dict[str, str] | None = None) -> "NbgraderCourse":
        """A copy of this course (config, sources, release, gradebook) with no submissions:
        a private course for one grading worker, so that workers never share a gradebook."""
        dest = Path(dest).resolve()
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for name in ("source", "release"):
            if (self.root / name).is_dir():
                shutil.copytree(self.root / name, dest / name)
        shutil.copyfile(self.root / "gradebook.db", dest / "gradebook.db")
        course = NbgraderCourse(dest, self.cell_timeout, env, self.cell_cpu)
        course._write_config()
        return course

    def run(self, *args: str, timeout: float | None = None, check: bool = False) -> subprocess.CompletedProcess:
        """Run one nbgrader command in this course directory (its log is the result's stderr)."""
        env = nbgrader_env()
        env.pop("NBGRADER_EXECUTION", None)
        env.update(self.env)
        try:
            proc = runner_for(env).run(list(args), cwd=self.root, timeout=timeout)
        except NbgraderTimeout as err:
            raise NbgraderTimeout(f"nbgrader {' '.join(args)} {err}") from err
        if check and proc.returncode != 0:
            raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{proc.stderr}")
        return proc

    # -- grading ---------------------------------------------------------------------
    def submit(self, student: str, assignment: str, nb: nbformat.NotebookNode,
               receipt: dict[str, str] | None = None) -> None:
        """Hand in ``nb``, with the exchange's receipt files (name -> text), if any."""
        folder = self.root / "submitted" / student / assignment
        if folder.exists():
            shutil.rmtree(folder)
        write_notebook(nb, folder / f"{assignment}.ipynb")
        for name, text in (receipt or {}).items():
            (folder / name).write_text(text)

    def autograde(self, student: str, assignment: str, timeout: float) -> str:
        """Autograde one submission; return "" on success, else what went wrong."""
        try:
            proc = self.run("autograde", assignment, "--student", student, "--force", timeout=timeout)
        except NbgraderTimeout as err:
            return f"stopped: {err}"
        produced = (self.root / "autograded" / student / assignment / f"{assignment}.ipynb").is_file()
        if proc.returncode != 0 or not produced:
            log = proc.stderr
            if "DeadKernelError" in log or "Kernel died" in log:
                return ("not graded: the kernel died while the notebook ran (os._exit, a crash such as "
                        "a segfault, or the memory limit), so no cell after that one could run")
            return "not graded: " + last_error(log)
        return ""

    def feedback(self, student: str, assignment: str) -> Path | None:
        self.run("generate_feedback", assignment, "--student", student, "--force", timeout=300)
        html = self.root / "feedback" / student / assignment / f"{assignment}.html"
        return html if html.is_file() else None

    def result(self, student: str, assignment: str, status: str) -> NotebookResult:
        """Scores from the gradebook, failure messages from the executed notebook."""
        messages = _failure_messages(self.root / "autograded" / student / assignment / f"{assignment}.ipynb")
        tests: list[TestResult] = []
        with Gradebook(f"sqlite:///{self.root / 'gradebook.db'}") as gb:
            max_score = gb.find_assignment(assignment).max_score
            try:
                nb = gb.find_submission_notebook(assignment, assignment, student)
            except MissingEntry:
                nb = None
            if nb is not None and not status:
                for grade in nb.grades:
                    if grade.max_score == 0:
                        continue
                    if grade.cell_type != "code":  # a written answer, graded by a person
                        if grade.manual_score is not None:
                            tests.append(TestResult(grade.name, float(grade.manual_score), float(grade.max_score),
                                                    "", manual=True))
                        elif grade.auto_score is None:
                            tests.append(TestResult(grade.name, 0.0, float(grade.max_score),
                                                    "needs manual grading", manual=True, pending=True))
                        else:  # nbgrader gives 0 at once to an answer left as "YOUR ANSWER HERE"
                            tests.append(TestResult(grade.name, 0.0, float(grade.max_score),
                                                    "not answered", manual=True))
                        continue
                    score = grade.score if grade.score is not None else 0.0
                    tests.append(TestResult(grade.name, float(score), float(grade.max_score),
                                            messages.get(grade.name, "")))
        order = _grade_order(self.root / "source" / assignment / f"{assignment}.ipynb")
        tests.sort(key=lambda t: order.get(t.grade_id, 1e9))
        score = sum(t.score for t in tests)
        return NotebookResult(student, assignment, score, float(max_score), status or "graded", tests)


def _grade_order(source: Path) -> dict[str, int]:
    nb = nbformat.read(str(source), as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: i for i, c in enumerate(nb.cells) if "nbgrader" in c.metadata}


def _failure_messages(autograded: Path) -> dict[str, str]:
    """grade_id -> a one-line reason, read from the error outputs of graded cells (which
    the grader writes itself: see lrgrade.preprocessors.TrustedExecute)."""
    if not autograded.is_file():
        return {}
    nb = nbformat.read(str(autograded), as_version=4)
    messages = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade") or cell.cell_type != "code":
            continue
        errors = error_outputs(cell)
        if errors:
            lines = str(errors[0].get("evalue", "")).strip().splitlines() or [errors[0].get("ename", "failed")]
            more = sum(1 for ln in lines[1:] if ln.startswith("- "))
            messages[meta["grade_id"]] = lines[0] + (f" (and {more} more: see the feedback)" if more else "")
    return messages


def last_error(text: str) -> str:
    """The most telling line of nbgrader's log: the last exception it printed."""
    exceptions = re.findall(r"^\s*((?:[\w.]+)(?:Error|Exception|Exit)\b.*)$", text, flags=re.M)
    if exceptions:
        return exceptions[-1].strip()[:300]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "unknown error"
