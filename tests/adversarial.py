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
    "sleeps-forever": "import time\nwhile True:\n    time.sleep(1)\n" + SOLVED,
    "os-exit": "import os\nos._exit(3)\n" + SOLVED,
    "segfault": "import ctypes\nctypes.string_at(0)\n" + SOLVED,
    "memory-bomb": "blocks = []\nwhile True:\n    blocks.append(bytearray(2**27))\n" + SOLVED,
    "fork-bomb": "import os\nwhile True:\n    os.fork()\n" + SOLVED,
    "sys-exit-after-answer": SOLVED + "import sys\nsys.exit(0)\n",
    "hidden-tests-fail": "def sgd_update(w, grad, lr):\n    return w - lr * grad if lr != 0.5 else w\n",
    "huge-error": "raise ValueError('x' * 40_000_000)\n",
    # -- honest work that is noisy: must keep its points, unflagged ------------------------
    "honest-large-output": "for i in range(20_000):\n    print('debug', i, 'x' * 50)\n"
                           "def sgd_update(w, grad, lr):\n    print('sgd_update got', w, grad, lr, '.' * 2000)\n"
                           "    return w - lr * grad\n",
    # -- tampering: each rigs, forges or reads what the tests use; none has a working answer --
    "patch-assert-helper": "import lrcourse.checks\nimport numpy\n"
                           "lrcourse.checks.assert_close = lambda *args, **kwargs: None\n"
                           "lrcourse.checks.judge = lambda *args, **kwargs: None\n" + WRONG,
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
    # interpreter hooks: an audit hook and an import hook that replace the test helpers
    "interpreter-hooks": "import sys, types\n"
                         "def _rig(*a):\n    m = sys.modules.get('lrcourse.checks')\n"
                         "    if m is not None:\n        m.judge = lambda *a, **k: None\n        m.run_tests = lambda *a, **k: None\n"
                         "sys.addaudithook(lambda event, args: _rig())\n"
                         "sys.setprofile(lambda frame, event, arg: _rig())\n" + WRONG,
    # an object that goes looking for the expected value in its callers' frames
    "inspects-callers": "import sys\nclass Spy(float):\n"
                        "    def __new__(cls):\n        f, found = sys._getframe(1), 0.0\n"
                        "        while f is not None:\n            for k in ('expected', 'exp', 'want'):\n"
                        "                if isinstance(f.f_locals.get(k), (int, float)):\n"
                        "                    found = float(f.f_locals[k])\n            f = f.f_back\n"
                        "        return float.__new__(cls, found)\n"
                        "    def __eq__(self, other):\n        return True\n"
                        "def sgd_update(w, grad, lr):\n    return Spy()\n",
    # forged results: IPython's display replaced so that whatever the grader runs, it 'returns' 0.8
    "forges-results": "import IPython.display, json\n_real = IPython.display.publish_display_data\n"
                      "def _forge(data, *a, **k):\n"
                      "    for mime, text in list(data.items()):\n"
                      "        if 'lrgrade' in mime:\n"
                      "            data[mime] = json.dumps([{'value': 0.8} for _ in json.loads(text)])\n"
                      "    return _real(data, *a, **k)\n"
                      "IPython.display.publish_display_data = _forge\n"
                      "import lrcourse.checks\nlrcourse.checks.to_plain = lambda v: 0.8\n" + WRONG,
    # patches IPython's own machinery to skip any cell it did not write
    "patches-ipython": "ip = get_ipython()\n_run = type(ip).run_cell\n"
                       "def run_cell(self, raw_cell, *a, **k):\n"
                       "    if 'lrcourse' in raw_cell:\n        raw_cell = 'None'\n"
                       "    return _run(self, raw_cell, *a, **k)\n"
                       "type(ip).run_cell = run_cell\n" + WRONG,
    # a thread that rigs the helpers and publishes forged results only while tests run
    "racing-thread": "import threading, time, sys, json\nfrom IPython.display import publish_display_data\n"
                     "def _race():\n    while True:\n        m = sys.modules.get('lrcourse.checks')\n"
                     "        if m is not None:\n            m.judge = lambda *a, **k: None\n"
                     "            m.assert_close = lambda *a, **k: None\n"
                     "        f = sys._current_frames().get(threading.main_thread().ident)\n"
                     "        if f is not None and 'run_in_kernel' in str(f.f_code.co_names):\n"
                     "            publish_display_data({'text/x-lrgrade-results': json.dumps([{'value': 0.8}] * 6)})\n"
                     "        time.sleep(0.001)\n"
                     "threading.Thread(target=_race, daemon=True).start()\n" + WRONG,
    # looks for the instructor's notebook (this assignment's hidden tests) in every folder it
    # can read, and prints it
    "reads-files": "import os\nfound = []\n"
                   "for top in ('.', '..', '../..', '../../..', '/tmp', os.path.expanduser('~')):\n"
                   "    for base, dirs, files in os.walk(top):\n"
                   "        for name in files:\n"
                   "            if name.endswith(('.ipynb', '.py', '.db')):\n"
                   "                try:\n                    text = open(os.path.join(base, name), errors='replace').read()\n"
                   "                except OSError:\n                    continue\n"
                   "                if 'BEGIN ' + 'HIDDEN TESTS' in text and 'sgd_update' in text:\n"
                   "                    found.append(os.path.join(base, name))\n                    print(text[:2000])\n"
                   "print('FOUND', found)\n" + WRONG,
    # active content in outputs
    "active-content": "from IPython.display import HTML, Javascript, display, Markdown, SVG\n"
                      "display(HTML('<script>window.PWNED_HTML=1</script><img src=x onerror=\"PWNED_IMG\">'))\n"
                      "display(Javascript('window.PWNED_JS = 1'))\n"
                      "display(Markdown('[link](javascript:PWNED_MD)'))\n"
                      "display({'image/png': '\"><script>PWNED_PNG</script>'}, raw=True)\n"
                      "print('<script>PWNED_PRINT</script>')\n" + WRONG,
    # files in memory-backed folders count against the limits; the answer itself is right
    "fills-scratch": "import os\nwritten = {}\n"
                     "for top in ('/tmp', '/dev/shm', '.'):\n    n = 0\n"
                     "    for i in range(40):\n        try:\n"
                     "            with open(os.path.join(top, f'fill-{i}'), 'wb') as fh:\n"
                     "                fh.write(b'x' * 50_000_000)\n            n += 50\n"
                     "        except OSError:\n            break\n    written[top] = n\n"
                     "print('WRITTEN', written)\n" + SOLVED,
}

