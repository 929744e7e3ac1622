"""Mutation check: would the graded tests catch a small bug in each solution?

A test that passes the instructor's solution is only half a test: it must also *fail* a
solution that is slightly wrong. This module makes single small edits ("mutants") to the
code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` of every solution cell, the
kind of bug a student makes:

* an arithmetic operator swapped (``+``/``-``, ``*``/``/``, ``/``/``//``, ``**`` -> ``*``),
* a comparison swapped (``<``/``<=``, ``>``/``>=``, ``<``/``>``, ``==``/``!=``, ``in``, ``is``),
* ``min``/``max`` (also ``.min()``, ``np.argmin``, ``np.minimum``...), ``floor``/``ceil``,
* ``and``/``or``, a dropped ``not`` or unary minus, ``True``/``False``,
* a wrong constant (an int ``n`` -> ``n + 1`` and ``n - 1``; a float ``x`` -> ``2x`` and ``x/2``),
* an off-by-one (``+ 1``/``- 1`` dropped, ``range(n)`` -> ``range(n +/- 1)``, ``+= 1`` dropped),
* the first element for the last (``xs[0]`` <-> ``xs[-1]``),

and runs the notebook's graded test cells (hidden tests included) against each one. A
mutant is *caught* if a graded test cell after it raises (or the mutated cell itself raises,
or the run times out, as nbgrader would stop it); otherwise it *survives*. A survivor is
either a weak test (add a test case that tells the two apart) or an *equivalent* mutant
(the edit changes nothing observable, e.g. a tolerance or a constant that cancels out).
Append ``# no-mutate`` to a solution line to leave it out once you have decided it is one.

How it runs, fast and in process: one worker (a subprocess, with ``LRCOURSE_QUICK=1``,
``NBGRADER_EXECUTION=autograde`` and ``MPLBACKEND=Agg``) executes the notebook's code
cells in order once, keeping a shallow copy of the namespace (and of the random number
generators' state) before every cell; lists, dicts, sets and arrays in it are copied
again for each run. It first checks that the graded cells pass on the
unmutated notebook (cells after the last graded cell are not run: they cannot change a
grade). Then, for each mutant, it starts from a copy of the namespace right
before the solution cell, runs the mutated cell, and then the cells after it up to the
last graded cell: graded cells, solution cells and cheap cells are run again; the effect
of a slow cell (an experiment) is replayed from the unmutated run instead (so a test that
only looks at an experiment's results cannot catch a mutant through it). Each solution
cell is also evaluated unmutated this way, before and after its mutants, so a harness that
would call the correct solution wrong is reported as an error, not as a high score.

    lrgrade mutate                      every notebook in solutions/
    lrgrade mutate 01-why-lr-matters    one (or several); a path to a .py source works too
"""
from __future__ import annotations

import ast
import copy
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

BEGIN, END = "BEGIN SOLUTION", "END SOLUTION"
SKIP_PRAGMA = "no-mutate"
DEFAULT_MIN_SHARE = 0.9
DEFAULT_TIME_LIMIT = 5.0     # seconds a mutant may run (or 10x the unmutated run, if longer)
RERUN_BELOW = 0.05           # seconds: cheaper ungraded cells are re-run per mutant, others replayed
BASELINE_TIMEOUT = 900.0     # seconds for the worker's run of the whole unmutated notebook
MAX_RESTARTS = 25            # workers restarted after a mutant crashed or hung one


# -- mutants -------------------------------------------------------------------------------
@dataclass
class Mutant:
    grade_id: str            # the solution cell
    line: int                # line in the cell's source (1-based)
    description: str
    source: str              # the whole mutated cell source
    cell_index: int = -1     # index of the cell in the notebook
    file_line: int | None = None  # line in the notebook's .py source, where known


_BINOP_SWAPS = {
    ast.Add: (ast.Sub,), ast.Sub: (ast.Add,), ast.Mult: (ast.Div,),
    ast.Div: (ast.Mult, ast.FloorDiv), ast.FloorDiv: (ast.Div,), ast.Pow: (ast.Mult,),
}
_OP_TEXT = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Pow: "**",
            ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
            ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
            ast.And: "and", ast.Or: "or"}
