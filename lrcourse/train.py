"""One training loop for every experiment: it takes a schedule ``lr(step)`` and records
the loss and the learning rate of every update."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from .data import DigitsData, load_digits
from .models import DigitsMLP
from .runtime import pick_device, progress as progress_line, seed_everything

Schedule = Callable[[int], float]


@dataclass
class History:
    """What one run did. ``loss[k]`` is the minibatch loss seen by update ``k`` (before it
    was applied) and ``lr[k]`` the learning rate update ``k`` used."""

    lr: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    diverged: bool = False  # stopped early because the loss became inf or NaN

    def final_loss(self, window: int = 20) -> float:
        """Mean training loss over the last ``window`` updates (inf if the run diverged)."""
        if self.diverged or not self.loss:
            return math.inf
        tail = self.loss[-window:]
        return sum(tail) / len(tail)


OPTIMIZERS = ("sgd", "adamw")


def check_optimizer(name: str) -> str:
    """``name`` if the trainers know it: "sgd" (with momentum) or "adamw"."""
    if name not in OPTIMIZERS:
        hint = (" (AdamW, with its decoupled weight decay, is the one the course uses; "
                "torch.optim.Adam adds the decay to the gradient)") if name == "adam" else ""
        raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {name!r}{hint}")
    return name


def as_schedule(lr: float | Schedule) -> Schedule:
    """``lr`` as a schedule: a callable is one already, a number is a constant LR."""
    if callable(lr):
        return lr
    value = float(lr)
    return lambda step: value


def minibatch_indices(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """The training-set indices of every update's minibatch, in order, forever.

    Shuffle with ``generator``, walk through the permutation ``batch_size`` at a time, and
    reshuffle when the next batch would run past the end (the ragged end of each epoch is
    dropped). :func:`train` and :func:`lrcourse.batched.train_batched` both draw from it, so
    a seed gives the same minibatches in either.
    """
    if batch_size > n:
        raise ValueError(f"batch_size={batch_size} is larger than the training set ({n})")

    def batches() -> Iterator[torch.Tensor]:
        order, cursor = torch.randperm(n, generator=generator), 0
        while True:
            if cursor + batch_size > n:  # next epoch: a new shuffle, drop the ragged end
                order, cursor = torch.randperm(n, generator=generator), 0
            yield order[cursor:cursor + batch_size]
            cursor += batch_size

    return batches()


def train_model(
    lr: float | Schedule,
    total_steps: int,
    *,
    data: DigitsData | None = None,
    model_fn: Callable[[], torch.nn.Module] = DigitsMLP,
    optimizer: str = "sgd",
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device | None = None,
    eval_every: int | None = None,
    progress: bool | None = None,
) -> tuple[History, torch.nn.Module]:
    """Train a fresh model for ``total_steps`` updates; its :class:`History` and the trained model.

    ``lr`` is a constant or a schedule ``lr(step) -> float``: update ``step`` (counted from
    0) uses ``lr(step)``. The model's initial weights and the order of the minibatches
    depend only on ``seed``, so two runs that differ only in the schedule see the same
    data in the same order. Training stops early if the loss becomes inf or NaN.
    """
    schedule = as_schedule(lr)
    device = pick_device(device)
    data = (data if data is not None else load_digits()).to(device)
    generator = seed_everything(seed)
    model = model_fn().to(device)
    params = model.parameters()
    if check_optimizer(optimizer) == "sgd":
        opt = torch.optim.SGD(params, lr=0.0, momentum=momentum, weight_decay=weight_decay)
    else:
        opt = torch.optim.AdamW(params, lr=0.0, betas=betas, weight_decay=weight_decay)

    batches = minibatch_indices(len(data.x_train), batch_size, generator)

    def batch_loss(step: int) -> torch.Tensor:
        idx = next(batches).to(device)
        return F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])

    history = run_updates(opt, schedule, total_steps, batch_loss, lambda: evaluate(model, data),
                          eval_every=eval_every, progress=progress)
    return history, model


def train(lr: float | Schedule, total_steps: int, **kwargs) -> History:
    """:func:`train_model` (same arguments) without the model: its :class:`History`."""
    return train_model(lr, total_steps, **kwargs)[0]


def run_updates(
    opt: torch.optim.Optimizer,
    schedule: Schedule,
    total_steps: int,
    batch_loss: Callable[[int], torch.Tensor],
    evaluate_fn: Callable[[], float],
    *,
    eval_every: int | None = None,
    progress: bool | None = None,
) -> History:
    """The update loop every trainer shares: set update ``step``'s LR to ``schedule(step)``
    (times a group's ``lr_scale``, for groups with LRs of their own), record the loss of its
    minibatch (``batch_loss(step)``), stop if that loss is inf or NaN, else step the
    optimizer; every ``eval_every`` updates and after the last, record ``evaluate_fn()``.
    ``History.lr`` records the first group's LR."""
    history = History()
    with progress_line(total_steps, f"lr={schedule(0):.3g}", progress) as bar:
        for step in range(total_steps):
            step_lr = float(schedule(step))
            for group in opt.param_groups:
                group["lr"] = step_lr * group.get("lr_scale", 1.0)
            loss = batch_loss(step)
            loss_value = loss.item()
            history.lr.append(opt.param_groups[0]["lr"])
            history.loss.append(loss_value)
            if not math.isfinite(loss_value):
                history.diverged = True
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

            if eval_every and ((step + 1) % eval_every == 0 or step + 1 == total_steps):
                history.val_steps.append(step + 1)
                history.val_loss.append(evaluate_fn())
            bar.update(1)
    return history


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: DigitsData) -> float:
    """Validation cross-entropy of ``model``."""
    model.eval()
    loss = F.cross_entropy(model(data.x_val), data.y_val).item()
    model.train()
    return loss


def lr_sweep(lrs: Sequence[float], total_steps: int, **train_kwargs) -> dict[float, History]:
    """Train one model per constant learning rate, each from the same seed."""
    data = train_kwargs.pop("data", None)
    device = train_kwargs.get("device")
    data = data if data is not None else load_digits(pick_device(device))
    return {lr: train(lr, total_steps, data=data, **train_kwargs) for lr in lrs}
