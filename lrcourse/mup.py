"""Width and the learning rate (notebook 11): an MLP whose width is a parameter, a trainer
that gives every tensor its own learning rate, and the best LR read off a sweep.

:class:`WidthMLP` is ``n_in -> width -> ... -> width -> n_out`` with ReLUs. Its linear
layers are ``model.layers[0]`` (the input layer), ``model.layers[1:-1]`` (the hidden layers,
width x width) and ``model.layers[-1]`` (the readout); the readout sees its input multiplied
by ``model.output_mult``, the one multiplier muP puts in an MLP.

:func:`train_width_batched` trains many copies of one width at once: their weights are
stacked, each layer is one batched matrix product, autograd gives the gradients, and
Adam's update is written out so that copy ``n``'s tensor ``name`` steps with the learning
rate ``lrs[n] * lr_mults[name]``. Copy ``n`` starts from the weights and sees the
minibatches that :func:`train_with_groups` (a plain ``torch.optim.AdamW`` loop over
parameter groups) would use with ``seed=seeds[n]``, and the two agree to float rounding,
which training amplifies most where a run is near blowing up (as in
:mod:`lrcourse.batched`). Both return :class:`lrcourse.train.History` objects.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .batched import per_copy
from .data import DigitsData, load_digits
from .runtime import pick_device, progress as progress_line, seed_everything
from .train import History, minibatch_indices, run_updates

__all__ = ["WidthMLP", "lr_multipliers", "train_with_groups", "train_width_batched", "best_lr"]


class WidthMLP(nn.Module):
    """``n_in -> width -> ... -> width -> n_out`` MLP (``n_layers`` linear layers with ReLUs
    between them); the readout's input is multiplied by ``output_mult``."""

    def __init__(self, width: int, n_layers: int = 3, n_in: int = 64, n_out: int = 10, bias: bool = True,
                 output_mult: float = 1.0):
        super().__init__()
        if n_layers < 2:
            raise ValueError(f"a WidthMLP has an input layer and a readout: n_layers >= 2, got {n_layers}")
        dims = [n_in] + [width] * (n_layers - 1) + [n_out]
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=bias) for a, b in zip(dims[:-1], dims[1:]))
        self.output_mult = float(output_mult)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return self.layers[-1](x * self.output_mult)


def lr_multipliers(model: nn.Module, groups: Sequence[dict], lr: float) -> dict[str, float]:
    """Each parameter's name -> its group's learning rate divided by ``lr``; every parameter
    of ``model`` must be in exactly one group."""
    names = {id(p): name for name, p in model.named_parameters()}
    out: dict[str, float] = {}
    for group in groups:
        for p in group["params"]:
            name = names.get(id(p))
            if name is None:
                raise ValueError("a group holds a tensor that is not a parameter of the model")
            if name in out:
                raise ValueError(f"{name} is in more than one group")
            out[name] = float(group["lr"]) / lr
    missing = [name for name in names.values() if name not in out]
    if missing:
        raise ValueError(f"no group holds {', '.join(missing)}")
    return out


def train_with_groups(
    model_fn: Callable[[], nn.Module],
    groups_fn: Callable[[nn.Module], list],
    total_steps: int,
    *,
    seed: int = 0,
    data: DigitsData | None = None,
    batch_size: int = 64,
    betas: tuple[float, float] = (0.9, 0.999),
    device: str | torch.device | None = None,
) -> History:
    """Train ``model_fn()`` with ``torch.optim.AdamW(groups_fn(model), weight_decay=0)``, each
    group at its own constant LR (``History.lr`` records the first group's); stop if the loss
    becomes inf or NaN."""
    device = pick_device(device)
    data = (data if data is not None else load_digits()).to(device)
    generator = seed_everything(seed)  # as lrcourse.train.train: same weights, same minibatches
    model = model_fn().to(device)
    groups = groups_fn(model)
    for group in groups:  # each group's constant LR (AdamW's default 1e-3 if it names none),
        group["lr_scale"] = group.pop("lr", 1e-3)  # as a multiple of a schedule that is 1 throughout
    opt = torch.optim.AdamW(groups, betas=betas, weight_decay=0.0)
    batches = minibatch_indices(len(data.x_train), batch_size, generator)

    def batch_loss(step: int) -> torch.Tensor:
        idx = next(batches).to(device)
        return F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])

    return run_updates(opt, lambda step: 1.0, total_steps, batch_loss, lambda: math.nan, progress=False)


def _stacked_forward(params: dict[str, torch.Tensor], x: torch.Tensor, n_layers: int,
                     output_mult: float) -> torch.Tensor:
    """WidthMLP's forward for N stacked copies: x is N x B x n_in, the logits N x B x n_out."""
    h = x
    for i in range(n_layers):
        if i == n_layers - 1:
            h = h * output_mult
        weight, bias = params[f"layers.{i}.weight"].transpose(1, 2), params.get(f"layers.{i}.bias")
        h = torch.bmm(h, weight) if bias is None else torch.baddbmm(bias.unsqueeze(1), h, weight)
        if i < n_layers - 1:
            h = torch.relu(h)
    return h


