"""Tests for lrcourse.reference (PyTorch's schedulers as lists) and lrcourse.explorer."""
from __future__ import annotations

import subprocess
import sys
import math
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from torch.optim.lr_scheduler import ExponentialLR, LambdaLR, MultiStepLR, StepLR  # noqa: E402

from lrcourse import explorer  # noqa: E402
from lrcourse.explorer import Param  # noqa: E402
from lrcourse.reference import torch_lrs  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# -- schedules as notebook 02 writes them -----------------------------------------------------
def step_decay(step, lr_max, step_size, gamma):
    return lr_max * gamma ** (step // step_size)


def multistep_decay(step, lr_max, milestones, gamma):
    return lr_max * gamma ** sum(1 for m in milestones if m <= step)


def exponential_decay(step, lr_max, gamma):
    return lr_max * gamma**step


def cosine(step, lr_max, lr_min, total_steps):
    t = min(step, total_steps)
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * t / total_steps))


# -- reference.torch_lrs --------------------------------------------------------------------
def test_torch_lrs_step_lr_known_values():
    got = torch_lrs(lambda opt: StepLR(opt, step_size=2, gamma=0.5), 1.0, 6)
    assert got == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert all(type(v) is float for v in got)


def test_torch_lrs_first_update_uses_lr0():
    # update 0 uses the LR before any scheduler.step(): lr_max, unless a milestone sits at 0
    assert torch_lrs(lambda opt: ExponentialLR(opt, gamma=0.5), 0.8, 4) == [0.8, 0.4, 0.2, 0.1]
    assert torch_lrs(lambda opt: MultiStepLR(opt, milestones=[0, 2, 2], gamma=0.5), 1.0, 4) == \
        [0.5, 0.5, 0.125, 0.125]
    assert torch_lrs(lambda opt: LambdaLR(opt, lambda s: 1.0 / (s + 1)), 1.0, 3) == pytest.approx([1.0, 0.5, 1 / 3])


def test_torch_lrs_matches_closed_form_over_a_long_run():
    got = torch_lrs(lambda opt: StepLR(opt, step_size=7, gamma=0.3), 0.2, 200)
    np.testing.assert_allclose(got, [step_decay(s, 0.2, 7, 0.3) for s in range(200)], rtol=1e-12, atol=0)
    got = torch_lrs(lambda opt: ExponentialLR(opt, gamma=0.99), 0.1, 1000)
    np.testing.assert_allclose(got, [exponential_decay(s, 0.1, 0.99) for s in range(1000)], rtol=1e-12, atol=0)


def test_torch_lrs_without_scheduler_and_empty_run():
    assert torch_lrs(None, 0.3, 3) == [0.3, 0.3, 0.3]
    assert torch_lrs(lambda opt: None, 0.3, 2) == [0.3, 0.3]
    assert torch_lrs(lambda opt: StepLR(opt, 1), 0.3, 0) == []
    with pytest.raises(ValueError):
        torch_lrs(None, 0.3, -1)


def test_torch_lrs_emits_no_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for make in (lambda opt: StepLR(opt, step_size=3, gamma=0.1),
                     lambda opt: MultiStepLR(opt, milestones=[1, 4], gamma=0.1),
                     lambda opt: ExponentialLR(opt, gamma=0.9)):
            torch_lrs(make, 0.1, 10)
    assert [str(w.message) for w in caught] == []


def test_torch_lrs_steps_the_optimizer_before_the_scheduler():
    """A pre-step hook sees, at each optimizer.step(), the LR that torch_lrs reports."""
    seen = []

    def make(opt):
        opt.register_step_pre_hook(lambda o, args, kwargs: seen.append(o.param_groups[0]["lr"]))
        return StepLR(opt, step_size=2, gamma=0.1)

    got = torch_lrs(make, 1.0, 5)
    assert seen == got
    assert len(seen) == 5


# -- explorer: values and controls ------------------------------------------------------------
def test_schedule_values_evaluates_every_step():
    assert explorer.schedule_values(step_decay, 6, lr_max=1.0, step_size=2, gamma=0.5) == \
        [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert explorer.schedule_values(step_decay, 0, lr_max=1.0, step_size=2, gamma=0.5) == []
    values = explorer.schedule_values(lambda step: 3, 2)
    assert values == [3.0, 3.0] and all(type(v) is float for v in values)


def test_schedule_values_binds_total_steps():
    values = explorer.schedule_values(cosine, 10, lr_max=1.0, lr_min=0.0)
    assert len(values) == 10
    assert values[0] == pytest.approx(1.0)
    assert values[5] == pytest.approx(0.5)  # the midpoint of T = 10
    assert values[9] == pytest.approx(0.5 * (1 + math.cos(math.pi * 9 / 10)))
    longer = explorer.schedule_values(cosine, 10, lr_max=1.0, lr_min=0.0, total_steps=20)  # an explicit value wins
    assert len(longer) == 10 and longer[5] == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 20)))