# student -> (score, text the report line must contain)
EXPECTED = {
    "solved": (1, "all passed"),
    "blank": (0, "NotImplementedError"),
    "infinite-loop": (0, "CPU time limit hit in test_sgd_update"),
    "sleeps-forever": (0, "wall-clock backstop hit in sgd_update"),
    "os-exit": (0, "kernel died"),
    "segfault": (0, "kernel died"),
    "memory-bomb": (0, "MemoryError"),
    "fork-bomb": (0, "test_sgd_update"),
    "sys-exit-after-answer": (1, "all passed"),
    "hidden-tests-fail": (0, "test_sgd_update (a hidden test failed"),
    "huge-error": (0, "cell sgd_update raised ValueError"),
    "honest-large-output": (1, "all passed"),
    "patch-assert-helper": (0, "test_sgd_update"),
    "patch-numpy-math-abs": (0, "test_sgd_update"),
    "hide-tracebacks": (0, "test_sgd_update"),
    "swallow-errors": (0, "test_sgd_update"),
    "eq-always-true": (0, "test_sgd_update"),
    "prints-passed": (0, "test_sgd_update"),
    "rewrites-tests": (0, "test_sgd_update"),
    "rebinds-np": (0, "test_sgd_update"),
    "interpreter-hooks": (0, "test_sgd_update"),
    "inspects-callers": (0, "test_sgd_update"),
    "forges-results": (0, "test_sgd_update"),
    "patches-ipython": (0, "test_sgd_update"),
    "racing-thread": (0, "test_sgd_update"),
    "reads-files": (0, "test_sgd_update"),
    "active-content": (0, "test_sgd_update"),
    "fills-scratch": (1, "all passed"),
    # folders, files and cells
    "renamed-notebook": (1, "all passed"),
    "deleted-test-cell": (0, "NotImplementedError"),
    "edited-test-cell": (0, "test_sgd_update"),
    "execute-result-in-test-cell": (0, "test_sgd_update"),
    "edited-setup-cell": (0, "NotImplementedError"),
    "answer-in-added-cell": (0, "NotImplementedError"),
    "injected-markdown": (0, "NotImplementedError"),
    "answer-metadata-changed": (0, "test_sgd_update"),
    "malformed-json": (0, "malformed JSON"),
    "wrong-assignment": (0, "holds the notebook of 01-why-lr-matters"),
    "no-notebook": (0, "missing"),
    "empty-folder": (0, "missing"),
    "symlink-to-solved-work": (0, "symbolic link: not graded"),
}
# The static scan should point an instructor at these (flags never change a score).
FLAGGED = ["patch-assert-helper", "patch-numpy-math-abs", "hide-tracebacks", "swallow-errors",
           "eq-always-true", "prints-passed", "rewrites-tests", "interpreter-hooks", "inspects-callers",
           "patches-ipython", "racing-thread"]
