"""nbgrader preprocessors used by autograder/nbgrader_config.py."""
from __future__ import annotations

import json
import re
import secrets

from nbclient.util import run_sync
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from nbgrader.utils import is_grade, is_locked, is_solution
from traitlets import Integer

from . import guard
from .notebooks import HIDDEN_BEGIN, HIDDEN_END
from .sandbox import SandboxKernelManager

INTEGRITY_ERROR = "GraderIntegrityError"


class StderrToStdout(NbGraderPreprocessor):
    """Re-label stderr output of graded cells as stdout.

    nbgrader scores a test cell 0 if it wrote anything to stderr, so a harmless warning
    raised while a correct answer is tested would cost the student the points. Failed
    asserts and exceptions are ``error`` outputs, which this leaves alone.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code" and is_grade(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
        return cell, resources


def _owned_by_grader(cell) -> bool:
    """Locked cells and test cells: their code comes from the instructor, not the student."""
    return (is_locked(cell) or is_grade(cell)) and not is_solution(cell)


class GuardedExecute(Execute):
    """nbgrader's Execute, with the kernel in the sandbox, the guard, and an output cap.

    * The kernel is started by ``SandboxKernelManager`` (a plain kernel unless the
      grading tool asked for the sandbox).
    * Before the first cell, the guard (``lrgrade.guard``) is installed in the kernel;
      before and after each test cell it reports whether anything the tests use was
      changed. If so, the test cell gets a ``GraderIntegrityError`` output: 0 points.
    * A cell's outputs are capped at ``max_output_bytes``: a print loop cannot fill the
      grader's memory or the gradebook.
    """

    max_output_bytes = Integer(1_000_000, help="Outputs kept per cell, in bytes of JSON").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs["kernel_manager_class"] = SandboxKernelManager
        super().__init__(*args, **kwargs)
        self._token = ""
        self._out_bytes = 0
        self._truncated = False

    def reset_execution_trackers(self):
        # Called as each notebook starts executing (in a new kernel): the guard must be
        # installed again, with a new token, when one nbgrader run grades many notebooks.
        super().reset_execution_trackers()
        self._token = ""

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if cell.cell_type != "code" or not cell.source.strip():
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        if not self._token:
            self._token = secrets.token_hex(16)
            await self._guard_cell(guard.install_code(self._token), cell_index)
        grader_owned = _owned_by_grader(cell)
        test = grader_owned and is_grade(cell)
        used = guard.names_used(cell.source) if test else []
        before = await self._guard_report(used, [], cell_index) if test else []
        self._out_bytes, self._truncated = 0, False
        cell = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        if grader_owned:
            after = await self._guard_report(used if test else [], guard.names_bound(cell.source), cell_index)
            problems = list(dict.fromkeys(before + after)) if test else []
            if problems:
                cell.outputs.append(NotebookNode(
                    output_type="error", ename=INTEGRITY_ERROR,
                    evalue="code in this notebook changed what the tests use, so this test scores 0: "
                           + "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""),
                    traceback=[f"{INTEGRITY_ERROR}: " + "; ".join(problems)]))
        return cell

    # nbconvert's preprocess_cell calls the synchronous wrapper, made from the base class's
    # coroutine when that class was defined: wrap this class's coroutine instead.
    execute_cell = run_sync(async_execute_cell)

    async def _guard_cell(self, code: str, cell_index: int) -> list:
        probe = NotebookNode(cell_type="code", source=code, metadata=NotebookNode(), outputs=[],
                             execution_count=None, id="lrgrade-guard")
        real = self.nb.cells[cell_index]
        await super().async_execute_cell(probe, cell_index, store_history=False)
        self.nb.cells[cell_index] = real  # nbclient files the executed cell under cell_index
        return probe.outputs

    async def _guard_report(self, used: list[str], record: list[str], cell_index: int) -> list[str]:
        outputs = await self._guard_cell(guard.report_code(used, record), cell_index)
        found = guard.parse_report(outputs, self._token)
        return ["the grader's check gave no genuine answer (its output was hidden or faked)"] if found is None else found

    def output(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {}), default=str))
        self._out_bytes += size
        if self._out_bytes > self.max_output_bytes and msg.get("msg_type") in ("stream", "display_data",
                                                                                "execute_result", "update_display_data"):
            if not self._truncated:
                self._truncated = True
                outs.append(NotebookNode(output_type="stream", name="stdout",
                                         text=f"\n[the grader kept the first {self.max_output_bytes // 1000} kB "
                                              "of this cell's output and dropped the rest]\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def hidden_test_line(source: str) -> int | None:
    """1-based line of ``### BEGIN HIDDEN TESTS`` in a test cell, or None."""
    for number, line in enumerate(source.splitlines(), start=1):
        if line.strip() == HIDDEN_BEGIN:
            return number
    return None


def failed_in_hidden_tests(cell) -> bool:
    """Did this test cell's error come from its hidden part? (Read off the traceback.)"""
    hidden = hidden_test_line(cell.source)
    if hidden is None:
        return False
    for out in cell.get("outputs", []):
        if out.get("output_type") != "error":
            continue
        text = _ANSI.sub("", "\n".join(out.get("traceback", [])))
        lines = [int(n) for count, n in re.findall(r"Cell In\[(\d+)\], line (\d+)", text)
                 if cell.get("execution_count") is None or int(count) == cell.execution_count]
        if out.get("ename") == "CellTimeoutError":
            return False
        if not lines or lines[0] > hidden:  # no line found: assume the worst, reveal nothing
            return True
    return False


class HideHiddenTests(NbGraderPreprocessor):
    """For feedback: a student sees which tests passed and the visible messages, never
    the hidden tests' code, inputs or expected values.

    In each test cell the hidden block is replaced by a note, tracebacks (which quote the
    lines around the failing one) are dropped, and an error raised in the hidden part
    says only that a hidden test failed. Other output of a cell with hidden tests is
    dropped too: the student's code might print what a hidden test gave it.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code" or not is_grade(cell) or is_solution(cell):
            return cell, resources
        hidden = hidden_test_line(cell.source) is not None
        in_hidden = failed_in_hidden_tests(cell)
        outputs = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                ename, evalue = out.get("ename", "Error"), str(out.get("evalue", ""))
                if ename == "CellTimeoutError":
                    evalue = "the cell ran past the time limit: does your code loop forever?"
                elif in_hidden and ename != INTEGRITY_ERROR:
                    evalue = ("a hidden test failed: your code passes the visible examples but not "
                              "other cases. Re-read the task, and test the edge cases yourself.")
                    ename = "AssertionError"
                outputs.append(NotebookNode(output_type="error", ename=ename, evalue=evalue,
                                            traceback=[f"{ename}: {evalue}"]))
            elif not hidden:
                outputs.append(out)
        cell.outputs = outputs
        if hidden:
            lines, keep = [], True
            for line in cell.source.splitlines():
                if line.strip() == HIDDEN_BEGIN:
                    keep = False
                    lines.append("# (hidden tests ran here; their code is not shown)")
                elif line.strip() == HIDDEN_END:
                    keep = True
                elif keep:
                    lines.append(line)
            cell.source = "\n".join(lines)
        return cell, resources
