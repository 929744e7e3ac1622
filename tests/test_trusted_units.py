"""Unit tests of the trusted grading path that need no kernel: the plain-data round trip,
how the grader reads a test cell, the verdict, the feedback filter, the static scan and
the limits launcher."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from nbformat import NotebookNode

from lrcourse import checks
from lrcourse.checks import call, from_plain, judge, outcome, to_plain
from conftest import ROOT
from lrgrade import scan, trusted
from lrgrade.notebooks import SourceError
from lrgrade.preprocessors import SafeFeedback, escape_markdown
from lrgrade.sandbox import EXEC, Limits, bwrap_command, bwrap_problem

TEST_CELL = """import numpy as np
from lrcourse.checks import call, code, probe, run_tests


@probe
def doubled_twice(x):
    return [f(x), f(f(x))]


def is_pair(result):
    assert isinstance(result, list) and len(result) == 2, "expected two values"


tests = [
    call("f", 1.0).expect(2.0, hint="double it"),
    code("doubled_twice(3.0)", "f twice").check(is_pair),
]
### BEGIN HIDDEN TESTS
tests += [call("f", 7.25).expect(14.5), call("f", "x").raises(TypeError)]
### END HIDDEN TESTS
run_tests(tests, globals())
"""


def _kernel(namespace: dict, cell: trusted.TestCell) -> str:
    """Run a test cell's kernel code in ``namespace`` as a kernel would; return the payload."""
    published = []
    import IPython.display
    real = IPython.display.publish_display_data
    IPython.display.publish_display_data = lambda data, **kw: published.append(data[checks.RESULTS_MIME])
    try:
        exec(cell.kernel_code(), namespace)
    finally:
        IPython.display.publish_display_data = real
    assert len(published) == 1
    return published[0]


def _f(x):
    if isinstance(x, str):
        raise TypeError("not a number")
    return 2 * x


def test_grader_and_kernel_agree_on_the_results_mime_type():
    from lrgrade import preprocessors
    assert preprocessors.RESULTS_MIME == checks.RESULTS_MIME


def test_plain_data_round_trip_keeps_types_shapes_and_non_finite_numbers():
    value = {"a": [1, 2.5, float("nan"), float("-inf")], "t": (1, "x", None, True),
             "arr": np.arange(6, dtype=np.float32).reshape(2, 3), "ten": torch.tensor([1.5, 2.5]),
             3: np.float64(0.25), "b": np.bool_(True)}
    back = from_plain(json.loads(json.dumps(to_plain(value))))
    assert back["t"] == (1, "x", None, True) and back[3] == 0.25 and back["b"] is True
    assert math.isnan(back["a"][2]) and back["a"][3] == float("-inf")
    assert isinstance(back["arr"], np.ndarray) and back["arr"].dtype == np.float32 and back["arr"].shape == (2, 3)
    assert isinstance(back["ten"], torch.Tensor) and back["ten"].tolist() == [1.5, 2.5]


def test_only_plain_data_crosses_whatever_the_object_does():
    class Anything(float):
        def __eq__(self, other):
            return True

    class Model:
        pass

    assert to_plain(Anything(0.0)) == 0.0 and type(to_plain(Anything(0.0))) is float
    assert isinstance(from_plain(to_plain(Model())), checks.Opaque)
    assert isinstance(from_plain(to_plain(x for x in [1])), checks.Opaque)
    with pytest.raises(checks.TooLarge):
        to_plain([0.0] * (checks.MAX_ITEMS + 1))
    with pytest.raises(ValueError):
        from_plain({"__ndarray__": [["x"]], "dtype": "object", "shape": [1, 1]})
    with pytest.raises(ValueError):
        from_plain({"__ndarray__": [1, 2], "dtype": "float64", "shape": [3]})
    with pytest.raises(ValueError):
        from_plain({"__reduce__": "os.system"})


def test_judge_compares_plain_results_and_explains_failures():
    case = call("f", 1.0).expect(2.0, hint="double it")
    assert judge(case, {"value": 2.0}) is None
    assert "expected 2, got 3" in judge(case, {"value": 3.0}) and "double it" in judge(case, {"value": 3.0})
    assert "returned None" in judge(case, {"value": None})
    assert "expected a number" in judge(case, {"value": "2.0"})
    raised = outcome({"function": "f", "args": to_plain((("x",), {}))}, {"f": _f})
    assert "raised TypeError: not a number" in judge(case, raised)
    assert judge(call("f", "x").raises(TypeError), raised) is None
    assert "expected it to raise" in judge(call("f", 1.0).raises(TypeError), {"value": 2.0})
    assert judge(call("g").expect("healthy"), {"value": "healthy"}) is None
    assert "expected 'healthy'" in judge(call("g").expect("healthy"), {"value": "stalled"})
    assert judge(call("g").expect(True), {"value": 1}) is not None  # 1 is not True
    assert "could not read" in judge(case, {"value": {"__ndarray__": 1, "dtype": "nope", "shape": []}})


