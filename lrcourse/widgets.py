"""Interactive widgets for the notebooks (ipywidgets 8).

Each widget's drawing is a plain function (``render_*``) that takes the slider values
and an Axes and returns the Axes, so it can be tested and reused without a browser. The
widget only wires sliders to it. ipywidgets is imported inside the widget functions, so
importing this module (or ``lrcourse``) never needs it.
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable, Iterator

import numpy as np

from .plots import axes_or_new, plot_trajectory
from .runtime import under_grading

TrajectoryFn = Callable[[float, float, float, int], "np.ndarray"]


def _regime(factor: float) -> str:
    size = abs(factor)
    if math.isclose(size, 1.0, rel_tol=0.0, abs_tol=1e-12):
        return "stays put (lr = 0)" if factor > 0 else "oscillates forever (lr = 2/λ)"
    if size > 1.0:
        return "diverges"
    if factor < 0:
        return "converges, overshooting each step"
    if factor == 0:
        return "lands on the minimum in one step (lr = 1/λ)"
    return "converges" if size < 0.9 else "converges slowly"


def drawing_error(what: str, err: BaseException) -> str:
    """What a widget shows instead of its plot when the student's function raised."""
    if isinstance(err, NotImplementedError):
        return (f"{what} could not be drawn: a function it calls is not written yet (it raises "
                "NotImplementedError). Fill in the exercise above, run its cell, then move a control "
                "here to redraw.")
    reason = str(err) or "(no message)"
    return (f"{what} could not be drawn: your code raised {type(err).__name__}: {reason}. Fix it, run "
            "its cell again, then move a control here to redraw.")


def render_quadratic(trajectory_fn: TrajectoryFn, lr: float, lam: float, x0: float, steps: int, ax=None):
    """Draw gradient descent on f(x) = lam * x**2 / 2 and return the Axes.

    Calls ``trajectory_fn(x0, lam, lr, steps)`` and draws the values it returns (x_t
    against t) as the first line, with the envelope ``±|x0| * |1 - lr*lam|**t`` that
    the derivation predicts (dashed) and the minimum x = 0. The title gives the factor
    ``1 - lr*lam`` and what it implies. When the values grow past 10 |x0| the y axis
    switches to a symmetric log scale so a divergence stays readable.
    """
    ax = axes_or_new(ax, figsize=(7.0, 4.0))
    xs = np.asarray(trajectory_fn(x0, lam, lr, steps), dtype=np.float64).reshape(-1)
    factor = 1.0 - lr * lam
    plot_trajectory(xs, ax=ax, label="your trajectory $x_t$")
    t = np.arange(len(xs))
    with np.errstate(over="ignore", invalid="ignore"):
        envelope = abs(x0) * np.abs(factor) ** t
    envelope = np.where(np.isfinite(envelope), envelope, np.nan)
    ax.plot(t, envelope, linestyle="--", color="gray", linewidth=1,
            label=r"$\pm|x_0|\,|1-\eta\lambda|^t$")
    ax.plot(t, -envelope, linestyle="--", color="gray", linewidth=1)
    ax.axhline(0.0, color="black", linewidth=0.8)
    finite = xs[np.isfinite(xs)]
    scale = max(abs(x0), 1e-12)
    if finite.size and np.abs(finite).max() > 10 * scale:
        ax.set_yscale("symlog", linthresh=scale)
    else:
        ax.set_ylim(-1.25 * scale, 1.25 * scale)
    ax.set_title(f"lr = {lr:.4g}, λ = {lam:g}: factor 1 - lr·λ = {factor:.3f}, {_regime(factor)}\n"
                 f"(stable for 0 < lr < 2/λ = {2 / lam:.4g})", fontsize="medium")
    ax.legend(fontsize="small", loc="best")
    return ax


