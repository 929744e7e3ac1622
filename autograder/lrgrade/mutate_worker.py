"""The mutation check's worker, a subprocess: runs a notebook once, then each mutant
against copies of its namespace, and reports on stdout (see lrgrade.mutate).

    python -m lrgrade.mutate_worker JOB_FILE
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from .mutants import shorten


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
    return shorten(text, 300)


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
    """A copy of a top-level list, dict, set, NumPy array or torch tensor (a mutant that
    appends to a list or writes into an array or tensor in place must not leak into the
    next mutant's run); anything else as is. Arrays and tensors over 1 MB are shared."""
    kind = type(value)
    if kind in (list, dict, set, bytearray):
        return kind(value)
    np = sys.modules.get("numpy")
    if np is not None and kind is np.ndarray and value.nbytes <= 1 << 20:
        return value.copy()
    torch = sys.modules.get("torch")
    if (torch is not None and isinstance(value, torch.Tensor) and not value.requires_grad
            and value.element_size() * value.nelement() <= 1 << 20):
        return value.clone()
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
    if len(sys.argv) == 2:
        sys.exit(_worker_main(sys.argv[1]))
    sys.exit("usage: lrgrade mutate [ASSIGNMENT ...]   (this module is the check's worker, started by it)")