def test_a_test_cell_splits_into_kernel_inputs_and_grader_verdicts():
    cell = trusted.read_test_cell(TEST_CELL, "test_f", checks)
    assert cell.hidden == [False, False, True, True]
    kernel = cell.kernel_code()
    assert "def doubled_twice" in kernel and "import numpy as np" in kernel
    assert "is_pair" not in kernel and "expect" not in kernel and "14.5" not in kernel and "hint" not in kernel
    assert cell.verdict(_kernel({"f": _f}, cell)) == []
    wrong = cell.verdict(_kernel({"f": lambda x: _f(x) if x != 7.25 else 0.0}, cell))
    assert wrong == [trusted.HIDDEN_FAILED]
    assert "7.25" not in wrong[0] and "14.5" not in wrong[0]
    blank = cell.verdict(_kernel({"f": lambda x: None}, cell))
    assert "f(1.0) returned None" in blank[0] and "hidden tests failed as well" in blank[-1]


def test_a_hidden_case_may_say_what_failed_in_words_of_its_own():
    source = ("from lrcourse.checks import call, run_tests\ntests = [call('f', 1.0).expect(2.0)]\n"
              "### BEGIN HIDDEN TESTS\ntests += [call('f', 9.5).expect(19.0).when_hidden('the target was missed'),\n"
              "          call('f', 8.5).expect(17.0)]\n### END HIDDEN TESTS\nrun_tests(tests, globals())\n")
    cell = trusted.read_test_cell(source, "t", checks)
    assert cell.verdict(_kernel({"f": lambda x: 2 * x if x < 5 else 0.0}, cell)) == [
        "the target was missed", "1 hidden test failed as well"]


def test_the_verdict_needs_one_well_formed_result_per_case():
    cell = trusted.read_test_cell(TEST_CELL, "test_f", checks)
    good = _kernel({"f": _f}, cell)
    assert not cell.verdict(good)
    for payload in (None, "", "[]", json.dumps(json.loads(good)[:3]), "{" * 100_000, "[1, 2, 3, 4]"):
        assert cell.verdict(payload), payload
    assert "could not run: the CPU" in cell.verdict(None, "the CPU time limit")[0]


def test_a_test_cell_that_does_not_stand_alone_is_refused():
    with pytest.raises(SourceError, match="stand alone"):
        trusted.read_test_cell("tests = [call('f', x)]\nrun_tests(tests, globals())", "t", checks)
    with pytest.raises(SourceError, match="no cases"):
        trusted.read_test_cell("x = 1", "t", checks)


def test_in_the_notebook_run_tests_reports_every_failure_at_once():
    cell_ns = {"f": lambda x: 0.0}
    with pytest.raises(AssertionError) as err:
        checks.run_tests([call("f", 1.0).expect(2.0), call("f", 2.0).expect(4.0)], cell_ns)
    assert "f(1.0): expected 2, got 0" in str(err.value) and "1 more of the 2 tests" in str(err.value)
    checks.run_tests([call("f", 1.0).expect(0.0)], cell_ns)  # silence when it passes


def test_feedback_drops_active_content_and_escapes_written_answers():
    payload = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    cell = NotebookNode(cell_type="code", source="x", execution_count=1, metadata={"nbgrader": {"solution": True}},
                        outputs=[NotebookNode(output_type="display_data", metadata={},
                                              data={"text/html": payload, "application/javascript": "alert(3)",
                                                    "image/svg+xml": payload, "text/plain": "shown"}),
                                 NotebookNode(output_type="display_data", metadata={},
                                              data={"image/png": '"><script>alert(4)</script>'}),
                                 NotebookNode(output_type="execute_result", metadata={}, execution_count=1,
                                              data={"text/markdown": "[x](javascript:alert(5))"})])
    cell, _ = SafeFeedback().preprocess_cell(cell, {}, 0)
    assert [o.data for o in cell.outputs] == [{"text/plain": "shown"}]
    answer = NotebookNode(cell_type="markdown", source="[click](javascript:alert(1)) <b>hi</b>",
                          metadata={"nbgrader": {"solution": True, "grade": True}})
    answer, _ = SafeFeedback().preprocess_cell(answer, {}, 1)
    assert answer.source == escape_markdown("[click](javascript:alert(1)) <b>hi</b>")
    assert "\\<b\\>" in answer.source and "\\[click\\]" in answer.source


