"""The schedule explorer of notebooks 02-04: pick a schedule, move its sliders, see lr(step).

A schedule is a plain function ``fn(step, **params) -> float``, as the notebooks write
them (``step_decay(step, lr_max, step_size, gamma)``). The explorer reads the function's
parameters, gives each a control (a slider for numbers, a text box for a list of
milestones), and redraws ``fn(step, ...)`` over the run whenever one moves.

Everything but the wiring is a plain function, testable without a browser:

* :func:`schedule_values` evaluates a schedule over a run;
* :func:`param_specs` decides the control of each parameter (from its name, its default,
  or a :class:`Param` you pass);
* :func:`render_schedule` draws one schedule on an Axes and returns it.

A parameter named ``total_steps`` is not given a control: it is the run's length, the
``total_steps`` the explorer was built with. ipywidgets is imported only inside
:func:`schedule_explorer`.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

import numpy as np

Schedule = Callable[..., float]
RUN_LENGTH = "total_steps"  # the parameter bound to the run's length, never a slider
KINDS = ("log", "float", "int", "ints", "bool")


@dataclass(frozen=True)
class Param:
    """How the explorer offers one parameter.

    ``kind`` is ``"log"`` (a logarithmic slider, for learning rates), ``"float"``,
    ``"int"``, ``"ints"`` (a comma-separated list of integers in a text box, for
    milestones) or ``"bool"`` (a checkbox). ``value`` is where the control starts;
    ``min``, ``max`` and ``step`` bound the sliders.
    """

    kind: str
    value: Any
    min: float | None = None
    max: float | None = None
    step: float | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Param kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind in ("log", "float", "int"):
            if self.min is None or self.max is None or not self.min <= self.max:
                raise ValueError(f"a {self.kind} Param needs min <= max, got min={self.min}, max={self.max}")
            if self.kind == "log" and self.min <= 0:
                raise ValueError(f"a log Param needs min > 0, got {self.min}")


def _steps_default(name: str, total_steps: int) -> Param | None:
    t = max(1, int(total_steps))
    if name == "step_size":
        return Param("int", max(1, t // 4), 1, t, 1)
    if name == "warmup_steps":
        return Param("int", max(1, t // 20), 1, max(1, t // 2), 1)
    if name.endswith("_steps") or name.endswith("_iters") or name in ("period", "cycle_length", "t_0", "T_0"):
        return Param("int", max(1, t // 5), 0, t, 1)
    return None


def default_param(name: str, total_steps: int, default: Any = inspect.Parameter.empty) -> Param:
    """The control for a parameter called ``name`` in a run of ``total_steps`` updates.

    Known names get ranges that suit them (``lr_max``: log slider 1e-4..1; ``lr_min``:
    0..0.2; ``gamma``: 0.01..1; ``step_size``, ``warmup_steps`` and other ``*_steps``:
    integers up to the run's length; ``milestones``: a list at half and three quarters
    of the run). Any other parameter needs a default value in the function's signature,
    and gets a range around it; without one this raises ``ValueError``.
    """
    has_default = default is not inspect.Parameter.empty
    t = max(1, int(total_steps))
    spec: Param | None = None
    if name in ("lr_max", "peak_lr", "base_lr", "lr", "max_lr", "lr_peak"):
        spec = Param("log", 0.1, 1e-4, 1.0, 0.01)
    elif name in ("lr_min", "min_lr", "lr_end", "final_lr", "end_lr", "eta_min"):
        spec = Param("float", 0.01, 0.0, 0.2, 0.001)
    elif name in ("gamma", "decay", "decay_rate"):
        spec = Param("float", 0.5, 0.01, 1.0, 0.01)
    elif name == "milestones":
        spec = Param("ints", [t // 2, (3 * t) // 4])
    elif name in ("beta", "momentum"):
        spec = Param("float", 0.9, 0.0, 0.999, 0.001)
    elif name in ("fraction", "warmup_fraction", "decay_fraction", "final_fraction", "min_ratio", "ratio"):
        spec = Param("float", 0.1, 0.0, 1.0, 0.01)
    else:
        spec = _steps_default(name, t)
    if spec is not None:
        return _with_value(spec, default) if has_default else spec
    if not has_default:
        raise ValueError(
            f"the explorer does not know what range to give the parameter {name!r}: give it a "
            f"default value in the function's signature, or pass specs={{schedule: {{{name!r}: Param(...)}}}}"
        )
    if isinstance(default, bool):
        return Param("bool", default)
    if isinstance(default, int):
        return Param("int", default, 0, max(2 * abs(default), t, 1), 1)
    if isinstance(default, float):
        top = max(1.0, 2.0 * abs(default))
        return Param("float", default, min(0.0, default), top, top / 1000)
    if isinstance(default, (list, tuple)) and all(isinstance(v, int) for v in default):
        return Param("ints", list(default))
    raise ValueError(f"the explorer cannot make a control for {name!r} with default {default!r}: "
                     f"pass specs={{schedule: {{{name!r}: Param(...)}}}}")


def _with_value(spec: Param, value: Any) -> Param:
    """``spec`` starting at ``value``, its range widened to include it."""
    if spec.kind == "ints":
        return replace(spec, value=[int(v) for v in value])
    if spec.kind == "bool":
        return replace(spec, value=bool(value))
    lo, hi = spec.min, spec.max
    if value < lo:
        lo = value if spec.kind != "log" or value > 0 else lo
    if value > hi:
        hi = value
    value = min(max(value, lo), hi)
    return replace(spec, value=int(value) if spec.kind == "int" else float(value), min=lo, max=hi)


def _schedule_params(fn: Schedule) -> list[inspect.Parameter]:
    """The parameters of ``fn`` after ``step`` (the first one)."""
    params = list(inspect.signature(fn).parameters.values())
    if not params:
        raise ValueError(f"{getattr(fn, '__name__', fn)!r} takes no arguments; a schedule is fn(step, ...)")
    return [p for p in params[1:] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def param_specs(fn: Schedule, total_steps: int, specs: Mapping[str, Any] | None = None) -> dict[str, Param]:
    """The control of each parameter of ``fn`` (all but ``step`` and ``total_steps``), in order.

    ``specs`` overrides by name: a :class:`Param`, or a plain value (where the control
    starts, with the range the name would get anyway).
    """
    specs = dict(specs or {})
    out: dict[str, Param] = {}
    for p in _schedule_params(fn):
        if p.name == RUN_LENGTH:
            continue
        given = specs.pop(p.name, inspect.Parameter.empty)
        if isinstance(given, Param):
            out[p.name] = given
        elif given is not inspect.Parameter.empty:
            out[p.name] = default_param(p.name, total_steps, given)
        else:
            out[p.name] = default_param(p.name, total_steps, p.default)
    if specs:
        raise ValueError(f"specs names parameters that {getattr(fn, '__name__', 'the schedule')} does not "
                         f"take: {sorted(specs)}")
    return out


def _bind(fn: Schedule, total_steps: int, params: Mapping[str, Any]) -> dict[str, Any]:
    kwargs = dict(params)
    if RUN_LENGTH not in kwargs and any(p.name == RUN_LENGTH for p in _schedule_params(fn)):
        kwargs[RUN_LENGTH] = int(total_steps)
    return kwargs


def _evaluate(fn: Schedule, n_steps: int, kwargs: Mapping[str, Any]) -> list[float]:
    return [float(fn(step, **kwargs)) for step in range(int(n_steps))]


def schedule_values(fn: Schedule, total_steps: int, /, **params) -> list[float]:
    """``[fn(0, **params), ..., fn(total_steps - 1, **params)]`` as floats.

    If ``fn`` has a ``total_steps`` parameter and ``params`` does not set it, it gets the
    run's length ``total_steps``.
    """
    return _evaluate(fn, total_steps, _bind(fn, total_steps, params))


def _describe(params: Mapping[str, Any]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        return str(v)

    return ", ".join(f"{k}={fmt(v)}" for k, v in params.items())


def render_schedule(fn: Schedule, total_steps: int, params: Mapping[str, Any] | None = None, ax=None, *,
                    label: str | None = None, logy: bool = False, extra_steps: int = 0):
    """Draw ``fn(step, **params)`` for the run's ``total_steps`` updates and return the Axes.

    The first line drawn holds the values (x: update 0, 1, ...; y: the learning rate).
    ``extra_steps`` > 0 continues the line that many updates past the end and marks the
    end with a dotted vertical line, to show what the schedule does if a run goes on longer
    than planned. The title gives the parameters, and the first, last and mean learning
    rate over the run (the last is that of update ``total_steps - 1``).
    """
    from .plots import plot_schedule

    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7.0, 3.8))
    params = dict(params or {})
    total_steps = int(total_steps)
    extra = max(0, int(extra_steps))
    values = np.array(_evaluate(fn, total_steps + extra, _bind(fn, total_steps, params)), dtype=np.float64)
    run = values[:total_steps]
    log_scale = bool(logy and run.size and np.all(run[np.isfinite(run)] > 0))  # a log axis needs lr > 0
    name = getattr(fn, "__name__", "schedule")
    first_new = len(ax.lines)  # plot_schedule draws the values first, then any end marker
    plot_schedule(lambda step: values[step], total_steps, ax=ax, label=label, extra_steps=extra, logy=log_scale)
    ax.lines[first_new].set_label(label or name)
    if not log_scale:
        ax.set_ylim(bottom=min(0.0, float(np.nanmin(run))) if run.size else 0.0)
    summary = (f"lr(0) = {run[0]:.4g}, lr(T-1) = {run[-1]:.4g}, mean over the run = {run.mean():.4g}"
               if run.size else "empty run")
    ax.set_title(f"{name}({_describe(params)})\n{summary}  (T = {total_steps})", fontsize="medium")
    return ax


# -- the widget ------------------------------------------------------------------------------
def parse_ints(text: str) -> list[int]:
    """``"300, 600"`` -> ``[300, 600]`` (spaces, commas or both; empty -> [])."""
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"expected whole numbers separated by commas, got {text!r}") from None


def _control(widgets, name: str, spec: Param):
    common = dict(description=name, style={"description_width": "initial"},
                  layout=widgets.Layout(width="60%"))
    if spec.kind == "log":
        return widgets.FloatLogSlider(value=spec.value, base=10, min=math.log10(spec.min),
                                      max=math.log10(spec.max), step=spec.step or 0.01,
                                      readout_format=".3g", continuous_update=False, **common)
    if spec.kind == "float":
        return widgets.FloatSlider(value=spec.value, min=spec.min, max=spec.max,
                                   step=spec.step or (spec.max - spec.min) / 1000 or 0.001,
                                   readout_format=".4g", continuous_update=False, **common)
    if spec.kind == "int":
        return widgets.IntSlider(value=int(spec.value), min=int(spec.min), max=int(spec.max),
                                 step=int(spec.step or 1), continuous_update=False, **common)
    if spec.kind == "ints":
        return widgets.Text(value=", ".join(str(v) for v in spec.value), continuous_update=False,
                            placeholder="e.g. 300, 600", **common)
    return widgets.Checkbox(value=bool(spec.value), description=name, indent=False)


def _read(control, spec: Param):
    if spec.kind == "ints":
        return parse_ints(control.value)
    if spec.kind == "int":
        return int(control.value)
    if spec.kind == "bool":
        return bool(control.value)
    return float(control.value)


def schedule_explorer(schedules: Mapping[str, Schedule], total_steps: int = 1000,
                      specs: Mapping[str, Mapping[str, Any]] | None = None, *, logy: bool = False):
    """An interactive plot of learning-rate schedules over a run of ``total_steps`` updates.

    ``schedules`` maps a name to a function ``fn(step, ...)``; a dropdown picks one,
    and a control per parameter (see :func:`param_specs`) sets its arguments. ``specs``
    maps a schedule's name to ``{parameter: Param or starting value}`` to override
    the controls. Each schedule keeps its own settings when you switch back and forth.
    Two checkboxes switch the y axis to a log scale and show a quarter of the run past
    its end. A schedule that raises (say, an exercise not done yet) shows the error
    instead of a plot.

    Returns the widget (a VBox); make it the last line of a cell to display it. It also
    carries handles for scripts and tests: ``.dropdown``, ``.controls`` (schedule name ->
    {parameter: widget}), ``.params()`` (the current schedule's arguments), ``.redraw()``,
    ``.output``, ``.log_scale``, ``.past_end`` and ``.last_values()`` (the learning rates
    drawn last, over the run; empty if the schedule raised). Under grading it draws the
    plot the widget opens with and returns None (:func:`lrcourse.widgets.static_under_grading`).
    """
    from .widgets import draw_or_explain, shown_figure, static_under_grading

    if not schedules:
        raise ValueError("schedule_explorer needs at least one schedule")
    specs = dict(specs or {})
    unknown = set(specs) - set(schedules)
    if unknown:
        raise ValueError(f"specs names schedules that were not given: {sorted(unknown)}")
    all_specs = {name: param_specs(fn, total_steps, specs.get(name)) for name, fn in schedules.items()}

    def draw_static(name: str, current: Mapping[str, Any], logy: bool, extra_steps: int) -> list[float]:
        """Draw one schedule as the widget shows it; its values over the run."""
        values = schedule_values(schedules[name], total_steps, **current)  # raises before any figure
        with shown_figure(figsize=(7.5, 3.8)) as ax:
            render_schedule(schedules[name], total_steps, current, ax=ax, logy=logy, extra_steps=extra_steps)
        return values

    first = next(iter(schedules))
    if static_under_grading(lambda: draw_static(first, {p: s.value for p, s in all_specs[first].items()},
                                                bool(logy), 0), first):
        return None
    import ipywidgets as widgets

    dropdown = widgets.Dropdown(options=list(schedules), value=next(iter(schedules)), description="schedule")
    log_box = widgets.Checkbox(value=bool(logy), description="log scale", indent=False)
    past_box = widgets.Checkbox(value=False, description="show past the end", indent=False)
    controls = {name: {p: _control(widgets, p, spec) for p, spec in pspecs.items()}
                for name, pspecs in all_specs.items()}
    control_box = widgets.VBox()
    out = widgets.Output()
    state: dict[str, Any] = {"values": []}

    def params() -> dict[str, Any]:
        name = dropdown.value
        return {p: _read(w, all_specs[name][p]) for p, w in controls[name].items()}

    def draw(change=None):
        name = dropdown.value
        with out:
            out.clear_output(wait=True)
            extra = total_steps // 4 if past_box.value else 0
            state["values"] = draw_or_explain(lambda: draw_static(name, params(), log_box.value, extra), name) or []

    def show_controls(change=None):
        control_box.children = tuple(controls[dropdown.value].values())
        draw()

    for group in controls.values():
        for w in group.values():
            w.observe(draw, names="value")
    log_box.observe(draw, names="value")
    past_box.observe(draw, names="value")
    dropdown.observe(show_controls, names="value")
    show_controls()

    box = widgets.VBox([dropdown, control_box, widgets.HBox([log_box, past_box]), out])
    box.dropdown, box.controls, box.output = dropdown, controls, out
    box.log_scale, box.past_end = log_box, past_box
    box.params, box.redraw = params, draw
    box.last_values = lambda: list(state["values"])
    return box


__all__ = ["Param", "default_param", "param_specs", "schedule_values", "render_schedule", "parse_ints",
           "schedule_explorer"]
