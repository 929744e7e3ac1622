"""Tests for lrcourse.plots and lrcourse.widgets (no display needed: Agg backend)."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lrcourse import plots, widgets  # noqa: E402
from lrcourse.train import History  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _history(losses, diverged=False):
    return History(lr=[0.1] * len(losses), loss=list(losses), diverged=diverged)


def _closed_form(x0, lam, lr, steps):
    return x0 * (1.0 - lr * lam) ** np.arange(steps + 1)


# -- plot_loss_curves ---------------------------------------------------------------------
def test_loss_curves_one_line_per_run_and_labels():
    hs = {0.01: _history([2.3, 2.0, 1.5]), "cosine": _history([2.3, 1.0, 0.5, 0.2])}
    ax = plots.plot_loss_curves(hs, title="runs")
    assert isinstance(ax, matplotlib.axes.Axes)
    assert len(ax.lines) == 2
    assert [line.get_label() for line in ax.lines] == ["lr=0.01", "cosine"]
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [2.3, 1.0, 0.5, 0.2])
    assert ax.get_yscale() == "log"
    assert ax.get_title() == "runs"


def test_loss_curves_uses_given_axes_and_linear_scale():
    fig, ax = plt.subplots()
    got = plots.plot_loss_curves({"a": _history([1.0, 0.5])}, ax=ax, logy=False)
    assert got is ax
    assert ax.get_yscale() == "linear"


def test_loss_curves_marks_diverged_run_at_last_finite_point():
    hs = {0.1: _history([2.3, 1.0, 0.5]), 3.0: _history([2.3, 50.0, 1e20, math.inf], diverged=True)}
    ax = plots.plot_loss_curves(hs)
    healthy, blown = ax.lines
    assert healthy.get_marker() in ("None", None, "")
    assert blown.get_marker() == "x"
    assert list(blown.get_markevery()) == [2]  # the last finite loss, 1e20
    assert "diverged" in blown.get_label()
    y = np.asarray(blown.get_ydata(), dtype=float)
    assert np.isnan(y[3])  # inf is not drawn


def test_loss_curves_smoothing():
    ax = plots.plot_loss_curves({"a": _history([4.0, 2.0, 0.0, 2.0])}, smooth=2, logy=False)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [4.0, 3.0, 1.0, 1.0])


# -- plot_final_loss_vs_lr ----------------------------------------------------------------
def test_final_loss_vs_lr_diverged_drawn_on_top():
    hs = {
        0.5: _history([2.3] * 30),
        1e-3: _history([1.8] * 30),
        0.1: _history([0.01] * 30),
        3.0: _history([2.3, math.nan], diverged=True),
    }
    ax = plots.plot_final_loss_vs_lr(hs, chance_loss=math.log(10))
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    finite, diverged, chance = ax.lines
    np.testing.assert_allclose(finite.get_xdata(), [1e-3, 0.1, 0.5])  # sorted by LR
    np.testing.assert_allclose(finite.get_ydata(), [1.8, 0.01, 2.3])
    np.testing.assert_allclose(diverged.get_xdata(), [3.0])
    top = float(diverged.get_ydata()[0])
    assert top > max(finite.get_ydata()) and top > math.log(10)
    assert ax.get_ylim()[1] > top
    assert diverged.get_marker() == "x"
    np.testing.assert_allclose(chance.get_ydata(), [math.log(10)] * 2)


def test_final_loss_vs_lr_without_divergence_has_one_line():
    ax = plots.plot_final_loss_vs_lr({0.01: _history([1.0] * 5), 0.1: _history([0.1] * 5)})
    assert len(ax.lines) == 1


def test_final_loss_vs_lr_uses_window():
    ax = plots.plot_final_loss_vs_lr({0.1: _history([9.0, 9.0, 1.0, 3.0])}, window=2)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [2.0])


# -- plot_trajectory and plot_schedule ----------------------------------------------------
def test_trajectory_values():
    xs = _closed_form(1.0, 4.0, 0.49, 10)
    ax = plots.plot_trajectory(xs, label="lr=0.49")
    assert len(ax.lines) == 1
    np.testing.assert_allclose(ax.lines[0].get_xdata(), np.arange(11))
    np.testing.assert_allclose(ax.lines[0].get_ydata(), xs)
    assert ax.lines[0].get_label() == "lr=0.49"


def test_trajectory_several_on_one_axes_and_log():
    fig, ax = plt.subplots()
    for lr in (0.49, 0.5, 0.51):
        plots.plot_trajectory(np.abs(_closed_form(1.0, 4.0, lr, 20)), ax=ax, label=f"{lr}", logy=True)
    assert len(ax.lines) == 3
    assert ax.get_yscale() == "log"


def test_schedule():
    ax = plots.plot_schedule(lambda step: 0.1 * 0.5 ** (step // 10), 30, label="step")
    assert len(ax.lines) == 1
    y = ax.lines[0].get_ydata()
    assert len(y) == 30
    assert y[0] == pytest.approx(0.1) and y[-1] == pytest.approx(0.025)
    ax2 = plots.plot_schedule(lambda step: 1.0, 10, extra_steps=5)
    assert len(ax2.lines[0].get_ydata()) == 15
    assert len(ax2.lines) == 2  # the schedule and the end-of-run marker


# -- widgets ------------------------------------------------------------------------------
def test_render_quadratic_draws_the_given_trajectory():
    calls = []

    def traj(x0, lam, lr, steps):
        calls.append((x0, lam, lr, steps))
        return _closed_form(x0, lam, lr, steps)

    ax = widgets.render_quadratic(traj, 0.3, 4.0, 2.0, 12)
    assert isinstance(ax, matplotlib.axes.Axes)
    assert calls == [(2.0, 4.0, 0.3, 12)]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), _closed_form(2.0, 4.0, 0.3, 12))
    assert "-0.200" in ax.get_title()  # the factor 1 - 0.3 * 4
    assert "converges" in ax.get_title()


def test_render_quadratic_shows_a_wrong_trajectory_as_is():
    """A student's wrong values must be drawn, not replaced by the right ones."""
    wrong = np.array([1.0, 1.4, 1.96])
    ax = widgets.render_quadratic(lambda *args: wrong, 0.1, 4.0, 1.0, 2)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), wrong)
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [1.0, 0.6, 0.36])  # the predicted envelope


