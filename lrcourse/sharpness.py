"""Helpers of notebook 10 (sharpness and the edge of stability): a small MLP trained by
full-batch gradient descent or Adam, many runs at once, with the sharpness of every run
tracked while it trains; and the explorer that replays those runs.

The runs are stacked: run ``r`` owns slice ``r`` of every weight tensor, so one batched
matrix product computes every run's loss, and one backward pass every run's gradient (the
runs share no weights, so the gradient of the summed losses is each run's own gradient).
A Hessian-vector product is one more backward pass through that gradient, for all runs at
once; power iteration on it measures every run's sharpness together. (The same loop written
with ``torch.func``, ``vmap`` of ``grad`` and of ``jvp(grad)`` over flat parameter vectors,
took about 3x the CPU time here: 4 runs of 500 updates, 5.7 s against 1.9 s.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .data import load_digits
from .runtime import pick_device
from .train import Schedule, as_schedule

SIZES = (64, 32, 32, 10)  # 3,466 parameters
N_EXAMPLES = 256


@dataclass
class Subset:
    """A few training images and their labels as one-hot targets (for the squared error)."""

    x: torch.Tensor
    y: torch.Tensor


def tiny_network(seed: int):
    """A tiny tanh network's squared-error loss as a function of its 26 parameters (float64), a
    point and a direction, all drawn from ``seed``: the Hessians of notebook 10's tests."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(12, 3, generator=g, dtype=torch.float64)
    y = torch.randn(12, 2, generator=g, dtype=torch.float64)

    def loss_fn(p: torch.Tensor) -> torch.Tensor:
        hidden = torch.tanh(x @ p[:12].reshape(4, 3).T + p[12:16])
        return 0.5 * ((hidden @ p[16:24].reshape(2, 4).T + p[24:26] - y) ** 2).sum(1).mean()

    return loss_fn, torch.randn(26, generator=g, dtype=torch.float64), torch.randn(26, generator=g, dtype=torch.float64)


def digits_subset(n: int = N_EXAMPLES, device=None) -> Subset:
    """The first ``n`` training images of the digits, with one-hot targets, on ``device``."""
    data = load_digits(pick_device(device))
    return Subset(data.x_train[:n], F.one_hot(data.y_train[:n], 10).float())


def init_params(seeds: Sequence[int], init_scale: float, sizes=SIZES, device=None) -> list[torch.Tensor]:
    """One MLP per seed, stacked: weights from N(0, init_scale**2 / fan_in), biases 0."""
    generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        w = torch.stack([torch.randn(fan_out, fan_in, generator=g) for g in generators])
        params += [w * (init_scale / math.sqrt(fan_in)), torch.zeros(len(generators), 1, fan_out)]
    return [p.to(pick_device(device)) for p in params]


