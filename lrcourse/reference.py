"""PyTorch's own schedulers as lists of learning rates, for the reference checks.

The graded tests compare a student's ``lr(step)`` with PyTorch's scheduler over every
step of a run. For that the scheduler has to be stepped the way PyTorch documents it,
``optimizer.step()`` and then ``scheduler.step()``, so that update ``k`` (counted from 0)
uses the learning rate the optimizer holds before the ``k``-th ``scheduler.step()``.
Stepping the scheduler first skips the first value and makes PyTorch print a warning;
:func:`torch_lrs` never does.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

SchedulerFactory = Callable[[torch.optim.Optimizer], Optional[torch.optim.lr_scheduler.LRScheduler]]


def torch_lrs(make_scheduler: SchedulerFactory, lr_max: float, total_steps: int) -> list[float]:
    """The learning rate used by each of ``total_steps`` updates under a PyTorch scheduler.

    ``make_scheduler(optimizer)`` builds the scheduler on the optimizer it is given, for
    example ``lambda opt: StepLR(opt, step_size=30, gamma=0.1)``; ``None`` (or a factory
    returning None) means no scheduler, a constant learning rate. The optimizer is a
    throwaway ``torch.optim.SGD`` on a single parameter with ``lr=lr_max`` (the
    schedulers' base learning rate). The parameter has no gradient, so ``optimizer.step()``
    leaves it alone, but the call still counts: the scheduler sees the right order and
    emits no warning.

    Returns ``[lr used by update 0, lr used by update 1, ...]`` as plain floats.
    """
    total_steps = int(total_steps)
    if total_steps < 0:
        raise ValueError(f"total_steps must be >= 0, got {total_steps}")
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=float(lr_max))
    scheduler = make_scheduler(optimizer) if make_scheduler is not None else None
    lrs: list[float] = []
    for _ in range(total_steps):
        lrs.append(float(optimizer.param_groups[0]["lr"]))  # what this update uses
        optimizer.step()  # the update (a no-op here: there is no gradient)
        if scheduler is not None:
            scheduler.step()  # then move the schedule on to the next update
    return lrs


__all__ = ["torch_lrs"]
