"""The plot of notebook 08 (warmup-stable-decay): cooldowns branching off their stable run.

A WSD run of the longest budget *is* the stable run until its own cooldown; the shorter
budgets' runs agree with it up to their branch points. :func:`draw_runs` draws the longest
in full and each branch only from where it leaves, so the shared updates appear once.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .plots import trailing_mean
from .train import History


def draw_runs(ax_lr, ax_loss, runs: Mapping[str, History], starts: Mapping[str, int] | None = None,
              colors: Sequence[str] | None = None, smooth: int = 20):
    """Each run's learning rate (on ``ax_lr``) and training loss (mean of the last ``smooth``
    updates, on ``ax_loss``), one color per run; returns the two Axes.

    A run named in ``starts`` is drawn from that update on, with a dot where it begins: a
    branch, whose earlier updates are those of the run it left (drawn in full by another
    entry). Draws one line per run on each Axes, plus one dot per branch.
    """
    starts = dict(starts or {})
    colors = list(colors) if colors is not None else [f"C{i}" for i in range(len(runs))]
    for (label, history), color in zip(runs.items(), colors):
        start = int(starts.get(label, 0))
        steps = np.arange(start, len(history.lr))
        loss = trailing_mean(history.loss, smooth)[start:]  # the window reaches back into the shared updates
        ax_lr.plot(steps, history.lr[start:], color=color, linewidth=1.8, label=label)
        ax_loss.plot(steps, loss, color=color, linewidth=1.4, label=label)
        if label in starts:
            ax_lr.plot(start, history.lr[start], "o", color=color, markersize=5)
            ax_loss.plot(start, loss[0], "o", color=color, markersize=5)
    return ax_lr, ax_loss


__all__ = ["draw_runs"]
