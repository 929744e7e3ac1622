"""nbgrader preprocessors used by autograder/nbgrader_config.py: trusted grading.

* ``AnswersOnly`` (before execution): the notebook that runs is the released one, with
  only the submission's answer cells (solution cells and written answers, matched by
  ``grade_id``) put in. Everything else, setup cells, test cells, metadata and the
  kernelspec, comes from the instructor's release.
* ``TrustedExecute``: nbgrader's Execute with the kernel in the sandbox, limits on CPU
  time (a wall clock only as a backstop), capped outputs, and test cells that never run
  in the kernel: the grader sends their inputs, reads back plain data and judges it in
  its own process (``lrgrade.trusted``). A test cell's outputs are written by the grader
  alone, so nothing the student's code prints or returns can award points.
* ``SafeFeedback`` (feedback pages): outputs reduced to text and checked images, the
  student's written answers shown as text, no hidden test anywhere.
"""
from __future__ import annotations

import ast
import asyncio
import base64
import binascii
import copy
import importlib
import json
import os
import re
import signal
import sys
import threading
from pathlib import Path

import nbformat
from nbclient.exceptions import DeadKernelError
from nbclient.util import run_sync
from nbformat import NotebookNode
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution
from traitlets import Float, Integer, List, Unicode, default

from .notebooks import HIDDEN_BEGIN, HIDDEN_END
from .sandbox import SandboxKernelManager
from .scan import parse_python, strip_magics

# Error names the grader writes into a graded notebook; the report reads them back.
CPU_LIMIT = "CPUTimeLimitError"
WALL_LIMIT = "CellTimeoutError"  # nbclient's name for its (wall-clock) timeout
KERNEL_DIED = "KernelDiedError"
DISK_LIMIT = "DiskLimitError"
GRADER_ERRORS = (CPU_LIMIT, WALL_LIMIT, KERNEL_DIED, DISK_LIMIT)
TEST_FAILED = "AssertionError"
MAX_ANSWER_CHARS = 200_000  # one answer cell; a longer one is cut (and then fails to parse)
RESULTS_MIME = "text/x-lrgrade-results"  # as lrcourse.checks.RESULTS_MIME (a test keeps them equal)
MAX_PAYLOAD = 33_000_000  # characters of one probe's results kept (trusted.MAX_RESULTS_BYTES judges them)


def _course_paths(config, resources) -> tuple[Path, Path]:
    """The release and source notebooks of the notebook being graded."""
    info = resources.get("nbgrader", {})
    coursedir = CourseDirectory(config=config)
    name = f"{info['notebook']}.ipynb"
    release = Path(coursedir.format_path(coursedir.release_directory, ".", info["assignment"])) / name
    source = Path(coursedir.format_path(coursedir.source_directory, ".", info["assignment"])) / name
    return release, source


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta.get("grade_id") if isinstance(meta, dict) else None


class AnswersOnly(NbGraderPreprocessor):
    """Replace the submission by the released notebook with the student's answers in it.

    Only the source of a solution cell crosses, matched by ``grade_id`` and cell type:
    not its metadata, outputs or attachments. Cells the student added, edited setup or
    test cells, and changed metadata are all left behind. A missing answer cell keeps the
    released stub (and so scores 0).
    """

    def preprocess(self, nb, resources):
        release, _ = _course_paths(self.config, resources)
        if not release.is_file():
            raise FileNotFoundError(f"{release}: the released notebook is missing; run nbgrader generate_assignment")
        released = nbformat.read(str(release), as_version=4)
        answers: dict[str, NotebookNode] = {}
        for cell in nb.cells:
            grade_id = _grade_id(cell)
            if grade_id and grade_id not in answers and isinstance(cell.get("source"), str):
                answers[grade_id] = cell
        for cell in released.cells:
            meta = cell.metadata.get("nbgrader", {})
            answer = answers.get(meta.get("grade_id"))
            if meta.get("solution") and answer is not None and answer.get("cell_type") == cell.cell_type:
                cell.source = answer.source[:MAX_ANSWER_CHARS]
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
            cell.pop("attachments", None)
        return released, resources