def test_static_scan_flags_attempts_and_leaves_honest_code_alone():
    honest = ["import numpy as np\nimport math\ndef f(x):\n    total = sum(x)\n    return math.sqrt(total)\n",
              "print('loss after 100 steps:', 0.5)\nsum = 0\n",
              "n_layers = len(list(model.modules()))\n"]
    assert scan.static_flags(honest) == []
    attack = ["import builtins, numpy as np\nnp.allclose = lambda *a: True\nsetattr(builtins, 'abs', None)\n",
              "class A:\n    def __eq__(self, o):\n        return True\nprint('All tests passed')\n",
              "get_ipython().showtraceback = None\nimport ctypes\nimport sys\nsys.modules['numpy'] = None\n"]
    flags = scan.static_flags(attack)
    for expected in ("assigns to np.allclose", "calls setattr()", "imports builtins", "defines __eq__",
                     "prints a message that looks like a test result", "touches showtraceback",
                     "uses get_ipython()", "imports ctypes", "touches sys.modules"):
        assert expected in flags, flags


def test_the_course_names_its_own_helpers_for_the_scan():
    """The grader knows no course: the course's helpers are protected through nbgrader_config.py."""
    from lrgrade.nbgrader_course import course_config

    attack = ["import lrcourse.checks as checks\nchecks.judge = lambda *a: True\n"]
    assert scan.static_flags(attack) == []
    names = scan.StaticScan(config=course_config()).protected_names
    assert "assigns to checks.judge" in scan.static_flags(attack, names)


def test_limits_travel_through_the_environment():
    limits = Limits(mode="bwrap", uid=61003, memory_mb=1234)
    assert Limits.from_env(limits.to_env()) == limits
    assert Limits.from_env({}) == Limits()


def _launch(*cmd: str, memory_mb=512, nproc=64, uid=None) -> subprocess.CompletedProcess:
    args = [sys.executable, str(EXEC), "--memory-mb", str(memory_mb), "--nproc", str(nproc),
            "--fsize-mb", "1", "--cpu-s", "60"]
    if uid is not None:
        args += ["--uid", str(uid)]
    return subprocess.run(args + ["--", *cmd], capture_output=True, text=True, timeout=60)


def test_launcher_limits_memory_and_file_size():
    bomb = _launch(sys.executable, "-c", "x = bytearray(2 * 1024**3)")
    assert bomb.returncode != 0 and "MemoryError" in bomb.stderr
    big = _launch(sys.executable, "-c", "import os, tempfile\nf = tempfile.TemporaryFile()\n"
                  "try:\n    f.write(b'x' * 2 * 1024**2)\n    f.flush()\n"
                  "except OSError as e:\n    print('refused', e.errno)")
    assert "refused" in big.stdout, big.stdout + big.stderr


@pytest.mark.skipif(os.getuid() != 0, reason="switching users needs root")
def test_launcher_drops_to_the_sandbox_user_and_a_session_of_its_own():
    # /bin/sh, not this Python: the sandbox user may not enter the folder it lives in.
    script = 'read -r line < /proc/$$/stat; set -- $line; echo "$(id -u) $(id -G) $([ "$6" = "$$" ] && echo leader)"'
    proc = _launch("/bin/sh", "-c", script, uid=61009)
    assert proc.stdout.split() == ["61009", "61009", "leader"], proc.stdout + proc.stderr


@pytest.mark.skipif(os.getuid() != 0 or bool(bwrap_problem()), reason="needs root and bubblewrap")
def test_the_sandbox_user_reads_the_system_files_bound_for_it(tmp_path):
    """/etc in the sandbox holds only the files bound into it, and the kernel's user must read
    them: bwrap once made /etc 0700, and fc-list then printed "Fontconfig error" into every
    graded notebook that imports matplotlib (its font list is prebuilt now, which hid it)."""
    rundir, cwd = tmp_path / "run", tmp_path / "cwd"
    rundir.mkdir()
    os.chown(rundir, 61009, 61009)
    script = "cat /etc/fonts/fonts.conf /etc/passwd > /dev/null && fc-list > /dev/null && ls /etc"
    cmd = bwrap_command(["/bin/sh", "-c", script], Limits(mode="bwrap", uid=61009), cwd, rundir)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    assert "shadow" not in proc.stdout.split() and "fonts" in proc.stdout.split(), proc.stdout