@pytest.mark.parametrize("lr, words", [(0.5, "oscillates forever"), (0.51, "diverges"), (0.25, "one step"),
                                       (0.0, "stays put")])
def test_render_quadratic_regimes(lr, words):
    fig, ax = plt.subplots()
    got = widgets.render_quadratic(_closed_form, lr, 4.0, 1.0, 30, ax=ax)
    assert got is ax
    assert words in ax.get_title()


def test_render_quadratic_large_divergence_uses_symlog():
    ax = widgets.render_quadratic(_closed_form, 1.0, 4.0, 1.0, 30)  # factor -3
    assert ax.get_yscale() == "symlog"


def test_quadratic_explorer_with_an_unfinished_trajectory_leaves_no_figure():
    pytest.importorskip("ipywidgets")
    import matplotlib.pyplot as plt

    from lrcourse.widgets import quadratic_explorer

    def unfinished(x0, lam, lr, steps):
        raise NotImplementedError()

    plt.close("all")
    quadratic_explorer(unfinished)  # shows a sentence, not a traceback over an empty plot
    assert not plt.get_fignums()


def test_quadratic_explorer_builds_a_widget():
    ipywidgets = pytest.importorskip("ipywidgets")
    seen = []

    def traj(x0, lam, lr, steps):
        seen.append(lr)
        return _closed_form(x0, lam, lr, steps)

    box = widgets.quadratic_explorer(traj, lam=4.0, x0=1.0, steps=30)
    assert isinstance(box, ipywidgets.VBox)
    sliders = [w for w in box.children if isinstance(w, ipywidgets.FloatLogSlider)]
    assert len(sliders) == 1
    slider = sliders[0]
    assert slider.min < math.log10(0.5) < slider.max  # the stable limit 2/lam is inside the range
    assert seen and seen[-1] == pytest.approx(slider.value)  # drawn once when built
    slider.value = 0.51
    assert seen[-1] == pytest.approx(0.51)  # moving the slider redraws
    assert plt.get_fignums() == []  # figures are closed after being shown


def test_loss_curves_clip_keeps_the_others_readable():
    hs = {0.1: _history([2.3, 1.0, 0.5]), 3.0: _history([2.3, 1e5, 1e25, math.inf], diverged=True)}
    ax = plots.plot_loss_curves(hs, clip=1e3)
    healthy, blown = ax.lines
    np.testing.assert_allclose(healthy.get_ydata(), [2.3, 1.0, 0.5])
    np.testing.assert_allclose(np.asarray(blown.get_ydata(), dtype=float)[:3], [2.3, 1e3, 1e3])
    assert "diverged" in blown.get_label() and "peak 1e+25" in blown.get_label()
    assert list(blown.get_markevery()) == [2]
    assert 1e3 < ax.get_ylim()[1] < 1e4
    assert "clipped" in ax.get_ylabel()


def test_under_grading_the_explorers_draw_their_first_plot_and_make_no_widget(monkeypatch):
    """No widget messages while nbgrader runs a notebook (one stalled a graded cell)."""
    import IPython.display

    from lrcourse.explorer import schedule_explorer

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    linear = lambda step, lr_max=0.1, total_steps=100: lr_max * (1 - step / total_steps)  # noqa: E731
    assert schedule_explorer({"linear": linear}, total_steps=100) is None
    trajectory = lambda x0, lam, lr, steps: [x0 * (1 - lr * lam) ** k for k in range(steps + 1)]  # noqa: E731
    assert widgets.quadratic_explorer(trajectory) is None
    assert len(shown) == 2 and all(isinstance(fig, matplotlib.figure.Figure) for fig in shown)
    assert plt.get_fignums() == [], "the explorers should close their figures"


def test_under_grading_an_unfinished_exercise_prints_why_instead_of_a_plot(monkeypatch, capsys):
    import IPython.display

    from lrcourse.explorer import schedule_explorer

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")

    def unfinished(step, lr_max=0.1):
        raise NotImplementedError

    assert schedule_explorer({"unfinished": unfinished}) is None
    assert shown == [] and plt.get_fignums() == []
    assert "unfinished could not be drawn: a function it calls is not written yet" in capsys.readouterr().out
