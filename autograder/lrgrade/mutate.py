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

How it runs, fast and in process: one worker (a subprocess, with
``NBGRADER_EXECUTION=autograde``, as under grading, and ``MPLBACKEND=Agg``) executes the notebook's code
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
from pathlib import Path

from .mutants import cell_role, mutants_of_cell, notebook_mutants, python_source, solution_regions
from .mutate_report import MutantResult, MutationReport, NotebookReport, format_report, format_survivors
from .notebooks import cache_dir

# The check in three modules: mutants.py makes the mutants, mutate_worker.py runs them (a
# subprocess), mutate_report.py holds and prints the results; this one supervises, and is
# the API.
__all__ = ["check_notebook", "run_mutation_check", "resolve", "load", "mutants_of_cell", "solution_regions",
           "format_report", "format_survivors", "MutationReport", "NotebookReport", "MutantResult"]

DEFAULT_MIN_SHARE = 0.9
DEFAULT_TIME_LIMIT = 5.0     # seconds a mutant may run (or 10x the unmutated run, if longer)
RERUN_BELOW = 0.05           # seconds: cheaper ungraded cells are re-run per mutant, others replayed
BASELINE_TIMEOUT = 900.0     # seconds for the worker's run of the whole unmutated notebook
MAX_RESTARTS = 25            # workers restarted after a mutant crashed or hung one


# -- the supervisor (this process) ---------------------------------------------------------
_LIVE: dict["_Worker", object] = {}  # running workers -> their run's cancel event (for Ctrl-C)
_LIVE_LOCK = threading.Lock()


class _Worker:
    """One worker subprocess and its line protocol on stdout."""

    def __init__(self, job_file: Path, cwd: Path, env: dict, cancel: object = None):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "lrgrade.mutate_worker", str(job_file)],
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
    env.update(NBGRADER_EXECUTION="autograde", MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    here = str(Path(__file__).resolve().parents[1])  # autograder/, so `-m lrgrade.mutate_worker` imports
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
    cells = [{"role": cell_role(c), "grade_id": c.metadata.get("nbgrader", {}).get("grade_id", f"cell-{i:03d}"),
              "source": python_source(c.source)}
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


# -- the cache: a notebook's report, kept under the digest of everything it depends on ------
def cache_key(nb, path: Path | None, time_limit: float, code: bytes) -> str:
    """The notebook, the files beside it (copied to its run folder), the limits, and what
    code_digest covers: the grader's code, the config, the course's code and data, the
    installed packages (``code``, from code_digest). Any change to one of them runs the check again."""
    import hashlib

    from .nbgrader_course import source_files
    digest = hashlib.sha256(code)
    digest.update(json.dumps([nb, time_limit, RERUN_BELOW, BASELINE_TIMEOUT], sort_keys=True).encode())
    if path is not None and path.parent.is_dir():
        for rel, f in source_files(path.parent):
            if f.suffix != ".ipynb":  # the run folder gets no notebooks (check_notebook)
                digest.update(rel.encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()


def _cached(key: str) -> NotebookReport | None:
    folder = cache_dir("mutation")
    try:
        data = json.loads((folder / f"{key}.json").read_text()) if folder else None
    except (OSError, ValueError):
        return None
    if not data:
        return None
    results = [MutantResult(**r) for r in data.pop("results")]
    return NotebookReport(**data, results=results, cached=True)


def _store(key: str, report: NotebookReport) -> None:
    folder = cache_dir("mutation")
    if folder is None or report.errors:  # a harness error may be passing: run it again next time
        return
    from dataclasses import asdict
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{key}.json.{os.getpid()}.{threading.get_ident()}"
        tmp.write_text(json.dumps({k: v for k, v in asdict(report).items() if k != "cached"}))
        os.replace(tmp, folder / f"{key}.json")
    except OSError:  # a read-only home: the check still ran, it is only not kept
        pass


def run_mutation_check(names: list[str] | None = None, *, min_share: float = DEFAULT_MIN_SHARE,
                       time_limit: float = DEFAULT_TIME_LIMIT, jobs: int | None = None,
                       solutions: Path | None = None, use_cache: bool = True) -> MutationReport:
    """The mutation check over the chosen notebooks (default: all of solutions/), in parallel;
    a notebook checked before with nothing changed (``cache_key``) reuses its report."""
    chosen = resolve(names, solutions)
    if not chosen:
        raise ValueError("no notebooks to check (solutions/ has none)")
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(chosen) or 1))
    if use_cache:
        from .nbgrader_course import code_digest
        code = code_digest()

    def one(item: tuple[str, Path]) -> NotebookReport:
        assignment, path = item
        try:
            nb = load(path, assignment if path.suffix == ".py" else None)
        except Exception as err:  # a broken source is reported, not raised
            return NotebookReport(assignment, str(path), errors=[f"cannot read it: {err}"])
        key = cache_key(nb, path, time_limit, code) if use_cache else None
        report = _cached(key) if key else None
        if report is None:
            report = check_notebook(nb, assignment, path, time_limit=time_limit, cancel=cancel)
            if key and not cancel.is_set():
                _store(key, report)
        return report

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