ANY_NAME = "*"  # what a cell reads when it looks names up by string (globals(), getattr, eval, ...)
# Names through which a cell can reach the notebook's globals other than by naming them: a
# lookup by string, or the main module and its namespace (`__main__.history`,
# `sys.modules["__main__"]`, `get_ipython().user_ns`, a function's `__globals__`, a frame's).
_LOOKUPS = {"globals", "locals", "vars", "getattr", "eval", "exec", "__dict__", "__import__", "import_module",
            "__main__", "modules", "user_ns", "user_global_ns", "__globals__", "f_globals"}


def skipped_illustrations(nb, tags) -> set[int]:
    """The indices of the cells tagged with one of ``tags`` that need not run: all of them,
    unless an answer cell reads a name one of them binds (or cannot be parsed), then none."""
    tagged = {i for i, c in enumerate(nb.cells)
              if c.cell_type == "code" and set(c.get("metadata", {}).get("tags", [])) & set(tags)}
    if not tagged:
        return set()
    bound: set[str] = set()
    for i in tagged:
        names = bound_and_read(nb.cells[i].source)
        if names is None:
            return set()
        bound |= names[0]
    for cell in nb.cells:
        if cell.cell_type == "code" and is_solution(cell):
            names = bound_and_read(cell.source)
            if names is None or (names[1] - names[0]) & (bound | {ANY_NAME}):  # the globals it reads
                return set()
    return tagged


def bound_and_read(source: str) -> tuple[set[str], set[str]] | None:
    """Every name ``source`` binds (anywhere, arguments included) and every name it reads;
    None if it does not parse."""
    try:
        tree = parse_python(strip_magics(source))
    except SyntaxError:
        return None
    bound, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, (ast.Store, ast.Del)) else read).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
            if "__main__" in [getattr(node, "module", None), *(a.name for a in node.names)]:
                read.add("__main__")  # `import __main__ as m`, `from __main__ import history`
        elif isinstance(node, ast.Attribute) and node.attr in _LOOKUPS:
            read.add(node.attr)  # `sys.modules`, `f.__globals__`; other attributes are not globals
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in _LOOKUPS:
            read.add(node.value)  # `import_module("__main__")`, `getattr(sys, "modules")`
    if read & _LOOKUPS:
        read.add(ANY_NAME)
    return bound, read