def test_param_specs_by_name():
    specs = explorer.param_specs(step_decay, 1000)
    assert list(specs) == ["lr_max", "step_size", "gamma"]
    assert specs["lr_max"].kind == "log" and specs["lr_max"].min <= 0.1 <= specs["lr_max"].max
    assert specs["step_size"] == Param("int", 250, 1, 1000, 1)
    assert specs["gamma"].kind == "float" and 0 < specs["gamma"].value <= 1 == specs["gamma"].max
    milestones = explorer.param_specs(multistep_decay, 1000)["milestones"]
    assert milestones.kind == "ints" and milestones.value == [500, 750]
    assert list(explorer.param_specs(cosine, 100)) == ["lr_max", "lr_min"]  # total_steps is the run's length


def test_param_specs_overrides_and_defaults():
    specs = explorer.param_specs(exponential_decay, 1000,
                                 {"gamma": Param("float", 0.997, 0.98, 1.0, 0.0005), "lr_max": 0.5})
    assert specs["gamma"] == Param("float", 0.997, 0.98, 1.0, 0.0005)
    assert specs["lr_max"].kind == "log" and specs["lr_max"].value == 0.5
    with pytest.raises(ValueError, match="does not take"):
        explorer.param_specs(exponential_decay, 1000, {"warmup": 3})

    def custom(step, peak, hold: int = 40, ratio_x: float = 0.25, flag: bool = True):
        return peak

    with pytest.raises(ValueError, match="peak"):
        explorer.param_specs(custom, 100)
    specs = explorer.param_specs(custom, 100, {"peak": Param("log", 0.01, 1e-3, 1.0)})
    assert specs["hold"].kind == "int" and specs["hold"].value == 40 and specs["hold"].max >= 100
    assert specs["ratio_x"].kind == "float" and specs["ratio_x"].value == 0.25
    assert specs["flag"] == Param("bool", True)


def test_default_param_widens_range_to_the_default():
    spec = explorer.default_param("step_size", 100, 500)
    assert spec.value == 500 and spec.max == 500
    assert explorer.default_param("warmup_steps", 1000).value == 50
    assert explorer.default_param("decay_steps", 1000).kind == "int"


def test_param_validation():
    with pytest.raises(ValueError):
        Param("slider", 1)
    with pytest.raises(ValueError):
        Param("float", 0.5)  # no range
    with pytest.raises(ValueError):
        Param("log", 0.1, 0.0, 1.0)  # a log range must be > 0


def test_parse_ints():
    assert explorer.parse_ints("300, 600") == [300, 600]
    assert explorer.parse_ints(" 0 10,20 ") == [0, 10, 20]
    assert explorer.parse_ints("") == []
    with pytest.raises(ValueError, match="whole numbers"):
        explorer.parse_ints("3.5, x")


# -- explorer: drawing ----------------------------------------------------------------------
def test_render_schedule_draws_the_values():
    ax = explorer.render_schedule(step_decay, 10, {"lr_max": 1.0, "step_size": 3, "gamma": 0.5})
    assert isinstance(ax, matplotlib.axes.Axes)
    line = ax.lines[0]
    np.testing.assert_array_equal(line.get_xdata(), np.arange(10))
    np.testing.assert_allclose(line.get_ydata(), [step_decay(s, 1.0, 3, 0.5) for s in range(10)])
    title = ax.get_title()
    assert "step_decay(lr_max=1, step_size=3, gamma=0.5)" in title
    assert "lr(0) = 1" in title and "lr(T-1) = 0.125" in title
    assert f"mean over the run = {np.mean([step_decay(s, 1.0, 3, 0.5) for s in range(10)]):.4g}" in title
    assert ax.get_yscale() == "linear"
    assert ax.get_ylim()[0] == 0.0  # the LR axis starts at 0


def test_render_schedule_uses_given_axes_log_scale_and_past_the_end():
    fig, ax = plt.subplots()
    got = explorer.render_schedule(exponential_decay, 20, {"lr_max": 0.1, "gamma": 0.9}, ax=ax, logy=True,
                                   extra_steps=5, label="exp")
    assert got is ax
    assert ax.get_yscale() == "log"
    values = ax.lines[0].get_ydata()
    assert len(values) == 25
    np.testing.assert_allclose(values, [0.1 * 0.9**s for s in range(25)])
    assert len(ax.lines) == 2 and list(ax.lines[1].get_xdata()) == [20, 20]  # the end of the run
    assert ax.get_legend() is not None


def test_render_schedule_log_scale_falls_back_with_zero_values():
    ax = explorer.render_schedule(multistep_decay, 10, {"lr_max": 1.0, "milestones": [5], "gamma": 0.0}, logy=True)
    assert ax.get_yscale() == "linear"  # a learning rate of 0 has no place on a log axis


