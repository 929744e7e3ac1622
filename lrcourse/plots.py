"""Plots the notebooks share: loss curves, an LR sweep, a 1-D trajectory, a schedule.

Every function draws on ``ax`` (a new figure's axes when ``ax`` is None) and returns
the Axes. None of them calls ``plt.show()``: Jupyter shows the figure at the end of the
cell, and a script or a test can save or inspect it instead.
"""
from __future__ import annotations

from numbers import Real
from typing import Callable, Mapping

import numpy as np

DIVERGED_COLOR = "tab:red"


def axes_or_new(ax, figsize=(6.0, 4.0)):
    """``ax``, or the axes of a new figure when it is None."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def _label(key) -> str:
    """``lr=0.01`` for a numeric key (an LR sweep), the key itself otherwise."""
    if isinstance(key, Real) and not isinstance(key, bool):
        return f"lr={float(key):g}"
    return str(key)


def _finite(values) -> np.ndarray:
    """The values as floats, with inf and NaN replaced by NaN (matplotlib leaves a gap)."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    return np.where(np.isfinite(arr), arr, np.nan)


def trailing_mean(values, window: int, skip_nonfinite: bool = True) -> np.ndarray:
    """Mean of the last ``window`` values at each step (fewer at the start).

    Loss curves are noisy minibatch by minibatch; this is the smoothing every notebook uses.
    NaN values are skipped; with ``skip_nonfinite=False`` a window that holds any NaN or
    inf gives NaN instead, so a plotted line stops where a run blows up.
    """
    values = np.asarray(values, dtype=np.float64)
    if window <= 1:
        return values
    out = np.full_like(values, np.nan)
    for i in range(len(values)):
        chunk = values[max(0, i - window + 1): i + 1]
        if skip_nonfinite and np.isfinite(chunk).any():
            out[i] = np.nanmean(chunk)
        elif not skip_nonfinite and np.isfinite(chunk).all():
            out[i] = chunk.mean()
    return out


def plot_loss_curves(histories: Mapping, ax=None, title: str | None = None, logy: bool = True,
                     smooth: int = 1, clip: float | None = None):
    """Training loss against the update number, one line per run.

    ``histories`` maps a label (or a learning rate, shown as ``lr=...``) to a
    :class:`lrcourse.train.History`. A run that stopped because its loss became inf or
    NaN (``History.diverged``) is marked with an x at its last finite loss and
    "(diverged)" in the legend. ``smooth`` > 1 draws a trailing running mean of that many
    updates instead of the raw, noisy minibatch losses. ``clip`` draws losses above it at
    ``clip`` (the top of the plot), so one run that blows up to 1e25 does not squash the
    others; a clipped run's legend entry gives its peak. Draws exactly one line per run.
    """
    ax = axes_or_new(ax)
    for key, history in histories.items():
        loss = trailing_mean(_finite(history.loss), int(smooth))
        steps = np.arange(len(loss))
        label = _label(key)
        notes = []
        if history.diverged:
            notes.append("diverged")
        if clip is not None and np.nanmax(loss, initial=-np.inf) > clip:
            notes.append(f"peak {np.nanmax(loss):.0e}")
            loss = np.where(loss > clip, clip, loss)
        if notes:
            label += f" ({', '.join(notes)})"
        kwargs = {}
        finite = np.flatnonzero(np.isfinite(loss))
        if history.diverged and finite.size:
            kwargs = dict(marker="x", markevery=[int(finite[-1])], markersize=10, markeredgewidth=2)
        ax.plot(steps, loss, label=label, linewidth=1.2, **kwargs)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("update (step)")
    ylabel = "training loss" + (f" (mean of last {smooth})" if smooth > 1 else "")
    ax.set_ylabel(ylabel + (f", clipped at {clip:g}" if clip is not None else ""))
    if clip is not None:
        ax.set_ylim(top=clip * (3.0 if logy else 1.05))
    if title:
        ax.set_title(title)
    if histories:
        ax.legend(fontsize="small")
    ax.grid(True, which="major", alpha=0.3)
    return ax


def plot_final_loss_vs_lr(histories: Mapping[float, object], ax=None, window: int = 20,
                          chance_loss: float | None = None, title: str | None = None):
    """Final training loss (mean of the last ``window`` updates) against the LR, log-log.

    Runs that ended with an inf or NaN loss have no final loss; they are drawn as red x
    markers at the top of the plot, above every finite value, labelled "diverged".
    ``chance_loss`` draws a dashed horizontal line, e.g. ``math.log(10)`` for a 10-class
    model that predicts the same thing for every input.

    Draws one line through the finite runs, plus one line of markers if any run diverged,
    plus the chance line if asked for.
    """
    ax = axes_or_new(ax)
    lrs = np.array([float(k) for k in histories], dtype=np.float64)
    finals = np.array([h.final_loss(window) for h in histories.values()], dtype=np.float64)
    order = np.argsort(lrs)
    lrs, finals = lrs[order], finals[order]
    ok = np.isfinite(finals)
    if ok.any():
        ax.plot(lrs[ok], finals[ok], "o-", color="tab:blue", label=f"final loss (last {window} steps)")
    top = None
    if (~ok).any():
        values = finals[ok].tolist() + ([chance_loss] if chance_loss else [])
        top = 5.0 * max(values) if values else 10.0
        ax.plot(lrs[~ok], np.full((~ok).sum(), top), linestyle="none", marker="x", markersize=11,
                markeredgewidth=2.5, color=DIVERGED_COLOR, label="diverged (inf/NaN)")
    if chance_loss is not None:
        ax.axhline(chance_loss, linestyle="--", color="gray", linewidth=1,
                   label=f"chance ({chance_loss:.3g})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    if top is not None:
        low = np.nanmin(finals[ok]) if ok.any() else top / 10
        ax.set_ylim(low / 3, top * 3)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("final training loss")
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(True, which="major", alpha=0.3)
    return ax


def plot_trajectory(xs, ax=None, label: str | None = None, logy: bool = False):
    """A 1-D sequence ``x_0, x_1, ...`` against the step ``t``: one line with dots.

    With ``logy`` the y axis is logarithmic (pass ``np.abs(xs)`` to see a geometric
    rate as a straight line).
    """
    ax = axes_or_new(ax)
    xs = _finite(xs)
    ax.plot(np.arange(len(xs)), xs, marker="o", markersize=3, linewidth=1.2, label=label)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("step $t$")
    ax.set_ylabel("$x_t$")
    if label is not None:
        ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    return ax


def plot_schedule(schedule: Callable[[int], float], total_steps: int, ax=None, label: str | None = None,
                  extra_steps: int = 0, logy: bool = False):
    """The learning rate ``schedule(step)`` for ``step = 0 .. total_steps - 1``: one line.

    ``extra_steps`` > 0 also draws that many steps past the end, and a dotted vertical
    line (a second line) at ``total_steps``, to show what a schedule does when a run goes
    on longer than planned.
    """
    ax = axes_or_new(ax)
    steps = np.arange(int(total_steps) + max(0, int(extra_steps)))
    values = np.array([float(schedule(int(s))) for s in steps], dtype=np.float64)
    ax.plot(steps, values, linewidth=1.5, label=label)
    if extra_steps > 0:
        ax.axvline(total_steps, linestyle=":", color="gray", linewidth=1)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("update (step)")
    ax.set_ylabel("learning rate")
    if label is not None:
        ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    return ax


__all__ = ["plot_loss_curves", "plot_final_loss_vs_lr", "plot_trajectory", "plot_schedule", "trailing_mean"]
