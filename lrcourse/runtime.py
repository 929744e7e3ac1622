"""Where code runs and how reproducibly: device choice, seeding, quick mode."""
from __future__ import annotations

import os
import random

import numpy as np
import torch


def pick_device(prefer: str | None = None) -> torch.device:
    """The fastest device available: ``cuda``, then ``mps``, then ``cpu``.

    ``prefer`` (or the environment variable ``LRCOURSE_DEVICE``) forces one, e.g.
    ``"cpu"`` to reproduce a CPU run on a GPU machine.
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
    return bool(os.environ.get("NBGRADER_EXECUTION")) or os.environ.get("CI", "").lower() == "true"