_CMP_SWAPS = {
    ast.Lt: (ast.LtE, ast.Gt), ast.LtE: (ast.Lt, ast.GtE), ast.Gt: (ast.GtE, ast.Lt),
    ast.GtE: (ast.Gt, ast.LtE), ast.Eq: (ast.NotEq,), ast.NotEq: (ast.Eq,),
    ast.Is: (ast.IsNot,), ast.IsNot: (ast.Is,), ast.In: (ast.NotIn,), ast.NotIn: (ast.In,),
}
_NAME_SWAPS = {"min": "max", "max": "min"}
_ATTR_SWAPS = {"min": "max", "max": "min", "amin": "amax", "amax": "amin", "argmin": "argmax",
               "argmax": "argmin", "minimum": "maximum", "maximum": "minimum", "nanmin": "nanmax",
               "nanmax": "nanmin", "floor": "ceil", "ceil": "floor"}


def solution_regions(source: str) -> list[tuple[int, int]]:
    """The (first, last) lines strictly inside each BEGIN/END SOLUTION pair, 1-based."""
    regions, start = [], None
    for number, text in enumerate(source.splitlines(), 1):
        stripped = text.strip()
        if stripped.startswith("#") and BEGIN in stripped:
            start = number
        elif stripped.startswith("#") and END in stripped and start is not None:
            if number - 1 >= start + 1:
                regions.append((start + 1, number - 1))
            start = None
    return regions


def _is_number(node: ast.AST) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool))


def _is_one(node: ast.AST) -> bool:
    return _is_number(node) and node.value == 1


def _variants(node: ast.AST, parent: ast.AST | None) -> Iterator[tuple[ast.AST, str]]:
    """(replacement, kind) for every single edit of ``node`` itself (not of its children)."""
    new = copy.deepcopy
    if isinstance(node, ast.BinOp):
        for op in _BINOP_SWAPS.get(type(node.op), ()):
            m = new(node)
            m.op = op()
            yield m, "operator"
        if isinstance(node.op, (ast.Add, ast.Sub)) and _is_one(node.right):
            yield new(node.left), "off by one"
        if isinstance(node.op, ast.Add) and _is_one(node.left):
            yield new(node.right), "off by one"
    elif isinstance(node, ast.AugAssign):
        for op in _BINOP_SWAPS.get(type(node.op), ()):
            m = new(node)
            m.op = op()
            yield m, "operator"
        if isinstance(node.op, (ast.Add, ast.Sub)) and _is_one(node.value):
            yield ast.Pass(), "off by one"
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            for swap in _CMP_SWAPS.get(type(op), ()):
                m = new(node)
                m.ops[i] = swap()
                yield m, "comparison"
    elif isinstance(node, ast.BoolOp):
        m = new(node)
        m.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield m, "and/or"
    elif isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.USub):
            yield new(node.operand), "unary minus dropped"
        elif isinstance(node.op, ast.Not):
            yield new(node.operand), "not dropped"
    elif isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name) and func.id in _NAME_SWAPS:
            m = new(node)
            m.func.id = _NAME_SWAPS[func.id]
            yield m, "min/max"
        elif isinstance(func, ast.Attribute) and func.attr in _ATTR_SWAPS:
            m = new(node)
            m.func.attr = _ATTR_SWAPS[func.attr]
            yield m, "min/max" if func.attr not in ("floor", "ceil") else "floor/ceil"
        if isinstance(func, ast.Name) and func.id == "range" and node.args and not node.keywords:
            i = 0 if len(node.args) == 1 else 1
            if not isinstance(node.args[i], ast.Starred):
                for op in (ast.Add, ast.Sub):
                    m = new(node)
                    m.args[i] = ast.BinOp(new(node.args[i]), op(), ast.Constant(1))
                    yield m, "off by one"
    elif isinstance(node, ast.Subscript):
        s = node.slice
        if isinstance(s, ast.Constant) and s.value == 0 and not isinstance(s.value, bool):
            m = new(node)
            m.slice = ast.UnaryOp(ast.USub(), ast.Constant(1))
            yield m, "first/last element"
        elif isinstance(s, ast.UnaryOp) and isinstance(s.op, ast.USub) and _is_one(s.operand):
            m = new(node)
            m.slice = ast.Constant(0)
            yield m, "first/last element"
    elif isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            yield ast.Constant(not value), "True/False"
        elif isinstance(value, int):
            options = [1] if value == 0 else [value + 1, value - 1]
            negated = isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.USub)
            for v in options:
                if negated and v == 0:
                    continue  # -0 is the same as dropping the minus sign... of 0; keep noise down
                yield ast.Constant(v), "constant"
        elif isinstance(value, float):
            options = [1.0] if value == 0.0 else [value * 2, value / 2]
            for v in options:
                yield ast.Constant(v), "constant"