# Honest work: no flag.
HONEST = ["solved", "blank", "renamed-notebook", "sys-exit-after-answer", "hidden-tests-fail",
          "honest-large-output"]
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
        elif student == "execute-result-in-test-cell":  # nbgrader's partial credit reads a number here
            nb = with_cell(with_cell(base, "sgd_update", WRONG), "test_sgd_update", "1.0\n")
            test = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "test_sgd_update")
            test["outputs"] = [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                                "data": {"text/plain": "1.0"}}]
            write(folder / f"{A}.ipynb", nb)
        elif student == "edited-setup-cell":  # the answer, and a rigged helper, written into a locked cell
            nb = with_cell(base, "setup", "import numpy as np\nimport lrcourse.checks\n"
                           "lrcourse.checks.run_tests = lambda *a, **k: None\n" + SOLVED)
            write(folder / f"{A}.ipynb", nb)
        elif student in ("answer-in-added-cell", "injected-markdown"):
            nb = json.loads(json.dumps(base))
            index = next(i for i, c in enumerate(nb["cells"])
                         if c["metadata"].get("nbgrader", {}).get("grade_id") == "test_sgd_update")
            if student == "answer-in-added-cell":
                new = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": SOLVED}
            else:
                new = {"cell_type": "markdown", "metadata": {}, "source":
                       "<script>window.PWNED_MD=1</script><iframe src=x></iframe> [x](javascript:PWNED_LINK)"}
            nb["cells"].insert(index, new)
            write(folder / f"{A}.ipynb", nb)
        elif student == "answer-metadata-changed":  # claims to be a test worth 100 points, with output
            nb = with_cell(base, "sgd_update", WRONG + "1.0\n")
            cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "sgd_update")
            cell["metadata"]["nbgrader"].update(grade=True, points=100, solution=False, locked=True)
            cell["outputs"] = [{"output_type": "display_data", "metadata": {},
                                "data": {"text/html": "<script>PWNED_META</script>"}}]
            nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {
                "x": {"model_name": "HTMLModel", "state": {"value": "<script>PWNED_WIDGET</script>"}}}}}
            write(folder / f"{A}.ipynb", nb)
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
