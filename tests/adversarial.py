"""Build submissions that attack or break the autograder, from the released notebook 00.

Each case is one student folder. ``EXPECTED`` says what the grader must make of it: the
score, and a piece of text its report line (status, failures or flags) must contain.
Used by tests/test_grading_safety.py and tests/benchmark_grading.py.
"""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
A = "00-start-here"
RELEASED = ROOT / "course" / A / f"{A}.ipynb"
SOLVED = "def sgd_update(w, grad, lr):\n    return w - lr * grad\n"
WRONG = "def sgd_update(w, grad, lr):\n    return w\n"  # passes nothing... unless the tests are rigged

# student -> code for the solution cell (``sgd_update``)
SOLUTION_CELLS = {
    "solved": SOLVED,
    "blank": None,  # the released notebook as handed out
    # -- faults -------------------------------------------------------------------------
    "infinite-loop": "def sgd_update(w, grad, lr):\n    while True:\n        pass\n",
    "os-exit": "import os\nos._exit(3)\n" + SOLVED,
    "segfault": "import ctypes\nctypes.string_at(0)\n" + SOLVED,
    "memory-bomb": "blocks = []\nwhile True:\n    blocks.append(bytearray(2**27))\n" + SOLVED,
    "fork-bomb": "import os\nwhile True:\n    os.fork()\n" + SOLVED,
    "sys-exit-after-answer": SOLVED + "import sys\nsys.exit(0)\n",
    "hidden-tests-fail": "def sgd_update(w, grad, lr):\n    return w - lr * grad if lr != 0.5 else w\n",
    # -- tampering: each would pass the visible test, or print success, without the guard --
    "patch-assert-helper": "import lrcourse.checks\nimport numpy\n"
                           "lrcourse.checks.assert_close = lambda *args, **kwargs: None\n" + WRONG,
    "patch-numpy-math-abs": "import builtins, math, numpy\nnumpy.allclose = lambda *a, **k: True\n"
                            "numpy.array_equal = lambda *a, **k: True\nmath.isclose = lambda *a, **k: True\n"
                            "builtins.abs = lambda x: 0\n" + WRONG,
    "hide-tracebacks": "ip = get_ipython()\nip.showtraceback = lambda *a, **k: None\n"
                       "ip._showtraceback = lambda *a, **k: None\n" + WRONG,
    "swallow-errors": "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)\n" + WRONG,
    "eq-always-true": "class Anything(float):\n    def __eq__(self, other):\n        return True\n"
                      "def sgd_update(w, grad, lr):\n    return Anything(0)\n",
    "prints-passed": WRONG + "print('All tests passed!')\n",
    "rewrites-tests": "def _drop_asserts(lines):\n    return ['pass\\n'] if any('assert' in l for l in lines) else lines\n"
                      "get_ipython().input_transformers_post.append(_drop_asserts)\n" + WRONG,
    "rebinds-np": "class _Yes:\n    def __getattr__(self, name):\n        return lambda *a, **k: True\n"
                  "np = _Yes()\n" + WRONG,
}

# student -> (score, text the report line must contain)
EXPECTED = {
    "solved": (1, "all passed"),
    "blank": (0, "NotImplementedError"),
    "infinite-loop": (0, "timed out"),
    "os-exit": (0, "kernel died"),
    "segfault": (0, "kernel died"),
    "memory-bomb": (0, "MemoryError"),
    "fork-bomb": (0, "test_sgd_update"),
    "sys-exit-after-answer": (1, "all passed"),
    "hidden-tests-fail": (0, "test_sgd_update"),
    "patch-assert-helper": (0, "lrcourse.checks.assert_close was replaced"),
    "patch-numpy-math-abs": (0, "math.isclose was replaced"),
    "hide-tracebacks": (0, "showtraceback was replaced"),
    "swallow-errors": (0, "custom exception handler"),
    "eq-always-true": (0, "defines __eq__"),
    "prints-passed": (0, "looks like a test result"),
    "rewrites-tests": (0, "input_transformers_post were changed"),
    "rebinds-np": (0, "'np', which the tests use, was redefined"),
    # folders and files
    "renamed-notebook": (1, "all passed"),
    "deleted-test-cell": (0, "NotImplementedError"),
    "edited-test-cell": (0, "test_sgd_update"),
    "malformed-json": (0, "malformed JSON"),
    "wrong-assignment": (0, "holds the notebook of 01-why-lr-matters"),
    "no-notebook": (0, "missing"),
    "empty-folder": (0, "missing"),
    "symlink-to-solved-work": (0, "symbolic link: not graded"),
}
TAMPERING = ["patch-assert-helper", "patch-numpy-math-abs", "hide-tracebacks", "swallow-errors",
             "eq-always-true", "prints-passed", "rewrites-tests", "rebinds-np"]