def _short(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    half = (width - 3) // 2
    return text[:half] + "..." + text[-half:]


def _needs_parens(text: str) -> bool:
    return not (text.isidentifier() or (text[:1].isdigit() and all(ch.isalnum() or ch in "._" for ch in text)))


def _python_source(source: str) -> str:
    """Cell source as plain Python (IPython magics turned into calls), same line numbers."""
    try:
        ast.parse(source)
        return source
    except SyntaxError:
        pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - IPython ships with the course
        return source
    return TransformerManager().transform_cell(source)


def mutants_of_cell(source: str, grade_id: str = "cell") -> list[Mutant]:
    """Every single-edit mutant of the code inside the cell's BEGIN/END SOLUTION regions."""
    regions = solution_regions(source)
    if not regions:
        return []
    source = _python_source(source)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    lines = source.splitlines()
    skip_lines = {i + 1 for i, text in enumerate(lines) if "#" in text and SKIP_PRAGMA in text.split("#", 1)[1]}
    raw = source.encode()
    starts = [0]
    for piece in raw.splitlines(keepends=True):
        starts.append(starts[-1] + len(piece))

    parents: dict[ast.AST, ast.AST] = {}
    in_fstring: set[ast.AST] = set()
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
            if isinstance(node, ast.JoinedStr) or node in in_fstring:
                in_fstring.add(child)

    def inside(node: ast.AST) -> bool:
        return any(lo <= node.lineno and node.end_lineno <= hi for lo, hi in regions)

    out: list[Mutant] = []
    seen = {source}
    for node in ast.walk(tree):
        if not hasattr(node, "lineno") or node.end_lineno is None or node in in_fstring:
            continue
        if not inside(node) or node.lineno in skip_lines:
            continue
        parent = parents.get(node)
        if isinstance(node, ast.Constant) and isinstance(parent, ast.Expr):
            continue  # a docstring or a bare literal
        for replacement, kind in _variants(node, parent):
            new_text = ast.unparse(replacement)
            old_text = ast.get_source_segment(source, node) or ast.unparse(node)
            if isinstance(node, ast.expr) and _needs_parens(new_text):
                new_text = f"({new_text})"
            a = starts[node.lineno - 1] + len(lines[node.lineno - 1].encode()[:node.col_offset])
            b = starts[node.end_lineno - 1] + len(lines[node.end_lineno - 1].encode()[:node.end_col_offset])
            mutated = (raw[:a] + new_text.encode() + raw[b:]).decode()
            if mutated in seen:
                continue
            try:
                ast.parse(mutated)
            except SyntaxError:
                continue
            seen.add(mutated)
            if isinstance(node, ast.BinOp):
                line = node.right.lineno
            elif isinstance(node, ast.Compare):
                line = node.comparators[0].lineno
            else:
                line = node.lineno
            shown_new = ast.unparse(replacement) if not isinstance(replacement, ast.Pass) else "(removed)"
            description = f"{kind}: `{_short(old_text)}` -> `{_short(shown_new)}`"
            out.append(Mutant(grade_id=grade_id, line=line, description=description, source=mutated))
    out.sort(key=lambda m: m.line)  # stable: same line keeps the walk order
    return out


# -- notebooks -----------------------------------------------------------------------------
def _role(cell) -> str:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if meta.get("solution"):
        return "solution"
    if meta.get("grade"):
        return "graded"
    return "code"


def _cell_file_lines(nb, path: Path | None) -> dict[int, int]:
    """Where each code cell starts in the .py source (jupytext percent), when it can be found."""
    if path is None or path.suffix != ".py" or not path.is_file():
        return {}
    text = path.read_text()
    found: dict[int, int] = {}
    pos = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        at = text.find(cell.source, pos)
        if at < 0:
            continue
        found[index] = text.count("\n", 0, at) + 1
        pos = at + len(cell.source)
    return found


def notebook_mutants(nb, path: Path | None = None) -> list[Mutant]:
    """The mutants of every (autograded) solution cell of an instructor notebook."""
    file_lines = _cell_file_lines(nb, path)
    out: list[Mutant] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or _role(cell) != "solution":
            continue
        meta = cell.metadata["nbgrader"]
        if meta.get("grade"):
            continue  # a manually graded answer: no tests to catch anything
        for m in mutants_of_cell(cell.source, meta.get("grade_id", f"cell-{index}")):
            m.cell_index = index
            if index in file_lines:
                m.file_line = file_lines[index] + m.line - 1
            out.append(m)
    return out


# -- results -------------------------------------------------------------------------------
@dataclass
class MutantResult:
    grade_id: str
    line: int
    file_line: int | None
    description: str
    caught: bool
    caught_by: str | None     # grade_id of the cell that failed
    reason: str               # why it was caught (the error), or why it survived
    source: str = field(repr=False, default="")


@dataclass
class NotebookReport:
    assignment: str
    path: str | None
    results: list[MutantResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)   # the harness cannot be trusted here
    notes: list[str] = field(default_factory=list)    # e.g. an ungraded cell that raises
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def caught(self) -> int:
        return sum(r.caught for r in self.results)

    @property
    def share(self) -> float:
        return self.caught / self.total if self.total else 1.0

    @property
    def survivors(self) -> list[MutantResult]:
        return [r for r in self.results if not r.caught]


@dataclass
class MutationReport:
    notebooks: list[NotebookReport]
    min_share: float = DEFAULT_MIN_SHARE

    @property
    def total(self) -> int:
        return sum(n.total for n in self.notebooks)

    @property
    def caught(self) -> int:
        return sum(n.caught for n in self.notebooks)

    @property
    def share(self) -> float:
        return self.caught / self.total if self.total else 1.0

    @property
    def survivors(self) -> list[tuple[str, MutantResult]]:
        return [(n.assignment, r) for n in self.notebooks for r in n.survivors]

    @property
    def errors(self) -> list[str]:
        return [f"{n.assignment}: {e}" for n in self.notebooks for e in n.errors]

    @property
    def ok(self) -> bool:
        return not self.errors and self.share >= self.min_share

    def to_dict(self) -> dict:
        return {"total": self.total, "caught": self.caught, "share": self.share,
                "min_share": self.min_share, "ok": self.ok, "errors": self.errors,
                "notebooks": [{**{k: v for k, v in asdict(n).items() if k != "results"},
                               "total": n.total, "caught": n.caught, "share": n.share,
                               "results": [{k: v for k, v in asdict(r).items() if k != "source"}
                                           for r in n.results]}
                              for n in self.notebooks]}


def _where(nb: NotebookReport, r: MutantResult) -> str:
    if r.file_line is not None and nb.path:
        return f"{Path(nb.path).name}:{r.file_line}"
    return f"{r.grade_id} line {r.line}"


def format_survivors(report: MutationReport) -> str:
    lines = []
    for nb in report.notebooks:
        for r in nb.survivors:
            lines.append(f"{nb.assignment}  {r.grade_id}  {_where(nb, r)}  {r.description}")
    return "\n".join(lines)


def format_report(report: MutationReport, verbose: bool = False) -> str:
    out = ["mutation check: do the graded tests catch a small bug in each solution?"]
    for nb in report.notebooks:
        out.append(f"{nb.assignment}: {nb.total} mutants, {nb.caught} caught ({nb.share:.1%}) "
                   f"in {nb.seconds:.0f} s")
        for e in nb.errors:
            out.append(f"  ERROR  {e}")
        for note in nb.notes:
            out.append(f"  note: {note}")
        for r in nb.results:
            if not r.caught:
                out.append(f"  survived  {r.grade_id:<24} {_where(nb, r):<28} {r.description}")
                if verbose and r.reason:
                    out.append(f"            ({r.reason})")
            elif verbose:
                out.append(f"  caught    {r.grade_id:<24} {_where(nb, r):<28} {r.description}"
                           f"  <- {r.caught_by}: {_short(r.reason, 90)}")
    verdict = "ok" if report.ok else ("HARNESS ERRORS" if report.errors else "below the bar")
    out.append(f"total: {report.total} mutants, {report.caught} caught ({report.share:.1%}); "
               f"bar {report.min_share:.0%}: {verdict}")
    if report.survivors:
        out.append("Each survivor is a weak test (add a case that tells the two versions apart) or an "
                   f"equivalent mutant (mark its line `# {SKIP_PRAGMA}`).")
    return "\n".join(out)


# -- the supervisor (this process) ---------------------------------------------------------
_LIVE: dict["_Worker", object] = {}  # running workers -> their run's cancel event (for Ctrl-C)
_LIVE_LOCK = threading.Lock()


class _Worker:
    """One worker subprocess and its line protocol on stdout."""

    def __init__(self, job_file: Path, cwd: Path, env: dict, cancel: object = None):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "lrgrade.mutate", "--worker", str(job_file)],
                                     cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.log, start_new_session=True)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)
        self.buf = b""
        self.eof = False
        with _LIVE_LOCK:
            _LIVE[self] = cancel

    def next_event(self, timeout: float) -> dict | None:
        """The next event, or None if the worker ended or said nothing for ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sel.select(left):
                return None
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            if not chunk:
                self.eof = True
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def why_stopped(self) -> str:
        code = self.proc.poll()
        self.log.seek(0)
        tail = self.log.read()[-1500:].decode(errors="replace").strip()
        state = "still running (no answer)" if code is None else f"exit status {code}"
        return f"worker {state}" + (f": ...{tail[-600:]}" if tail else "")

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: the worker and its children
            except ProcessLookupError:
                pass

    def close(self) -> None:
        self.kill()
        with _LIVE_LOCK:
            _LIVE.pop(self, None)
        self.proc.wait()
        self.proc.stdout.close()
        self.sel.close()
        self.log.close()


def _worker_env() -> dict:
    env = dict(os.environ)
    env.update(LRCOURSE_QUICK="1", NBGRADER_EXECUTION="autograde", MPLBACKEND="Agg",
               PYTHONDONTWRITEBYTECODE="1")
    here = str(Path(__file__).resolve().parents[1])  # autograder/, so `-m lrgrade.mutate` imports
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def check_notebook(nb, assignment: str, path: Path | None = None, *,
                   time_limit: float = DEFAULT_TIME_LIMIT, rerun_below: float = RERUN_BELOW,
                   baseline_timeout: float = BASELINE_TIMEOUT,
                   cancel: threading.Event | None = None) -> NotebookReport:
    """Run every mutant of one instructor notebook (with nbgrader metadata) in a worker."""
    started = time.monotonic()
    report = NotebookReport(assignment=assignment, path=str(path) if path else None)
    mutants = notebook_mutants(nb, path)
    cells = [{"role": _role(c), "grade_id": c.metadata.get("nbgrader", {}).get("grade_id", f"cell-{i:03d}"),
              "source": _python_source(c.source)}
             if c.cell_type == "code" else None for i, c in enumerate(nb.cells)]
    results: dict[int, MutantResult] = {}
    with tempfile.TemporaryDirectory(prefix="lrgrade-mutate-") as tmp:
        tmp = Path(tmp)
        run_dir = tmp / "run"
        if path is not None and path.parent.is_dir():
            shutil.copytree(path.parent, run_dir, ignore=shutil.ignore_patterns(
                ".*", "feedback", "*.ipynb", "__pycache__"))
        else:
            run_dir.mkdir()
        env = _worker_env()
        pending = list(range(len(mutants)))
        controls_done: set[int] = set()
        restarts = 0
        while not (cancel and cancel.is_set()):
            job = {"cells": cells, "time_limit": time_limit, "rerun_below": rerun_below,
                   "skip_controls": sorted(controls_done),
                   "mutants": [{"id": k, "cell": mutants[k].cell_index, "source": mutants[k].source}
                               for k in pending]}
            job_file = tmp / "job.json"
            job_file.write_text(json.dumps(job))
            worker = _Worker(job_file, run_dir, env, cancel)
            current, limit, finished = None, 0.0, False
            try:
                event = worker.next_event(baseline_timeout)
                if event is None:
                    report.errors.append(f"the unmutated notebook did not run to the end in the harness "
                                         f"({worker.why_stopped()})")
                    break
                report.notes.extend(event.get("notes", []))
                if event.get("failures"):
                    report.errors.extend(f"the unmutated notebook fails in the harness: {f}"
                                         for f in event["failures"])
                    break
                while True:
                    wait = limit + 30 if current is not None else baseline_timeout
                    event = worker.next_event(wait)
                    if event is None:
                        break
                    kind = event["event"]
                    if kind == "control":
                        if not event["ok"]:
                            report.errors.append(
                                f"re-running {event['grade_id']} unmutated {event['when']} its mutants fails "
                                f"({event['by']}: {event['reason']}), so the harness cannot judge its mutants")
                        controls_done.add(event["cell"])
                    elif kind == "start":
                        current, limit = event["id"], event["limit"]
                    elif kind == "mutant":
                        m = mutants[event["id"]]
                        results[event["id"]] = MutantResult(m.grade_id, m.line, m.file_line, m.description,
                                                            event["caught"], event["by"], event["reason"],
                                                            m.source)
                        pending.remove(event["id"])
                        current = None
                    elif kind == "skip":  # its cell's control failed
                        pending.remove(event["id"])
                        current = None
                    elif kind == "done":
                        finished = True
                        break
                if finished:
                    break
                if current is None:
                    report.errors.append(f"the harness stopped between mutants ({worker.why_stopped()})")
                    break
                # This mutant crashed or hung the worker: nbgrader's kernel would have died or
                # timed out too. Count it as caught and carry on with a fresh worker.
                m = mutants[current]
                hung = not worker.eof
                results[current] = MutantResult(
                    m.grade_id, m.line, m.file_line, m.description, True, m.grade_id,
                    ("hung the interpreter (killed)" if hung else "crashed the interpreter: ")
                    + ("" if hung else worker.why_stopped()), m.source)
                pending.remove(current)
                restarts += 1
                if restarts > MAX_RESTARTS:
                    report.errors.append("too many mutants crashed the harness; stopped")
                    break
                if not pending:
                    break
            finally:
                worker.close()
    report.results = [results[k] for k in sorted(results)]
    report.seconds = time.monotonic() - started
    return report


def resolve(names: list[str] | None, solutions: Path | None = None) -> list[tuple[str, Path]]:
    """(assignment, source path) for names (``NN-topic``) or paths; all of ``solutions``
    (default: the repository's solutions/) if none."""
    from .notebooks import SOLUTIONS, assignments, source_path
    solutions = solutions or SOLUTIONS
    known = assignments(solutions)
    if not names:
        return [(a, source_path(a, solutions)) for a in known]
    out = []
    for name in names:
        p = Path(name)
        if p.suffix in (".py", ".ipynb") and p.is_file():
            out.append((p.stem, p.resolve()))
        elif name.rstrip("/").split("/")[-1] in known:
            a = name.rstrip("/").split("/")[-1]
            out.append((a, source_path(a, solutions)))
        else:
            raise ValueError(f"unknown assignment {name!r} (known: {', '.join(known) or 'none'})")
    return out


def load(path: Path, assignment: str | None = None):
    from .notebooks import build_notebook, read_any
    return build_notebook(path, assignment) if path.suffix == ".py" else read_any(path)


def run_mutation_check(names: list[str] | None = None, *, min_share: float = DEFAULT_MIN_SHARE,
                       time_limit: float = DEFAULT_TIME_LIMIT, jobs: int | None = None,
                       solutions: Path | None = None) -> MutationReport:
    """The mutation check over the chosen notebooks (default: all of solutions/), in parallel."""
    chosen = resolve(names, solutions)
    if not chosen:
        raise ValueError("no notebooks to check (solutions/ has none)")
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(chosen) or 1))

    def one(item: tuple[str, Path]) -> NotebookReport:
        assignment, path = item
        try:
            nb = load(path, assignment if path.suffix == ".py" else None)
        except Exception as err:  # a broken source is reported, not raised
            return NotebookReport(assignment, str(path), errors=[f"cannot read it: {err}"])
        return check_notebook(nb, assignment, path, time_limit=time_limit, cancel=cancel)

    cancel = threading.Event()
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        reports = list(pool.map(one, chosen))
    except BaseException:  # Ctrl-C: stop every worker, not just this thread
        cancel.set()
        with _LIVE_LOCK:
            for worker, event in list(_LIVE.items()):
                if event is cancel:
                    worker.kill()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return MutationReport(reports, min_share)