def test_render_schedule_past_the_end_uses_the_run_length():
    ax = explorer.render_schedule(cosine, 10, {"lr_max": 1.0, "lr_min": 0.0}, extra_steps=3)
    np.testing.assert_allclose(ax.lines[0].get_ydata()[10:], [0.0] * 3, atol=1e-15)  # holds after the end
    assert "lr(T-1)" in ax.get_title() and "(T = 10)" in ax.get_title()


# -- explorer: the widget -------------------------------------------------------------------
def test_schedule_explorer_builds_and_redraws():
    ipywidgets = pytest.importorskip("ipywidgets")
    schedules = {"step": step_decay, "multistep": multistep_decay, "exponential": exponential_decay}
    box = explorer.schedule_explorer(schedules, total_steps=100,
                                     specs={"exponential": {"gamma": Param("float", 0.99, 0.9, 1.0, 0.001)}})
    assert isinstance(box, ipywidgets.VBox)
    assert list(box.dropdown.options) == ["step", "multistep", "exponential"]
    assert set(box.controls) == set(schedules)
    step_controls = box.controls["step"]
    assert isinstance(step_controls["lr_max"], ipywidgets.FloatLogSlider)
    assert isinstance(step_controls["step_size"], ipywidgets.IntSlider)
    assert isinstance(box.controls["multistep"]["milestones"], ipywidgets.Text)
    assert box.params() == {"lr_max": pytest.approx(0.1), "step_size": 25, "gamma": 0.5}
    assert box.last_values() == pytest.approx([step_decay(s, 0.1, 25, 0.5) for s in range(100)])

    step_controls["step_size"].value = 10  # moving a slider redraws
    assert box.last_values() == pytest.approx([step_decay(s, 0.1, 10, 0.5) for s in range(100)])

    box.dropdown.value = "multistep"  # switching schedule swaps the controls
    assert box.children[1].children == tuple(box.controls["multistep"].values())
    box.controls["multistep"]["milestones"].value = "0, 40"
    assert box.last_values() == pytest.approx([multistep_decay(s, 0.1, [0, 40], 0.5) for s in range(100)])

    box.dropdown.value = "exponential"
    assert box.params()["gamma"] == pytest.approx(0.99)
    box.dropdown.value = "step"  # settings are kept per schedule
    assert box.params()["step_size"] == 10


def test_schedule_explorer_survives_a_broken_schedule():
    pytest.importorskip("ipywidgets")

    def unfinished(step, lr_max):
        raise NotImplementedError()

    box = explorer.schedule_explorer({"mine": unfinished, "step": step_decay}, total_steps=50)
    assert box.last_values() == []  # nothing drawn, no exception
    assert not plt.get_fignums(), "no empty figure is left behind"
    box.dropdown.value = "step"
    assert len(box.last_values()) == 50


def test_schedule_explorer_rejects_bad_arguments():
    pytest.importorskip("ipywidgets")
    with pytest.raises(ValueError):
        explorer.schedule_explorer({}, total_steps=10)
    with pytest.raises(ValueError, match="not given"):
        explorer.schedule_explorer({"step": step_decay}, specs={"cosine": {}})


def test_the_explorers_need_ipywidgets_only_to_make_a_widget():
    """Without ipywidgets (blocked in a fresh interpreter) the plots, and the explorers under
    grading, still work: ipywidgets is imported inside the widget code only."""
    code = (
        "import sys, os\n"
        "sys.modules['ipywidgets'] = None  # import ipywidgets now raises ImportError\n"
        "import matplotlib; matplotlib.use('Agg')\n"
        "from lrcourse import explorer, widgets\n"
        "linear = lambda step, lr_max=0.1, total_steps=10: lr_max * (1 - step / total_steps)\n"
        "assert len(explorer.schedule_values(linear, 10)) == 10\n"
        "explorer.render_schedule(linear, 10)\n"
        "os.environ['NBGRADER_EXECUTION'] = 'autograde'\n"
        "assert explorer.schedule_explorer({'linear': linear}, total_steps=10) is None\n"
        "try:\n"
        "    del os.environ['NBGRADER_EXECUTION']\n"
        "    explorer.schedule_explorer({'linear': linear}, total_steps=10)\n"
        "except ImportError:\n"
        "    print('widget needs ipywidgets')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "widget needs ipywidgets" in proc.stdout


def test_a_drawing_error_tells_the_student_what_to_do():
    from lrcourse.widgets import drawing_error

    unfinished = drawing_error("step decay", NotImplementedError())
    assert "not written yet" in unfinished and "run its cell" in unfinished
    assert "NotImplementedError: " not in unfinished, "never an empty reason"
    broken = drawing_error("cosine", ZeroDivisionError("division by zero"))
    assert "ZeroDivisionError: division by zero" in broken and "Fix it" in broken
    assert "(no message)" in drawing_error("cosine", ValueError())