class TrustedExecute(Execute):
    """nbgrader's Execute, graded from evidence the student's code cannot reach.

    * The kernel is started by ``SandboxKernelManager`` (a plain kernel unless the
      grading tool asked for the sandbox).
    * A test cell is not executed: the cases of the instructor's version of it (hidden
      ones included, read in this process) are run through a probe, and the verdict,
      computed here, becomes the cell's only output.
    * Each cell may use ``cpu_limit`` seconds of CPU time (the kernel and everything it
      started); past it the cell is interrupted, and the kernel killed if it does not
      stop. Wall-clock time (nbgrader's ``timeout``) is only a backstop.
    * Outputs are capped per output, per cell and per notebook; the kernel's disk use
      (its run folder) is capped too.
    """

    cpu_limit = Float(60.0, help="CPU seconds one cell may use (kernel and its children)").tag(config=True)
    cpu_grace = Float(10.0, help="CPU seconds after the interrupt before the kernel is killed").tag(config=True)
    max_output_bytes = Integer(1_000_000, help="Outputs kept per cell, in bytes of JSON").tag(config=True)
    max_notebook_output_bytes = Integer(16_000_000, help="Outputs kept per notebook").tag(config=True)
    max_error_chars = Integer(20_000, help="Characters kept of one error's message and traceback").tag(config=True)
    max_disk_mb = Integer(64, help="Megabytes the kernel may write to its run folder").tag(config=True)
    test_form = Unicode("", help="The module the course's test cells are written with (for LR Schedules "
                                 "lrcourse.checks): cells are read with it here, its run_in_kernel runs the "
                                 "cases in the kernel, its judge gives the verdicts").tag(config=True)
    skip_tags = List(Unicode(), help="Tags of the instructor's cells that only illustrate (experiments, "
                                     "plots) and that no test needs: they do not run under grading, unless an "
                                     "answer reads a name one of them binds").tag(config=True)

    @default("shutdown_kernel")
    def _kill_at_the_end(self):
        # The kernel is thrown away with its sandbox: a graceful shutdown only waits (1.3-1.5 s
        # a notebook, for a kernel with torch loaded) while it tidies up what is deleted anyway.
        return "immediate"

    def __init__(self, *args, **kwargs):
        kwargs["kernel_manager_class"] = SandboxKernelManager
        super().__init__(*args, **kwargs)
        no_output_widget_emulation(self)
        self._tests: dict | None = None  # grade_id -> lrgrade.trusted.TestCell, read at the first test
        self._source: Path | None = None
        self._reset()

    def _reset(self):
        self._dead = ""
        self._limit = ""
        self._cell_bytes = 0
        self._nb_bytes = 0
        self._truncated = False
        self._probe: list[str] | None = None

    def preprocess(self, nb, resources=None, km=None):
        _, source = _course_paths(self.config, resources)
        # Read when the first test cell comes. Reading imports the test form (for this course
        # lrcourse, and torch) into this process (2-3 s, once per process): a thread does that
        # now, while the kernel starts and runs the cells above the first test in its own process.
        if self.test_form and self.test_form not in sys.modules:
            threading.Thread(target=_import_quietly, args=(self.test_form,), daemon=True).start()
        self._source, self._tests = source, None
        self._reset()
        self._skipped = skipped_illustrations(nb, self.skip_tags)
        return super().preprocess(nb, resources, km)

    def set_widgets_metadata(self):
        """Widget state comes from the kernel: it is the student's data, not the notebook's."""

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if cell.cell_type != "code":
            return cell
        test = _grade_id(cell) if is_grade(cell) and not is_solution(cell) else None
        if test is not None:
            if self._tests is None:
                self._tests = read_tests(self._source, self.test_form)
            return await self._run_test(cell, cell_index, self._tests.get(test))
        if self._dead or not cell.source.strip() or cell_index in self._skipped:
            return cell
        await self._execute(cell, cell_index, execution_count, store_history)
        return cell

    execute_cell = run_sync(async_execute_cell)

    async def _execute(self, cell, cell_index, execution_count=None, store_history=True) -> None:
        """Run one cell under the CPU watchdog; record a limit hit or a dead kernel."""
        self._limit, self._cell_bytes, self._truncated = "", 0, False
        watchdog = asyncio.ensure_future(self._watch())
        try:
            await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except DeadKernelError:
            self._dead = self._limit or (
                f"the kernel died while cell {_grade_id(cell) or cell_index} ran (os._exit, a crash such as a "
                "segfault, or the memory limit), so no cell after it could run")
            cell.outputs.append(_error(KERNEL_DIED, self._dead))
        finally:
            watchdog.cancel()
        if self._limit and not self._dead:
            cell.outputs = [o for o in cell.outputs if o.get("ename") != "KeyboardInterrupt"]
            cell.outputs.append(_error(CPU_LIMIT if "CPU" in self._limit else DISK_LIMIT, self._limit))

    async def _run_test(self, cell, cell_index, test):
        cell.outputs, cell.execution_count = [], None
        if test is None:
            messages = ["this test is not in the instructor's version of the notebook: the grader cannot run it"]
        elif self._dead:
            messages = test.verdict(None, self._dead)
        else:
            probe = NotebookNode(cell_type="code", source=test.kernel_code(), metadata=NotebookNode(),
                                 outputs=[], execution_count=None, id=f"lrgrade-{test.grade_id}")
            self._probe = []
            real = self.nb.cells[cell_index]
            try:
                await self._execute(probe, cell_index, store_history=False)
            finally:
                self.nb.cells[cell_index] = real  # nbclient files the executed cell under cell_index
                results, self._probe = self._probe, None
            problem = self._dead or self._limit or _probe_error(probe)
            if len(results) > 1:
                messages = test.verdict(None, "more than one set of results came back (something in your "
                                              "notebook printed its own)")
            else:
                messages = test.verdict(results[0] if results and not self._limit else None, problem)
        if messages:
            text = messages[0] + "".join(f"\n- {m}" for m in messages[1:])
            ename = (CPU_LIMIT if "CPU" in self._limit else KERNEL_DIED) if self._dead or self._limit else TEST_FAILED
            cell.outputs.append(_error(ename, text[:self.max_error_chars]))
        return cell

    # -- limits ----------------------------------------------------------------------------
    def _kernel_pids(self) -> list[int]:
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        return _tree(process.pid) if process is not None else []

    async def _watch(self) -> None:
        """Stop a cell that uses more than ``cpu_limit`` seconds of CPU, or fills the disk."""
        start = _cpu_seconds(self._kernel_pids())
        interrupted = False
        rundir = getattr(self.km, "_rundir", None)
        while True:
            await asyncio.sleep(0.5)
            pids = self._kernel_pids()
            used = _cpu_seconds(pids) - start
            if rundir is not None and _disk_bytes(rundir) > self.max_disk_mb * 1_000_000:
                self._limit = (f"the notebook wrote more than {self.max_disk_mb} MB of files, so the grader "
                               "stopped it")
                _kill(pids)
                return
            if used > self.cpu_limit and not interrupted:
                interrupted = True
                self._limit = (f"the cell used more than {self.cpu_limit:g} s of CPU time and was stopped: "
                               "does your code loop forever, or do far more work than it needs?")
                try:
                    await self.km.interrupt_kernel()
                except Exception:  # a kernel that cannot be interrupted is killed below
                    pass
            elif used > self.cpu_limit + self.cpu_grace:
                _kill(pids)
                return

    def output(self, outs, msg, display_id, cell_index):
        msg_type = msg.get("msg_type")
        content = msg.get("content", {})
        if self._probe is not None:  # a test's probe: keep its results, nothing else
            if msg_type == "display_data" and RESULTS_MIME in content.get("data", {}):
                # one set of results is expected: a second is only counted, never kept
                self._probe.append(str(content["data"][RESULTS_MIME])[:MAX_PAYLOAD] if not self._probe else "")
            elif msg_type == "error":
                return super().output(outs, self._cap_error(msg), display_id, cell_index)
            return None
        if msg_type == "error":
            return super().output(outs, self._cap_error(msg), display_id, cell_index)
        size = len(json.dumps(content, default=str))
        self._cell_bytes += size
        self._nb_bytes += size
        if self._cell_bytes > self.max_output_bytes or self._nb_bytes > self.max_notebook_output_bytes:
            if not self._truncated:
                self._truncated = True
                outs.append(NotebookNode(output_type="stream", name="stdout",
                                         text="\n[the grader kept the first part of this output and dropped "
                                              "the rest]\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)

    def _cap_error(self, msg):
        msg = copy.copy(msg)
        content = dict(msg.get("content", {}))
        limit = self.max_error_chars
        content["ename"] = str(content.get("ename", "Error"))[:200]
        content["evalue"] = str(content.get("evalue", ""))[:limit]
        trace, kept = [], 0
        for line in list(content.get("traceback", []))[:100]:
            line = str(line)[:limit]
            kept += len(line)
            if kept > limit:
                trace.append("[the rest of the traceback was dropped]")
                break
            trace.append(line)
        content["traceback"] = trace
        msg["content"] = content
        return msg


def no_output_widget_emulation(client) -> None:
    """Turn off nbclient's stand-in for the Output widget's front end.

    When a cell prints into an ``ipywidgets.Output``, nbclient answers the kernel on the
    shell channel while it is waiting on that same channel for the cell's reply; the
    reply is then sometimes never noticed, and the cell stalls until the wall-clock
    backstop (600 s) and is marked as timed out. Measured with nbclient 0.11 and pyzmq 27:
    30 of 369 such cells stalled (about 1 in 12) with ipykernel 7.4, 4 of 123 with 6.31,
    and none of 492 without the stand-in. Grading keeps no widget state, so nothing is lost: what the
    widget would have captured becomes the cell's own output.
    """
    client.widget_registry = {}


def _import_quietly(module: str) -> None:
    """Import ``module`` ahead of need; a failure is reported when it is needed (read_tests)."""
    try:
        importlib.import_module(module)
    except Exception:
        pass


def read_tests(source: Path, test_form: str) -> dict:
    """Every test cell of the instructor's notebook, read in the grader's process with ``test_form``."""
    from . import trusted

    form = trusted.load_form(test_form)
    nb = nbformat.read(str(source), as_version=4)
    return {cell.metadata["nbgrader"]["grade_id"]: trusted.read_test_cell(cell.source, _grade_id(cell), form)
            for cell in nb.cells
            if cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)}


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def error_outputs(cell) -> list:
    """The error outputs of a code cell: what it raised, or what the grader wrote there."""
    if cell.get("cell_type", "code") != "code":
        return []
    return [out for out in cell.get("outputs", []) if out.get("output_type") == "error"]


def _probe_error(probe) -> str:
    errors = error_outputs(probe)
    if not errors:
        return ""
    if errors[0].get("ename") == WALL_LIMIT:
        return "they ran past the grader's wall-clock backstop for one cell: does your code wait or sleep forever?"
    return f"{errors[0].get('ename', 'an error')}: {str(errors[0].get('evalue', ''))[:500]}"


# -- processes, CPU time and disk use, read from /proc ---------------------------------------
_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()  # fields from the state on (the name may hold spaces)


def _tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _cpu_seconds(pids: list[int]) -> float:
    """User + system time of these processes and of their children that have exited."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields:
            total += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return total / _TICK


def _disk_bytes(folder: Path) -> int:
    total = 0
    for base, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(base, name)).st_blocks * 512
            except OSError:
                pass
    return total


def _kill(pids: list[int]) -> None:
    for pid in reversed(pids):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


# -- feedback ----------------------------------------------------------------------------------
_PNG = re.compile(r"^[A-Za-z0-9+/=\s]*$")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>&$~\"'=:@%^])")


def escape_markdown(text: str) -> str:
    """Text that markdown shows as it is: no HTML, links, images, math or code."""
    return "\n\n".join(_MARKDOWN_SPECIAL.sub(r"\\\1", para) for para in text.split("\n\n"))


def _safe_output(out) -> NotebookNode | None:
    kind = out.get("output_type")
    if kind == "stream":
        return NotebookNode(output_type="stream", name="stdout", text=str(out.get("text", ""))[:100_000])
    if kind == "error":
        ename, evalue = str(out.get("ename", "Error"))[:200], str(out.get("evalue", ""))[:20_000]
        trace = [str(line)[:2_000] for line in out.get("traceback", [])[:40] if isinstance(line, str)]
        return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=trace or [f"{ename}: {evalue}"])
    if kind in ("display_data", "execute_result"):
        data = out.get("data", {})
        kept = {}
        if isinstance(data.get("text/plain"), str):
            kept["text/plain"] = data["text/plain"][:100_000]
        png = data.get("image/png")
        if isinstance(png, str) and len(png) < 4_000_000 and _PNG.match(png):
            try:
                if base64.b64decode(png, validate=False)[:8] == b"\x89PNG\r\n\x1a\n":
                    kept["image/png"] = png
            except (binascii.Error, ValueError):
                pass
        if not kept:
            return None
        node = NotebookNode(output_type="display_data", data=kept, metadata={})
        return node
    return None


class SafeOutputs(NbGraderPreprocessor):
    """The graded notebook keeps only inert outputs (text, checked PNG images, errors
    without tracebacks of the student's making), so that formgrader shows an instructor
    nothing active from a submission either."""

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code":
            cell.outputs = [o for o in map(_safe_output, cell.get("outputs", [])) if o is not None]
        cell.pop("attachments", None)
        return cell, resources


class SafeFeedback(NbGraderPreprocessor):
    """Feedback pages carry nothing active from a submission, and no hidden test.

    Every output becomes plain text, a traceback-free error, or a PNG image that really
    is one; HTML, JavaScript, SVG, LaTeX, markdown outputs and widget views are dropped.
    The student's written answers are shown as text (no HTML, links or images). Test
    cells show only their visible part: the grader never puts hidden tests in a graded
    notebook, and this strips any that an older one holds.
    """

    def preprocess(self, nb, resources):
        nb.metadata = NotebookNode({k: v for k, v in nb.metadata.items() if k in ("kernelspec", "language_info")})
        nb, resources = super().preprocess(nb, resources)
        return nb, resources

    def preprocess_cell(self, cell, resources, cell_index):
        cell.pop("attachments", None)
        cell.metadata = NotebookNode({k: v for k, v in cell.metadata.items() if k == "nbgrader"})
        if cell.cell_type == "code":
            cell.outputs = [o for o in map(_safe_output, cell.get("outputs", [])) if o is not None]
            if is_grade(cell) and not is_solution(cell):
                cell.source = strip_hidden(cell.source)
        elif cell.cell_type == "markdown" and is_solution(cell):
            cell.source = escape_markdown(cell.source)
        elif cell.cell_type == "raw":
            cell.cell_type, cell.source = "markdown", escape_markdown(cell.source)
        return cell, resources


def strip_hidden(source: str) -> str:
    lines, keep = [], True
    for line in source.splitlines():
        if line.strip() == HIDDEN_BEGIN:
            keep = False
            lines.append("# (hidden tests run here when your work is graded; their code is not shown)")
        elif line.strip() == HIDDEN_END:
            keep = True
        elif keep:
            lines.append(line)
    return "\n".join(lines)