# -- the worker (a subprocess) -------------------------------------------------------------
class _Timeout(BaseException):
    """Raised by the alarm in the worker; a BaseException so `except Exception` cannot eat it."""


def _rng_state() -> dict:
    import random
    state = {"random": random.getstate()}
    np = sys.modules.get("numpy")
    if np is not None and hasattr(np, "random"):
        state["numpy"] = np.random.get_state()
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_rng_state"):
        state["torch"] = torch.get_rng_state()
        try:
            if torch.cuda.is_initialized():
                state["cuda"] = torch.cuda.get_rng_state_all()
        except Exception:  # noqa: BLE001 - no CUDA build
            pass
    return state


def _set_rng_state(state: dict) -> None:
    import random
    random.setstate(state["random"])
    if "numpy" in state:
        sys.modules["numpy"].random.set_state(state["numpy"])
    if "torch" in state:
        torch = sys.modules["torch"]
        torch.set_rng_state(state["torch"])
        if "cuda" in state:
            torch.cuda.set_rng_state_all(state["cuda"])


def _error_text(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}".strip()
    return _short(text, 300)


class _Harness:
    def __init__(self, job: dict, send):
        self.cells = job["cells"]
        self.time_limit = job["time_limit"]
        self.rerun_below = job["rerun_below"]
        self.skip_controls = set(job.get("skip_controls", ()))
        self.send = send
        self.codes = {i: compile(c["source"], f"<cell {c['grade_id']}>", "exec")
                      for i, c in enumerate(self.cells) if c is not None}
        self.pre: list[dict] = []
        self.rng: list[dict] = []
        self.times: list[float] = []
        self.changes: list[tuple[dict, list[str]]] = []
        self.timed_out = False
        self.null = open(os.devnull, "w")

    def _exec(self, code, ns: dict) -> str | None:
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = self.null
        try:
            exec(code, ns)
        except (_Timeout, KeyboardInterrupt):
            raise
        except BaseException as err:  # noqa: BLE001 - a cell's error, SystemExit included
            return _error_text(err)
        finally:
            sys.stdout, sys.stderr = saved
        return None

    def baseline(self) -> None:
        import builtins
        if not hasattr(builtins, "get_ipython"):  # for cells with %magics, as in a kernel
            builtins.get_ipython = _get_ipython
        ns = {"__name__": "__main__", "__builtins__": builtins}
        failures, notes, started = [], [], time.perf_counter()
        graded = [i for i, c in enumerate(self.cells) if c is not None and c["role"] == "graded"]
        # Cells after the last graded one cannot change a grade: they are not run at all.
        self.cells = self.cells[:graded[-1] + 1] if graded else []
        live = dict(ns)
        for i, cell in enumerate(self.cells):
            self.pre.append({k: _fresh(v) for k, v in ns.items()})  # as it is now, not as cells leave it
            self.rng.append(_rng_state())
            t0 = time.perf_counter()
            if cell is not None:
                err = self._exec(self.codes[i], ns)
                if err and cell["role"] == "graded":
                    failures.append(f"{cell['grade_id']}: {err}")
                elif err:
                    notes.append(f"{cell['grade_id']} raises {err} in the unmutated run (not graded)")
            self.times.append(time.perf_counter() - t0)
            # What the cell (re)bound or deleted, for replaying it without running it.
            bound = [k for k, v in ns.items() if live.get(k, _MISSING) is not v]
            self.changes.append((bound, [k for k in live if k not in ns]))
            live = dict(ns)
        self.pre.append({k: _fresh(v) for k, v in ns.items()})
        self.changes = [({k: self.pre[i + 1][k] for k in bound}, deleted)
                        for i, (bound, deleted) in enumerate(self.changes)]
        self._close_figures()
        self.send({"event": "baseline", "failures": failures, "notes": notes,
                   "seconds": time.perf_counter() - started})

    def _on_alarm(self, signum, frame):
        self.timed_out = True
        raise _Timeout()

    @staticmethod
    def _close_figures() -> None:
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            try:
                plt.close("all")
            except Exception:  # noqa: BLE001
                pass

    def evaluate(self, s: int, code, limit: float) -> tuple[bool, str | None, str]:
        """Run cell ``s`` as ``code`` and the graded cells after it: (caught, by, reason)."""
        graded_after = [i for i in range(s + 1, len(self.cells))
                        if self.cells[i] is not None and self.cells[i]["role"] == "graded"]
        me = self.cells[s]["grade_id"]
        if not graded_after:
            return False, None, "no graded cell after it"
        ns = {k: _fresh(v) for k, v in self.pre[s].items()}
        self.timed_out = False
        where = me
        signal.setitimer(signal.ITIMER_REAL, limit, 0.25)
        try:
            try:
                _set_rng_state(self.rng[s])
                err = self._exec(code, ns)
                if self.timed_out:
                    return True, me, f"timed out after {limit:g} s"
                if err:
                    return True, me, f"the solution cell raises {err}"
                for i in range(s + 1, graded_after[-1] + 1):
                    cell = self.cells[i]
                    if cell is None:
                        continue
                    where = cell["grade_id"]
                    if cell["role"] in ("graded", "solution") or self.times[i] <= self.rerun_below:
                        _set_rng_state(self.rng[i])
                        err = self._exec(self.codes[i], ns)
                        if self.timed_out:
                            return True, where, f"timed out after {limit:g} s"
                        if err and cell["role"] == "graded":
                            return True, where, err
                    else:  # a slow cell: replay what it did in the unmutated run
                        changed, deleted = self.changes[i]
                        ns.update({k: _fresh(v) for k, v in changed.items()})
                        for k in deleted:
                            ns.pop(k, None)
                return False, None, "every graded cell passed"
            except _Timeout:
                return True, where, f"timed out after {limit:g} s"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.timed_out = False
            self._close_figures()

    def run(self, mutants: list[dict]) -> None:
        signal.signal(signal.SIGALRM, self._on_alarm)
        by_cell: dict[int, list[dict]] = {}
        for m in mutants:
            by_cell.setdefault(m["cell"], []).append(m)
        for s, group in by_cell.items():
            original = self.codes[s]
            gid = self.cells[s]["grade_id"]
            t0 = time.perf_counter()  # the unmutated cell, run as a mutant would be: must pass
            caught, by, reason = self.evaluate(s, original, max(60.0, self.time_limit))
            control_time = time.perf_counter() - t0
            limit = max(self.time_limit, 10 * control_time)
            if s not in self.skip_controls:
                self.send({"event": "control", "cell": s, "grade_id": gid, "when": "before",
                           "ok": not caught, "by": by, "reason": reason})
            if caught:  # (already reported by an earlier worker, if skipped)
                for m in group:
                    self.send({"event": "skip", "id": m["id"]})
                continue
            for m in group:
                self.send({"event": "start", "id": m["id"], "limit": limit})
                t1 = time.perf_counter()
                try:
                    code = compile(m["source"], f"<mutant of {gid}>", "exec")
                except SyntaxError as err:
                    self.send({"event": "mutant", "id": m["id"], "caught": True, "by": gid,
                               "reason": f"does not compile: {err}", "seconds": 0.0})
                    continue
                caught, by, reason = self.evaluate(s, code, limit)
                self.send({"event": "mutant", "id": m["id"], "caught": caught, "by": by, "reason": reason,
                           "seconds": time.perf_counter() - t1})
            caught, by, reason = self.evaluate(s, original, max(60.0, limit))
            self.send({"event": "control", "cell": s, "grade_id": gid, "when": "after",
                       "ok": not caught, "by": by, "reason": reason})
        self.send({"event": "done"})


