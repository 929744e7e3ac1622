"""Where code runs and how reproducibly: device choice, seeding, quick mode."""
from __future__ import annotations

import os
import random
import sys
import time

import numpy as np
import torch


def pick_device(prefer: str | None = None) -> torch.device:
    """The fastest device available: ``cuda``, then ``mps``, then ``cpu``.

    ``prefer`` (or the environment variable ``LRCOURSE_DEVICE``) forces one, e.g.
    ``"cpu"`` to reproduce a CPU run on a GPU machine; every trainer's ``device=None``
    means this choice.
    """
    prefer = prefer or os.environ.get("LRCOURSE_DEVICE")
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch, and return a CPU generator seeded the same way.

    Pass the returned generator to anything that draws random numbers (batch order,
    initialisation) so a run depends on its seed only, not on what ran before it.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def set_cpu_threads() -> int:
    """Use one CPU thread for PyTorch unless ``LRCOURSE_THREADS`` says otherwise.

    The course's models are tiny: a second thread gains little on an idle machine, and on a
    busy one (a grader running other work, a laptop with a browser open) PyTorch's
    threads wait on each other and the same sweep was measured 10-200x slower. One thread
    keeps run times predictable. Called once when ``lrcourse`` is imported.
    """
    threads = int(os.environ.get("LRCOURSE_THREADS", "1"))
    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def quick_mode() -> bool:
    """True while grading (nbgrader sets NBGRADER_EXECUTION) or in CI.

    Experiments use it to shrink to a few seconds; they still show their point.
    ``LRCOURSE_QUICK=1`` or ``0`` overrides the guess either way.
    """
    forced = os.environ.get("LRCOURSE_QUICK")
    if forced is not None:
        return forced.strip().lower() not in ("", "0", "false", "no")
    return under_grading() or os.environ.get("CI", "").lower() == "true"


def under_grading() -> bool:
    """True while nbgrader runs the notebook (it sets ``NBGRADER_EXECUTION``)."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def in_notebook() -> bool:
    """True in a Jupyter kernel that a person is watching (not under nbgrader)."""
    return "ipykernel" in sys.modules and not under_grading()


class Progress:
    """A one-line text progress display, updated in place while a run trains.

    It is plain text in a display handle, not a widget: a saved and reopened notebook
    shows nothing where it was (``close`` empties it), never "model not found". Use it as
    a context manager, so a run that stops early (a divergence, an error) still closes it.
    """

    WIDTH = 24  # characters of the bar
    EVERY_S = 0.25  # redraw at most this often: each redraw is a message to the browser

    def __init__(self, total: int, desc: str):
        from IPython.display import display

        self.total, self.desc, self.n = max(int(total), 1), desc, 0
        self.last = time.perf_counter()
        # None outside IPython (a script asked for progress): then it shows nothing
        self.handle = display({"text/plain": self._line()}, raw=True, display_id=True)

    def _line(self) -> str:
        done = round(self.WIDTH * self.n / self.total)
        return f"{self.desc}: [{'#' * done}{'.' * (self.WIDTH - done)}] {self.n}/{self.total}"

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if self.handle is not None and now - self.last >= self.EVERY_S:
            self.last = now
            self.handle.update({"text/plain": self._line()}, raw=True)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.update({"text/plain": ""}, raw=True)
            self.handle = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "_NoProgress":
        return self

    def __exit__(self, *exc) -> None:
        pass


def progress(total: int, desc: str, enabled: bool | None = None):
    """A :class:`Progress` line in a watched notebook (or when ``enabled``), else a no-op."""
    if enabled is None:
        enabled = in_notebook()
    return Progress(total, desc) if enabled else _NoProgress()