def static_under_grading(draw: Callable[[], object], name: str) -> bool:
    """Under grading, draw the plot a widget opens with and return True; else False.

    Nobody moves a control while nbgrader runs a notebook, and widget cells are the only
    cells seen to stall under grading: the kernel idle, its reply never seen by the grader,
    until the cell's wall-clock limit; twice even with nbclient's Output-widget stand-in
    turned off (lrgrade.preprocessors.no_output_widget_emulation), cause not found. So
    under grading the explorers draw their first plot, or print why they cannot (an
    exercise not done yet), and make no widget.
    """
    if not under_grading():
        return False
    draw_or_explain(draw, name)
    return True


def draw_or_explain(draw: Callable[[], object], name: str):
    """``draw()``'s result; if the student's function raises, None and a sentence saying why
    (:func:`drawing_error`) instead of a traceback. Every explorer draws through this."""
    try:
        return draw()
    except Exception as err:  # noqa: BLE001 - a sentence instead of a traceback and an empty plot
        print(drawing_error(name, err))
        return None


@contextlib.contextmanager
def shown_figure(*args, **kwargs) -> Iterator:
    """One frame of an explorer: ``plt.subplots(*args, **kwargs)``'s Axes to draw on; the
    figure is then displayed and closed (closed also when drawing raises)."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    fig, axes = plt.subplots(*args, **kwargs)
    try:
        yield axes
        fig.tight_layout()
        display(fig)
    finally:
        plt.close(fig)


def slider_explorer(draw_static: Callable[[object], None], start, name: str, make_slider: Callable,
                    note: str | None = None):
    """A slider above the plot ``draw_static(value)`` draws, redrawn when the slider moves.

    ``make_slider(widgets)`` builds the slider from the ipywidgets module, starting at
    ``start``; ``note`` is HTML shown above it. Under grading it draws the first plot and
    returns None (:func:`static_under_grading`). The box keeps handles for tests:
    ``box.slider``, ``box.output``, ``box.redraw``.
    """
    if static_under_grading(lambda: draw_static(start), name):
        return None
    import ipywidgets as widgets

    slider = make_slider(widgets)
    out = widgets.Output()

    def draw(change=None):
        with out:
            out.clear_output(wait=True)
            draw_or_explain(lambda: draw_static(slider.value), name)

    slider.observe(draw, names="value")
    draw()
    box = widgets.VBox(([widgets.HTML(note)] if note else []) + [slider, out])
    box.slider, box.output, box.redraw = slider, out, draw
    return box


def quadratic_explorer(trajectory_fn: TrajectoryFn, lam: float = 4.0, x0: float = 1.0, steps: int = 30,
                       lr: float | None = None):
    """A learning-rate slider over gradient descent on f(x) = lam * x**2 / 2.

    The slider is logarithmic, from 1/100 of the stable limit 2/lam to twice it; moving
    it redraws :func:`render_quadratic` with your ``trajectory_fn(x0, lam, lr, steps)``.
    Returns the widget (a VBox); display it by making it the last line of a cell. Under
    grading it draws the plot the widget opens with and returns None (:func:`static_under_grading`).
    """
    limit = 2.0 / lam
    start_lr = lr if lr is not None else 0.8 * limit

    def draw_static(lr_value: float) -> None:
        with shown_figure(figsize=(7.0, 4.0)) as ax:
            render_quadratic(trajectory_fn, lr_value, lam, x0, steps, ax=ax)

    def make_slider(widgets):
        return widgets.FloatLogSlider(value=start_lr, base=10, min=math.log10(limit / 100),
                                      max=math.log10(2 * limit), step=0.005, description="lr",
                                      readout_format=".4f", continuous_update=True,
                                      layout=widgets.Layout(width="60%"))

    return slider_explorer(draw_static, start_lr, "The trajectory", make_slider,
                           note=f"Drag the learning rate. The dashed line is what the derivation predicts; "
                                f"beyond 2/λ = {limit:g} it diverges.")


__all__ = ["drawing_error", "draw_or_explain", "render_quadratic", "static_under_grading", "shown_figure",
           "slider_explorer", "quadratic_explorer"]