_MISSING = object()


def _fresh(value):
    """A copy of a top-level list, dict, set or NumPy array (a test that appends to a list
    or writes into an array must not leak into the next mutant's run); anything else as is."""
    kind = type(value)
    if kind in (list, dict, set, bytearray):
        return kind(value)
    np = sys.modules.get("numpy")
    if np is not None and kind is np.ndarray and value.nbytes <= 1 << 20:
        return value.copy()
    return value


def _get_ipython():
    """An IPython shell for the %magics of a cell (no GUI: matplotlib stays on Agg)."""
    from IPython.core.interactiveshell import InteractiveShell

    class _Shell(InteractiveShell):
        def enable_gui(self, gui=None):
            pass

    return _Shell.instance() if not InteractiveShell.initialized() else InteractiveShell.instance()


def _worker_main(job_file: str) -> int:
    job = json.loads(Path(job_file).read_text())
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # whatever the cells print (also from C) goes nowhere
    os.close(null)

    def send(event: dict) -> None:
        channel.write(json.dumps(event) + "\n")
        channel.flush()

    harness = _Harness(job, send)
    harness.baseline()
    harness.run(job["mutants"])
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.exit(_worker_main(sys.argv[2]))
    sys.exit("usage: lrgrade mutate [ASSIGNMENT ...]   (this module's own entry point is for the worker)")