def stacked_losses(params: Sequence[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Every run's loss, shape (runs,): an ELU MLP's half squared error, summed over outputs, mean over examples."""
    h = x.expand(params[0].shape[0], *x.shape)
    for i in range(0, len(params), 2):
        h = torch.baddbmm(params[i + 1], h, params[i].transpose(1, 2))
        if i + 2 < len(params):
            h = F.elu(h)
    return 0.5 * ((h - y) ** 2).sum(-1).mean(-1)


def loss_of_flat(subset: Subset, sizes=SIZES) -> Callable[[torch.Tensor], torch.Tensor]:
    """The training loss as a function of one run's parameters in one flat vector (what ``hvp`` takes)."""
    shapes = [s for fan_in, fan_out in zip(sizes[:-1], sizes[1:]) for s in ((1, fan_out, fan_in), (1, 1, fan_out))]

    def loss_fn(flat: torch.Tensor) -> torch.Tensor:
        parts = torch.split(flat, [math.prod(s) for s in shapes])
        return stacked_losses([p.reshape(s) for p, s in zip(parts, shapes)], subset.x, subset.y)[0]

    return loss_fn


def flatten_run(params: Sequence[torch.Tensor], run: int) -> torch.Tensor:
    """Run ``run``'s parameters as one flat vector, in the order :func:`loss_of_flat` reads them."""
    return torch.cat([p[run].reshape(-1) for p in params])


def _each(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """One value per run, shaped to broadcast over ``like``'s run slices."""
    return values.view(-1, *[1] * (like.dim() - 1))


def _dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    return sum((u * v).flatten(1).sum(1) for u, v in zip(a, b))


def _normalize(vs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    norm = _dot(vs, vs).sqrt().clamp_min(1e-30)  # a dead run's zero vector stays zero, not NaN
    return [v / _each(norm, v) for v in vs]


def _loss_and_grad(params, x, y, create_graph=False):
    params = [p.detach().requires_grad_(True) for p in params]
    losses = stacked_losses(params, x, y)
    grads = torch.autograd.grad(losses.sum(), params, create_graph=create_graph)
    return params, losses, grads


def _hvp(params, vs, x, y) -> list[torch.Tensor]:
    """Every run's Hessian times its own vector: the gradient of (gradient . v), one double backward."""
    leaves, _, grads = _loss_and_grad(params, x, y, create_graph=True)
    return list(torch.autograd.grad(_dot(grads, vs).sum(), leaves))


def _power_steps(params, vs, iters, x, y, scale=None):
    """Power iteration for every run at once from unit vectors ``vs``: Rayleigh quotients and new vectors.

    With ``scale`` = P^-1/2 (Adam's preconditioner P) it iterates on P^-1/2 H P^-1/2, which has the
    eigenvalues of P^-1 H and, unlike it, is symmetric.
    """
    lam = None
    for _ in range(iters):
        u = vs if scale is None else [v * s for v, s in zip(vs, scale)]
        hv = _hvp(params, u, x, y)
        if scale is not None:
            hv = [h * s for h, s in zip(hv, scale)]
        lam = _dot(hv, vs)
        vs = _normalize(hv)
    return lam, vs


@dataclass
class SharpnessHistory:
    """One run. ``loss[k]`` and ``lr[k]``: the full-batch loss before update ``k`` and the
    learning rate update ``k`` used; ``sharpness[j]``: the top eigenvalue of the Hessian
    (for Adam, of the preconditioned Hessian) before update ``sharpness_steps[j]``; the last
    measurement is of the weights the run ended with (``sharpness_steps[-1] == len(loss)``)."""

    lr: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    sharpness_steps: list[int] = field(default_factory=list)
    sharpness: list[float] = field(default_factory=list)
    diverged_at: int | None = None  # the first update whose loss was inf or NaN
    final_params: torch.Tensor | None = None  # flat, on the CPU (None if the run diverged)

    def tail_sharpness(self, fraction: float = 0.25) -> float:
        """Mean sharpness over the last ``fraction`` of the measurements (NaN if it diverged)."""
        values = np.asarray(self.sharpness)
        return float(values[-max(1, round(fraction * len(values))):].mean())


def train_tracking(schedules: Sequence[float | Schedule], seeds: Sequence[int], total_steps: int, *,
                   optimizer: str = "gd", init_scale: float = 0.5, subset: Subset | None = None,
                   every: int = 10, iters: int = 3, first_iters: int = 30, betas=(0.9, 0.999), eps: float = 1e-8,
                   device=None) -> list[SharpnessHistory]:
    """Train one MLP per (schedule, seed) pair, all at once, by full-batch gradient descent
    (``optimizer="gd"``) or Adam (``"adam"``, as ``torch.optim.Adam``), and measure each
    run's sharpness before every ``every``-th update and at the end.

    A measurement is ``iters`` steps of power iteration warm-started from the previous
    measurement's vector (``first_iters`` from a random one at update 0): the top direction
    moves little in ``every`` updates, so a few steps keep up with it. For Adam it measures
    the preconditioned sharpness, with the preconditioner that update applies. A run whose
    loss becomes inf or NaN stops there: its weights are zeroed and it records NaN.

    A Rayleigh quotient is a lower bound on the top eigenvalue. At the edge of stability the
    top eigenvalues crowd together, and 3 warm-started products read 1-3% below the exact top
    (eigvalsh of the full Hessian, measured at the end of the notebook's three gradient
    descent runs on seed 0).
    """
    if optimizer not in ("gd", "adam"):
        raise ValueError(f"optimizer must be 'gd' or 'adam', got {optimizer!r}")
    if len(schedules) != len(seeds):
        raise ValueError(f"one seed per schedule: got {len(schedules)} schedules and {len(seeds)} seeds")
    device = pick_device(device)
    subset = subset if subset is not None else digits_subset(device=device)
    x, y = subset.x.to(device), subset.y.to(device)
    schedules = [as_schedule(s) for s in schedules]
    params = init_params(seeds, init_scale, device=device)
    generator = torch.Generator().manual_seed(0)  # the first power-iteration vectors, the same for every call
    vs = _normalize([torch.randn(p.shape, generator=generator).to(device) for p in params])
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    alive = torch.ones(len(seeds), dtype=torch.bool, device=device)
    lr_table = torch.tensor([[float(s(step)) for s in schedules] for step in range(total_steps)])
    losses, sharp, sharp_steps = [], [], []
    for step in range(total_steps + 1):  # the last pass only measures: the weights the run ends with
        _, loss, grads = _loss_and_grad(params, x, y)
        alive = alive & torch.isfinite(loss)  # no sync with the device: a dead run is masked, not removed
        params = [torch.where(_each(alive, p), p, 0.0) for p in params]
        grads = [torch.where(_each(alive, g), g, 0.0) for g in grads]
        scale = None
        if optimizer == "adam":
            m = [betas[0] * mi + (1 - betas[0]) * g for mi, g in zip(m, grads)]
            v = [betas[1] * vi + (1 - betas[1]) * g * g for vi, g in zip(v, grads)]
            denom = [(vi / (1 - betas[1] ** (step + 1))).sqrt() + eps for vi in v]
            step_dirs = [mi / (1 - betas[0] ** (step + 1)) / d for mi, d in zip(m, denom)]
            scale = [d.rsqrt() for d in denom]
        else:
            step_dirs = grads
        if step % every == 0 or step == total_steps:
            lam, vs = _power_steps(params, vs, first_iters if step == 0 else iters, x, y, scale)
            sharp.append(torch.where(alive, lam, torch.nan))
            sharp_steps.append(step)
        if step == total_steps:
            break
        losses.append(torch.where(alive, loss.detach(), torch.nan))
        lr = lr_table[step].to(device) * alive
        params = [p - _each(lr, p) * d for p, d in zip(params, step_dirs)]

    loss_rows = torch.stack(losses).T.cpu().tolist()
    sharp_rows = torch.stack(sharp).T.cpu().tolist()
    histories = []
    for r in range(len(seeds)):
        dead = [k for k, value in enumerate(loss_rows[r]) if not math.isfinite(value)]
        histories.append(SharpnessHistory(
            lr=lr_table[:, r].tolist(), loss=loss_rows[r], sharpness_steps=list(sharp_steps),
            sharpness=sharp_rows[r], diverged_at=dead[0] if dead else None,
            final_params=None if dead else flatten_run(params, r).detach().cpu()))
    return histories


# -- plots and the explorer ------------------------------------------------------------------
def draw_run(history: SharpnessHistory, threshold: Sequence[float], ax_sharp, ax_loss, color="tab:blue",
             label: str | None = None, threshold_label: str | None = "2 / lr"):
    """The run's sharpness (solid) against ``threshold`` (dashed, one value per update), and its
    loss on a log scale. Returns the two Axes."""
    ax_sharp.plot(history.sharpness_steps, history.sharpness, color=color, linewidth=1.6, label=label)
    ax_sharp.plot(np.arange(len(threshold)), threshold, color=color, linestyle="--", linewidth=1,
                  label=threshold_label)
    ax_loss.plot(history.loss, color=color, linewidth=1.2, label=label)
    ax_loss.set_yscale("log")
    return ax_sharp, ax_loss


def render_sharpness(history: SharpnessHistory, lr: float, axes=None):
    """One cached run as the explorer shows it: sharpness against 2/lr, and the loss."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    ax_sharp, ax_loss = axes
    draw_run(history, [2 / lr] * len(history.lr), ax_sharp, ax_loss, threshold_label=f"2 / lr = {2 / lr:.3g}")
    finite = [s for s in history.sharpness if math.isfinite(s)]
    top = max([2 / lr, *finite]) if finite else 2 / lr
    ax_sharp.set(xlabel="update", ylabel="sharpness", ylim=(0, 1.3 * min(top, 4 * 2 / lr)),
                 title=f"lr = {lr:g}" + (f": diverged at update {history.diverged_at}"
                                        if history.diverged_at is not None else
                                        f": sharpness at the end {history.tail_sharpness():.3g}"))
    ax_loss.set(xlabel="update", ylabel="full-batch loss", title="training loss")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    ax_sharp.legend(fontsize="small", loc="lower right")
    return axes


def sharpness_explorer(runs: Mapping[float, SharpnessHistory], start: float | None = None):
    """A slider over the learning rates of runs trained already (``{lr: history}``): each
    position redraws :func:`render_sharpness`. Under grading it draws the first plot and
    returns None (:func:`lrcourse.widgets.static_under_grading`)."""
    from .widgets import shown_figure, slider_explorer

    lrs = sorted(runs)
    first = start if start in runs else lrs[len(lrs) // 2]

    def draw_static(lr: float) -> None:
        with shown_figure(1, 2, figsize=(12, 3.8)) as axes:
            render_sharpness(runs[lr], lr, axes)

    def make_slider(widgets):
        return widgets.SelectionSlider(options=[(f"{lr:g}", lr) for lr in lrs], value=first, description="lr",
                                       continuous_update=True, layout=widgets.Layout(width="60%"))

    return slider_explorer(draw_static, first, "The sharpness trace", make_slider)


__all__ = ["SIZES", "Subset", "SharpnessHistory", "digits_subset", "init_params", "stacked_losses", "loss_of_flat",
           "flatten_run", "train_tracking", "draw_run", "render_sharpness", "sharpness_explorer", "tiny_network"]
