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


def torch_lrs_and_momenta(make_scheduler: SchedulerFactory, lr_max: float, total_steps: int,
                          optimizer: str = "sgd") -> list[tuple[float, float]]:
    """``(lr, momentum)`` used by each of ``total_steps`` updates under a PyTorch scheduler
    that also sets the momentum (``OneCycleLR``, ``CyclicLR``).

    Like :func:`torch_lrs`, but the throwaway optimizer is ``torch.optim.SGD`` with momentum
    (``optimizer="sgd"``; the momentum read is ``group["momentum"]``) or ``torch.optim.AdamW``
    (``optimizer="adamw"``; the momentum read is ``beta1``, ``group["betas"][0]``, which is what
    these schedulers cycle for Adam).
    """
    total_steps = int(total_steps)
    param = torch.nn.Parameter(torch.zeros(1))
    if optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD([param], lr=float(lr_max), momentum=0.9)
    elif optimizer == "adamw":
        opt = torch.optim.AdamW([param], lr=float(lr_max))
    else:
        raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {optimizer!r}")
    scheduler = make_scheduler(opt)
    used: list[tuple[float, float]] = []
    for _ in range(total_steps):
        group = opt.param_groups[0]
        momentum = group["momentum"] if optimizer == "sgd" else group["betas"][0]
        used.append((float(group["lr"]), float(momentum)))  # what this update uses
        opt.step()
        if scheduler is not None:
            scheduler.step()
    return used


def torch_plateau_lrs(metrics, lr: float, **plateau_kwargs) -> list[float]:
    """The learning rate in force after each ``ReduceLROnPlateau.step(metric)``, one per metric.

    ``plateau_kwargs`` go to ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (mode, factor,
    patience, threshold, threshold_mode, cooldown, min_lr, eps) on a throwaway SGD optimizer
    with ``lr``; each metric is one epoch: ``optimizer.step()``, then ``scheduler.step(metric)``.
    """
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=float(lr))
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **plateau_kwargs)
    lrs: list[float] = []
    for metric in metrics:
        opt.step()
        scheduler.step(float(metric))
        lrs.append(float(opt.param_groups[0]["lr"]))
    return lrs


def torch_adamw_decay(make_scheduler: SchedulerFactory, lr: float, weight_decay: float, total_steps: int) -> float:
    """The factor ``torch.optim.AdamW`` multiplies a weight by over ``total_steps`` updates when
    its gradient is always zero (so only the weight decay moves it), under a PyTorch scheduler
    (``None``: a constant ``lr``). Computed in float64 on a weight of 1.0."""
    param = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = torch.optim.AdamW([param], lr=float(lr), weight_decay=float(weight_decay))
    scheduler = make_scheduler(opt) if make_scheduler is not None else None
    for _ in range(int(total_steps)):
        param.grad = torch.zeros_like(param)  # a zero gradient, not None: AdamW skips a weight without one
        opt.step()
        if scheduler is not None:
            scheduler.step()
    return float(param.detach()[0])


__all__ += ["torch_lrs_and_momenta", "torch_plateau_lrs", "torch_adamw_decay"]