def test_the_grader_imports_nothing_of_the_course():
    # lrgrade reads the course's test form by the name nbgrader_config.py gives it.
    code = ("import sys, pkgutil, importlib, lrgrade\n"
            "for m in pkgutil.iter_modules(lrgrade.__path__):\n"
            "    importlib.import_module('lrgrade.' + m.name)\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] == 'lrcourse'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT / "autograder", timeout=120)
    assert out.stdout.strip() == "[]", out.stdout


def test_a_missing_or_incomplete_test_form_is_named():
    with pytest.raises(SourceError, match="test_form"):
        trusted.load_form("")
    with pytest.raises(SourceError, match="lacks"):
        trusted.load_form("json")
    assert trusted.load_form("lrcourse.checks") is checks


def test_only_well_formed_exchange_receipts_reach_nbgrader(tmp_path):
    """A collected submission's timestamp and secret go to nbgrader (late penalties, the name of
    the returned feedback); anything else a student could put there does not."""
    from lrgrade.class_grader import exchange_receipt

    good = tmp_path / "good"
    good.mkdir()
    (good / "timestamp.txt").write_text("2026-12-02 10:11:12.345678 UTC")
    (good / "submission_secret.txt").write_text("ab12" * 32)
    (good / "notes.txt").write_text("not a receipt")
    assert exchange_receipt(good) == {"timestamp.txt": "2026-12-02 10:11:12.345678 UTC",
                                      "submission_secret.txt": "ab12" * 32}
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "timestamp.txt").write_text("yesterday, honest")
    (bad / "submission_secret.txt").symlink_to(good / "submission_secret.txt")
    assert exchange_receipt(bad) == {}
    (bad / "submission_secret.txt").unlink()
    (bad / "submission_secret.txt").write_text("<script>" + "a" * 8)
    (bad / "timestamp.txt").write_text("2026-12-02 10:11:12 UTC" + " " * 500)
    assert exchange_receipt(bad) == {}


def test_results_are_never_written_through_a_link_in_the_course(tmp_path):
    """`grade --into` runs as root on a course folder its instructor owns: a link there could
    point anywhere, so the write is refused."""
    from lrgrade.class_grader import _no_links_below

    course = tmp_path / "course"
    (course / "autograded").mkdir(parents=True)
    _no_links_below(course, course / "autograded" / "ana" / "01")  # nothing there yet: fine
    (course / "autograded" / "ben").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="symbolic link"):
        _no_links_below(course, course / "autograded" / "ben" / "01")
    with pytest.raises(ValueError, match="not inside"):
        _no_links_below(course, tmp_path / "elsewhere")


def test_illustrations_are_skipped_only_when_no_answer_reads_what_they_make():
    """Cells tagged as illustrations (experiments, plots) do not run under grading, unless an
    answer reads a global one of them binds, or looks names up by string: then everything runs,
    as the student's own notebook did."""
    from nbformat.v4 import new_code_cell, new_notebook

    from lrgrade.preprocessors import skipped_illustrations

    def notebook(answer: str):
        return new_notebook(cells=[
            new_code_cell("import numpy as np", metadata={"nbgrader": {"grade_id": "setup", "locked": True}}),
            new_code_cell("history = train(0.1)\nplot(history)", metadata={"tags": ["illustration"]}),
            new_code_cell(answer, metadata={"nbgrader": {"grade_id": "a", "solution": True, "grade": False}}),
            new_code_cell("run_tests([])", metadata={"nbgrader": {"grade_id": "t", "grade": True, "points": 1}}),
        ])

    tags = ["illustration"]
    assert skipped_illustrations(notebook("def f(lr, history):\n    return lr * np.sqrt(history)"), tags) == {1}
    # An attribute named like a global is not that global: `sched.history` reads sched.
    assert skipped_illustrations(notebook("def f(sched):\n    return sched.history[-1]"), tags) == {1}
    for reads_it in ("def f(lr):\n    return history[-1]", "def f(lr):\n    return globals()['history']",
                     "import __main__\ndef f():\n    return __main__.history",
                     "import __main__ as m\ndef f():\n    return m.history",
                     "from __main__ import history", "import sys\nf = lambda: sys.modules['__main__'].history",
                     "def f():\n    return get_ipython().user_ns['history']",
                     "def f():\n    return f.__globals__['history']", "def f(:\n"):
        assert skipped_illustrations(notebook(reads_it), tags) == set(), reads_it
    assert skipped_illustrations(notebook("def f(lr):\n    return history[-1]"), ["other-tag"]) == set()