def train_width_batched(
    model_fn: Callable[[], nn.Module],
    lrs: Sequence[float],
    total_steps: int,
    *,
    seeds: Sequence[int],
    lr_mults: dict[str, float] | None = None,
    init: Callable[[nn.Module], None] | None = None,
    data: DigitsData | None = None,
    batch_size: int = 64,
    betas: tuple[float, float] = (0.9, 0.999),
    device: str | torch.device | None = None,
    progress: bool | None = None,
) -> list[History]:
    """Train one copy of ``model_fn()`` (a :class:`WidthMLP`) per ``(lrs[n], seeds[n])``, all
    at once, with Adam (no weight decay); a :class:`History` each.

    Copy ``n``'s tensor ``name`` uses the learning rate ``lrs[n] * lr_mults[name]`` (1 where
    ``lr_mults`` has no entry); ``History.lr`` records ``lrs[n]``. ``init(model)``, if given,
    changes each fresh model in place before training. A copy whose loss becomes inf or NaN
    stops there (``diverged``); the others go on.
    """
    if len(lrs) != len(seeds):
        raise ValueError(f"got {len(lrs)} learning rates and {len(seeds)} seeds")
    histories = [History() for _ in lrs]
    if not histories:
        return histories
    device = pick_device(device)
    data = (data if data is not None else load_digits()).to(device)
    lr_mults = lr_mults or {}

    # The initial weights and minibatch order of each distinct seed, made as train_with_groups makes them.
    unique = list(dict.fromkeys(int(s) for s in seeds))
    initial, batches = {}, {}
    for s in unique:
        generator = seed_everything(s)
        model = model_fn().to(device)
        if not isinstance(model, WidthMLP):
            raise TypeError(f"train_width_batched trains WidthMLP models, got {type(model).__name__}")
        if init is not None:
            init(model)
        initial[s] = {name: p.detach() for name, p in model.named_parameters()}
        batches[s] = minibatch_indices(len(data.x_train), batch_size, generator)
    n_layers, output_mult = len(model.layers), model.output_mult
    params = {name: torch.stack([initial[int(s)][name] for s in seeds]) for name in initial[unique[0]]}
    del initial

    # -lr of every copy for every tensor, shaped to broadcast over the stacked tensor
    neg_lr = {name: per_copy([-lr * lr_mults.get(name, 1.0) for lr in lrs], p) for name, p in params.items()}
    exp_avg = {name: torch.zeros_like(p) for name, p in params.items()}
    exp_avg_sq = {name: torch.zeros_like(p) for name, p in params.items()}
    row_of_seed = torch.tensor([unique.index(int(s)) for s in seeds], device=device)
    alive = torch.ones(len(histories), dtype=torch.bool, device=device)
    beta1, beta2 = betas
    with progress_line(total_steps, f"{len(histories)} runs", progress) as bar:
        for step in range(total_steps):
            idx = torch.stack([next(batches[s]) for s in unique]).to(device)[row_of_seed]
            leaves = {name: p.requires_grad_() for name, p in params.items()}
            logits = _stacked_forward(leaves, data.x_train[idx], n_layers, output_mult)
            losses = F.cross_entropy(logits.flatten(0, 1), data.y_train[idx].flatten(),
                                     reduction="none").view(len(histories), -1).mean(1)
            grads = torch.autograd.grad(losses.sum(), list(leaves.values()))  # copies are independent
            for history, lr, value, running in zip(histories, lrs, losses.tolist(), alive.tolist()):
                if running:
                    history.lr.append(float(lr))
                    history.loss.append(value)
                    history.diverged = not math.isfinite(value)
            alive &= torch.isfinite(losses.detach())
            with torch.no_grad():  # AdamW's step as torch.optim.AdamW computes it (weight_decay=0)
                t = step + 1
                bias1, bias2_sqrt = 1 - beta1 ** t, math.sqrt(1 - beta2 ** t)
                for (name, p), g in zip(params.items(), grads):
                    p.requires_grad_(False)
                    g = torch.where(alive.view(-1, *[1] * (g.dim() - 1)), g, 0.0)  # a stopped copy stays put
                    exp_avg[name].lerp_(g, 1 - beta1)
                    exp_avg_sq[name].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                    denom = (exp_avg_sq[name].sqrt() / bias2_sqrt).add_(1e-8)
                    p.addcdiv_(exp_avg[name] * (neg_lr[name] / bias1), denom)
            bar.update(1)
            if not alive.any():
                break
    return histories


def best_lr(lrs: Sequence[float], losses: Sequence[float], half: int = 2) -> float:
    """The learning rate at the bottom of a parabola fitted to log(loss) against log(lr)
    through the grid's lowest point and up to ``half`` finite neighbours on each side.

    Falls back to the lowest grid point when the fit has no valley inside those points (or
    the lowest point is at the edge of the grid). ``lrs`` must be increasing.
    """
    lrs, losses = np.asarray(lrs, dtype=np.float64), np.asarray(losses, dtype=np.float64)
    if not np.isfinite(losses).any():
        return math.nan
    i = int(np.nanargmin(np.where(np.isfinite(losses), losses, np.inf)))
    window = np.arange(max(0, i - half), min(len(lrs), i + half + 1))
    window = window[np.isfinite(losses[window])]
    if len(window) < 3 or i in (0, len(lrs) - 1):
        return float(lrs[i])
    x, y = np.log(lrs[window]), np.log(losses[window])
    a, b, _ = np.polyfit(x, y, 2)
    if a <= 0 or not x[0] <= -b / (2 * a) <= x[-1]:
        return float(lrs[i])
    return float(math.exp(-b / (2 * a)))