def released() -> dict:
    return json.loads(RELEASED.read_text())


def with_cell(nb: dict, grade_id: str, source: str | None = None, delete: bool = False) -> dict:
    nb = json.loads(json.dumps(nb))
    cells = []
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            if delete:
                continue
            cell["source"] = source
        cells.append(cell)
    nb["cells"] = cells
    return nb


def write(path: Path, nb: dict | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nb if isinstance(nb, str) else json.dumps(nb, indent=1))


def build(subs: Path, only: list[str] | None = None) -> list[str]:
    """Write every case (or ``only`` these) as SUBS/<student>/...; return the student names."""
    base = released()
    names = [s for s in EXPECTED if only is None or s in only]
    for student in names:
        folder = subs / student
        if student in SOLUTION_CELLS:
            code = SOLUTION_CELLS[student]
            nb = base if code is None else with_cell(base, "sgd_update", code)
            write(folder / A / f"{A}.ipynb", nb)
        elif student == "renamed-notebook":
            write(folder / "my homework (final).ipynb", with_cell(base, "sgd_update", SOLVED))
        elif student == "deleted-test-cell":
            write(folder / f"{A}.ipynb", with_cell(base, "test_sgd_update", delete=True))
        elif student == "edited-test-cell":
            write(folder / f"{A}.ipynb", with_cell(with_cell(base, "sgd_update", WRONG), "test_sgd_update", "pass\n"))
        elif student == "malformed-json":
            write(folder / f"{A}.ipynb", '{"cells": [ {"cell_type": "code", ')
        elif student == "wrong-assignment":
            other = ROOT / "course" / "01-why-lr-matters" / "01-why-lr-matters.ipynb"
            write(folder / f"{A}.ipynb", other.read_text())
        elif student == "no-notebook":
            write(folder / "notes.txt", "I could not get the notebook to save, sorry!\n")
        elif student == "empty-folder":
            folder.mkdir(parents=True, exist_ok=True)
        elif student == "symlink-to-solved-work":  # points at someone else's solved notebook
            solved = subs / ".elsewhere" / f"{A}.ipynb"
            write(solved, with_cell(base, "sgd_update", SOLVED))
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{A}.ipynb").symlink_to(solved)
    return names


def probe_submission(folder: Path, secret_paths: dict[str, str]) -> None:
    """A student whose code looks for what it should not reach, then answers correctly.

    Its solution cell prints one JSON line: for each named path whether it can be read,
    whether the network answers, which user it runs as, and what the environment holds.
    """
    code = (
        "import json, os, socket\n"
        f"paths = {secret_paths!r}\n"
        "seen = {name: os.path.exists(p) for name, p in paths.items()}\n"
        "def reach(host, port):\n"
        "    try:\n"
        "        socket.create_connection((host, port), timeout=3).close()\n"
        "        return True\n"
        "    except OSError:\n"
        "        return False\n"
        "seen['network'] = reach('1.1.1.1', 53) or reach('127.0.0.1', 22)\n"
        "seen['uid'] = os.getuid()\n"
        "seen['env'] = sorted(os.environ)\n"
        "try:\n"
        "    open('written-by-the-kernel.txt', 'w').write('x')\n"
        "except OSError:\n"
        "    pass\n"
        "print('PROBE ' + json.dumps(seen))\n" + SOLVED
    )
    write(folder / A / f"{A}.ipynb", with_cell(released(), "sgd_update", code))
