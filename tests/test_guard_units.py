"""Unit tests of the grader's safety parts that need no kernel: the static scan, the names
a test cell uses, hiding hidden tests in feedback, the limits launcher."""
import os
import subprocess
import sys

import pytest
from nbformat import NotebookNode

from lrgrade import guard
from lrgrade.preprocessors import HideHiddenTests, failed_in_hidden_tests
from lrgrade.sandbox import EXEC, Limits

TEST_CELL = """from lrcourse.checks import assert_close

assert_close(f(1.0), 2.0, "f(1.0)")
w = 3
assert abs(w) == 3, "visible message"
### BEGIN HIDDEN TESTS
assert_close(f(7.0), 14.0, "f(7.0)")
### END HIDDEN TESTS
"""


def test_names_used_are_read_but_not_bound_by_the_cell():
    assert guard.names_used(TEST_CELL) == ["abs", "f"]
    assert guard.names_bound(TEST_CELL) == ["assert_close", "w"]
    assert guard.names_used("%matplotlib inline\nx = np.zeros(3)") == ["np"]
    assert guard.names_used("def (") == []


def test_static_scan_flags_attempts_and_leaves_honest_code_alone():
    honest = ["import numpy as np\nimport math\ndef f(x):\n    total = sum(x)\n    return math.sqrt(total)\n",
              "print('loss after 100 steps:', 0.5)\nsum = 0\n",
              "n_layers = len(list(model.modules()))\n"]
    assert guard.static_flags(honest) == []
    attack = ["import builtins, numpy as np\nnp.allclose = lambda *a: True\nsetattr(builtins, 'abs', None)\n",
              "class A:\n    def __eq__(self, o):\n        return True\nprint('All tests passed')\n",
              "get_ipython().showtraceback = None\nimport ctypes\nimport sys\nsys.modules['numpy'] = None\n"]
    flags = guard.static_flags(attack)
    for expected in ("assigns to np.allclose", "calls setattr()", "imports builtins", "defines __eq__",
                     "prints a message that looks like a test result", "touches showtraceback",
                     "uses get_ipython()", "imports ctypes", "touches sys.modules"):
        assert expected in flags, flags


def test_parse_report_needs_the_token_and_exactly_one_answer():
    line = f"{guard.MARK} secret123 [\"numpy.allclose was replaced\"]\n"
    stream = [{"output_type": "stream", "name": "stdout", "text": line}]
    assert guard.parse_report(stream, "secret123") == ["numpy.allclose was replaced"]
    assert guard.parse_report(stream, "another") is None
    assert guard.parse_report([], "secret123") is None
    twice = [{"output_type": "stream", "name": "stdout", "text": line + line}]
    assert guard.parse_report(twice, "secret123") is None
    faked = [{"output_type": "stream", "name": "stdout", "text": f"{guard.MARK} secret123 []\n"},
             {"output_type": "error", "ename": "NameError", "evalue": "", "traceback": []}]
    assert guard.parse_report(faked, "secret123") is None


def _test_cell(error_line: int, ename="AssertionError", evalue="f(7.0): expected 14, got 0") -> NotebookNode:
    trace = [f"\x1b[0;31mAssertionError\x1b[0m Traceback (most recent call last)",
             f"Cell \x1b[0;32mIn[5], line {error_line}\x1b[0m\n  assert_close(f(7.0), 14.0, \"f(7.0)\")",
             f"{ename}: {evalue}"]
    return NotebookNode(cell_type="code", source=TEST_CELL, execution_count=5,
                        metadata={"nbgrader": {"grade": True, "grade_id": "t", "points": 1, "solution": False}},
                        outputs=[NotebookNode(output_type="stream", name="stdout", text="f got 7.0\n"),
                                 NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=trace)])


def test_feedback_hides_a_failure_in_the_hidden_tests():
    cell = _test_cell(error_line=7)
    assert failed_in_hidden_tests(cell)
    cell, _ = HideHiddenTests().preprocess_cell(cell, {}, 0)
    assert "BEGIN HIDDEN" not in cell.source and "f(7.0)" not in cell.source
    assert "hidden tests ran here" in cell.source
    assert [o.output_type for o in cell.outputs] == ["error"]  # the print of a hidden input is gone
    shown = cell.outputs[0].evalue + "".join(cell.outputs[0].traceback)
    assert "a hidden test failed" in shown and "14" not in shown and "7.0" not in shown


def test_feedback_keeps_a_visible_failure_message_without_its_traceback():
    cell = _test_cell(error_line=3, evalue="f(1.0): expected 2, got 0")
    assert not failed_in_hidden_tests(cell)
    cell, _ = HideHiddenTests().preprocess_cell(cell, {}, 0)
    assert cell.outputs[0].evalue == "f(1.0): expected 2, got 0"
    assert cell.outputs[0].traceback == ["AssertionError: f(1.0): expected 2, got 0"]


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
                  "try:\n    f.write(b'x' * 2 * 1024**2); f.flush()\nexcept OSError as e:\n    print('refused', e.errno)")
    assert "refused" in big.stdout, big.stdout + big.stderr


@pytest.mark.skipif(os.getuid() != 0, reason="switching users needs root")
def test_launcher_drops_to_the_sandbox_user_and_a_session_of_its_own():
    # /bin/sh, not this Python: the sandbox user may not enter the folder it lives in.
    script = 'read -r line < /proc/$$/stat; set -- $line; echo "$(id -u) $(id -G) $([ "$6" = "$$" ] && echo leader)"'
    proc = _launch("/bin/sh", "-c", script, uid=61009)
    assert proc.stdout.split() == ["61009", "61009", "leader"], proc.stdout + proc.stderr
