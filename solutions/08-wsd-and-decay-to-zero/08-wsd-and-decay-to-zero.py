# %% [markdown]
# # 08 · Warmup-stable-decay, cooldowns and decay to zero
#
# Notebook 04 wrote warmup-stable-decay (WSD) with a linear cooldown, as one of the
# schedules large models are trained with, and said in passing why it matters: its stable
# phase does not depend on the length of the run, so one long run can be branched into
# cooldowns at several budgets. This notebook takes that seriously. We build the cooldown
# shapes in use, plan the branches of one stable run and count what they save against
# training every budget separately, and then train it all on the small transformer. Two
# older questions come back on the way: should the learning rate end at zero or at a tenth
# of the peak, and what happened to the schedule of the original transformer?
#
# **You will**
# 1. write three cooldown shapes (linear, `1 - sqrt`, cosine) and a WSD schedule with any of
#    them, checked against PyTorch;
# 2. plan branched cooldowns: where each budget leaves the stable run, and how many updates
#    the plan trains against separate runs;
# 3. train one stable run with its cooldowns against a cosine run per budget, compare shapes
#    and lengths of cooldown, and decaying to zero against decaying to a tenth, on 3 seeds;
# 4. derive the inverse square root schedule of Vaswani et al. (2017) from its description,
#    and see why it has fallen out of use.
#
# Exercises: `cooldown_factor` (1 point), `wsd` (2), `branch_plan` (2), `inverse_sqrt` (2).

# %% nbgrader={"grade_id": "setup", "locked": true}
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

import lrcourse

lrcourse.seed_everything(0)
device = lrcourse.pick_device()
print(f"PyTorch {torch.__version__}, training on: {device}")
if lrcourse.quick_mode():
    print("Quick mode: the experiment uses tiny budgets and one seed (grading or CI).")

# %% [markdown]
# ## 1. Cooldown shapes
#
# A cooldown takes the learning rate from the peak down to a floor over its last $D$
# updates. Write its progress as $p \in [0, 1]$: $p = 0$ where the cooldown starts, $p = 1$
# where it has arrived (the first step after the run, as in notebook 04). A shape is a
# factor $g(p)$ with $g(0) = 1$ and $g(1) = 0$, and the learning rate during the cooldown is
# $\text{lr}_{\min} + (\text{lr}_{\max} - \text{lr}_{\min})\, g(p)$. Three shapes are common:
#
# | shape | $g(p)$ | where from | average of $g$ over the cooldown |
# |---|---|---|---|
# | `"linear"` | $1 - p$ | notebook 04 | $1/2$ |
# | `"cosine"` | $\frac12\,(1 + \cos \pi p)$ | notebook 03's half period | $1/2$ |
# | `"1-sqrt"` | $1 - \sqrt{p}$ | Hägele et al. (2024, arXiv:2405.18392) | $1 - \int_0^1 \sqrt{p}\,dp = 1/3$ |
#
# Hägele et al. proposed `1 - sqrt` as a cooldown for WSD and found that it beat a linear
# one in their language-model runs (the code released with the paper writes it as
# `1 - math.sqrt(progress)`, with a floor added). Its slope is infinite at $p = 0$: the
# learning rate drops at once, then creeps towards the floor. Over the cooldown it averages
# a third of the way between floor and peak, where the other two average half. Keep that
# number in mind for section 4.
#
# **Exercise (1 point).** Write `cooldown_factor(progress, shape)`, which returns $g(p)$ for
# the three shapes above. Clamp the progress to $[0, 1]$ first (before the cooldown the
# factor is 1, after it 0), and raise a `ValueError` for any other `shape`, whatever the
# progress.

# %% nbgrader={"grade_id": "cooldown_factor", "solution": true}
def cooldown_factor(progress, shape):
    """The cooldown's factor g(p) for "linear", "1-sqrt" or "cosine", with p clamped to [0, 1]."""
    ### BEGIN SOLUTION
    if shape not in ("linear", "1-sqrt", "cosine"):
        raise ValueError(f"unknown cooldown shape {shape!r}: use 'linear', '1-sqrt' or 'cosine'")
    p = min(max(progress, 0.0), 1.0)
    if shape == "linear":
        return 1.0 - p
    if shape == "1-sqrt":
        return 1.0 - math.sqrt(p)
    return 0.5 * (1.0 + math.cos(math.pi * p))
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_cooldown_factor", "grade": true, "points": 1}
import math

from lrcourse.checks import call, code, run_tests

tests = [
    call("cooldown_factor", 0.25, "linear").expect(0.75, hint="linear: 1 - p"),
    call("cooldown_factor", 0.25, "1-sqrt").expect(0.5, hint="1-sqrt: 1 - sqrt(p), and sqrt(0.25) = 0.5"),
    call("cooldown_factor", 0.5, "cosine").expect(0.5, hint="cosine: (1 + cos(pi * p)) / 2, and cos(pi / 2) = 0"),
    code("[cooldown_factor(p, 'cosine') for p in (0.0, 1.0)]", "cooldown_factor(0.0 and 1.0, 'cosine')").expect(
        [1.0, 0.0], hint="every shape starts at 1 and ends at 0"),
    call("cooldown_factor", -0.5, "1-sqrt").expect(1.0, hint="before the cooldown (p < 0) the factor is 1"),
    call("cooldown_factor", 0.5, "exponential").raises(ValueError, hint="an unknown shape raises ValueError"),
]
### BEGIN HIDDEN TESTS
for p in (0.0, 0.01, 0.2, 0.36, 0.5, 0.81, 0.999, 1.0):
    tests += [
        call("cooldown_factor", p, "linear").expect(1 - p, hint="linear: 1 - p"),
        call("cooldown_factor", p, "1-sqrt").expect(1 - math.sqrt(p), hint="1-sqrt: 1 - sqrt(p)"),
        call("cooldown_factor", p, "cosine").expect(0.5 * (1 + math.cos(math.pi * p)),
                                                     hint="cosine: (1 + cos(pi * p)) / 2"),
    ]
for shape in ("linear", "1-sqrt", "cosine"):
    tests += [
        call("cooldown_factor", 1.5, shape).expect(0.0, hint="after the cooldown (p > 1) the factor is 0")
        .when_hidden("past the end of the cooldown (progress > 1) the factor should be 0: clamp the progress"),
        call("cooldown_factor", -3, shape).expect(1.0, hint="before the cooldown (p < 0) the factor is 1")
        .when_hidden("before the cooldown (progress < 0) the factor should be 1: clamp the progress"),
        call("cooldown_factor", 1, shape).expect(0.0, hint="an integer progress of 1 is the end of the cooldown"),
        call("cooldown_factor", 0, shape).expect(1.0, hint="an integer progress of 0 is its start"),
    ]
tests += [
    call("cooldown_factor", 0.5, "sqrt").raises(ValueError, hint="the shape is spelled '1-sqrt'"),
    call("cooldown_factor", 0.5, "Linear").raises(ValueError, hint="shape names are lower case"),
    call("cooldown_factor", 2.0, "exp").raises(ValueError, hint="check the shape before returning anything")
    .when_hidden("an unknown shape must raise ValueError whatever the progress, past the end of the cooldown too"),
    call("cooldown_factor", -1.0, "exp").raises(ValueError, hint="check the shape before returning anything")
    .when_hidden("an unknown shape must raise ValueError whatever the progress, before the cooldown too"),
    call("cooldown_factor", progress=0.64, shape="1-sqrt").expect(
        0.2, hint="keep the parameter names progress and shape"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# The three shapes over a cooldown, and the learning rate each has used so far (the running
# mean of $g$, which ends at the averages of the table):

# %% tags=["illustration"]
p_axis = np.linspace(0, 1, 201)
shapes = ("linear", "1-sqrt", "cosine")
fig, (ax_g, ax_mean) = plt.subplots(1, 2, figsize=(11, 3.6))
for shape in shapes:
    g = np.array([cooldown_factor(p, shape) for p in p_axis])
    ax_g.plot(p_axis, g, linewidth=2, label=shape)
    ax_mean.plot(p_axis[1:], np.cumsum(g)[1:] / np.arange(2, len(g) + 1), linewidth=2, label=shape)
ax_g.set(xlabel="progress through the cooldown, p", ylabel="g(p)", title="cooldown shapes")
ax_mean.set(xlabel="progress through the cooldown, p", ylabel="mean of g so far",
            title="the learning rate used so far")
for ax in (ax_g, ax_mean):
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
fig.tight_layout()

# %% [markdown]
# ## 2. WSD with any cooldown
#
# Now the whole schedule, with notebook 04's conventions and $D$ = `decay_steps`: a linear
# warmup over the first $W$ updates (update `step` uses `step + 1` increments of
# $\text{lr}_{\max}/W$; `warmup_steps = 0` means no warmup), `lr_max` up to update $T - D - 1$,
# the cooldown over updates $T - D, \dots, T - 1$, its progress going up in equal steps from
# $p = 0$ at update $T - D$ to $p = 1$ at $t = T$, and `lr_min` from $t = T$ on. With
# `shape="linear"` it is 04's `warmup_stable_decay`, which PyTorch builds as
# `SequentialLR(LinearLR, ConstantLR, LinearLR)`; with `shape="cosine"` the last piece is
# `CosineAnnealingLR(T_max=D, eta_min=lr_min)`, which agrees with ours up to $t = T$ (and then
# climbs back up, notebook 03).
#
# Two settings turn this one function into schedules you already know. With
# `decay_steps = total_steps - warmup_steps` there is no stable phase: the cooldown is a
# decay over the whole run after the warmup, and `shape="cosine"` then gives 04's
# `warmup_cosine`, `shape="linear"` a straight line down to `lr_min`. With `decay_steps = 0`
# there is no cooldown at all: the peak is held to the end.
#
# **Exercise (2 points).** Write `wsd(step, lr_max, total_steps, warmup_steps, decay_steps,
# shape="linear", lr_min=0.0)`, using your `cooldown_factor`. Assume
# `warmup_steps + decay_steps <= total_steps`. Mind the order of your cases: the warmup
# comes first, and with `decay_steps = 0` there is nothing to divide by.

# %% nbgrader={"grade_id": "wsd", "solution": true}
def wsd(step, lr_max, total_steps, warmup_steps, decay_steps, shape="linear", lr_min=0.0):
    """Linear warmup, lr_max, then a cooldown of the given shape to lr_min over the last decay_steps updates."""
    ### BEGIN SOLUTION
    if step < warmup_steps:
        return lr_max * (step + 1) / warmup_steps
    if step >= total_steps:
        return lr_min
    decay_start = total_steps - decay_steps
    if step < decay_start:  # no-mutate (`<=` is equivalent: at decay_start the cooldown gives lr_max too)
        return lr_max
    return lr_min + (lr_max - lr_min) * cooldown_factor((step - decay_start) / decay_steps, shape)
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_wsd", "grade": true, "points": 2}
import math
import warnings

from torch.optim.lr_scheduler import ConstantLR, CosineAnnealingLR, LinearLR, SequentialLR

from lrcourse.checks import call, code, run_tests
from lrcourse.reference import torch_lrs


def torch_wsd(lr_max, total, warmup, decay, lr_min, shape, n_steps):
    """PyTorch's WSD (warmup >= 1, decay >= 1), linear or cosine cooldown: the LR of updates 0 .. n_steps - 1."""
    def make(opt):
        last = (LinearLR(opt, start_factor=1.0, end_factor=lr_min / lr_max, total_iters=decay) if shape == "linear"
                else CosineAnnealingLR(opt, T_max=decay, eta_min=lr_min))
        return SequentialLR(opt, [LinearLR(opt, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1),
                                  ConstantLR(opt, factor=1.0, total_iters=0), last],
                            milestones=[warmup, total - decay])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch_lrs(make, lr_max, n_steps)


def wsd_case(lr_max, total, warmup, decay, lr_min, shape, why=""):
    """Every update of the run and the first step past it (CosineAnnealingLR climbs back up after that)."""
    shown = f"wsd(s, {lr_max}, {total}, {warmup}, {decay}, shape={shape!r}, lr_min={lr_min})"
    reference = "SequentialLR(LinearLR, ConstantLR, " + ("LinearLR)" if shape == "linear" else "CosineAnnealingLR)")
    return code(f"[wsd(s, {lr_max!r}, {total}, {warmup}, {decay}, {shape!r}, {lr_min!r}) for s in range({total + 1})]",
                f"{shown} for s = 0..{total}, compared with {reference}{why}").expect(
        torch_wsd(lr_max, total, warmup, decay, lr_min, shape, total + 1),
        hint="warmup, then lr_max, then lr_min + (lr_max - lr_min) * cooldown_factor((step - (T - D)) / D, shape)")


def one_minus_sqrt(step, lr_max, total, decay, lr_min):
    """The 1-sqrt cooldown by its formula, for a step inside the cooldown."""
    return lr_min + (lr_max - lr_min) * (1 - math.sqrt((step - (total - decay)) / decay))


tests = [
    code("[wsd(s, 1.0, 10, 2, 4) for s in range(11)]",
         "[wsd(s, 1.0, total_steps=10, warmup_steps=2, decay_steps=4) for s in range(11)]").expect(
        [0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0],
        hint="notebook 04's table: the cooldown uses updates 6..9 at progress 0, 1/4, 1/2, 3/4; step 10 is lr_min"),
    call("wsd", 8, 1.0, 10, 2, 4, shape="1-sqrt").expect(
        1 - math.sqrt(0.5), hint="update 8 is at progress (8 - 6) / 4 = 0.5 of the cooldown"),
    call("wsd", 7, 1.0, 10, 2, 4, shape="cosine", lr_min=0.2).expect(
        0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi / 4)), hint="lr_min + (lr_max - lr_min) * g(p), p = 1/4"),
    wsd_case(0.1, 20, 5, 4, 0.01, "linear"),
    wsd_case(0.1, 20, 5, 8, 0.01, "cosine"),
]
### BEGIN HIDDEN TESTS
for lr_max, total, warmup, decay, lr_min, why in ((0.3, 50, 10, 10, 0.0, ""),
                                                  (6e-3, 300, 20, 60, 6e-4, " (a longer run)"),
                                                  (0.5, 12, 1, 3, 0.05, " (a warmup of 1 update)"),
                                                  (0.2, 16, 4, 12, 0.0, " (no stable phase)"),
                                                  (0.2, 16, 4, 5, 0.2, " (lr_min = lr_max)"),
                                                  (1.0, 9, 3, 1, 0.1, " (a cooldown of 1 update)")):
    tests += [wsd_case(lr_max, total, warmup, decay, lr_min, "linear", why),
              wsd_case(lr_max, total, warmup, decay, lr_min, "cosine", why)]
tests += [
    code("[wsd(s, 0.4, 100, 10, 40, '1-sqrt', 0.04) for s in range(60, 100)]",
         "wsd(s, 0.4, 100, 10, 40, shape='1-sqrt', lr_min=0.04) over the cooldown").expect(
        [one_minus_sqrt(s, 0.4, 100, 40, 0.04) for s in range(60, 100)],
        hint="lr_min + (lr_max - lr_min) * (1 - sqrt((step - (T - D)) / D))"),
    code("[wsd(s, 0.4, 100, 10, 40, '1-sqrt', 0.04) for s in range(0, 61, 5)]",
         "wsd(s, 0.4, 100, 10, 40, shape='1-sqrt', lr_min=0.04) before the cooldown").expect(
        [0.04, 0.24] + [0.4] * 11, hint="the warmup and the stable phase do not depend on the shape"),
    code("[wsd(s, 0.4, 100, 10, 40, sh, 0.04) for sh in ('linear', '1-sqrt', 'cosine') for s in (100, 101, 10**6)]",
         "wsd(s, ..., lr_min=0.04) past the end, every shape").expect(
        [0.04] * 9, hint="from step total_steps on the schedule holds lr_min"),
    code("[wsd(s, 0.3, 10, 0, 4) for s in range(11)]", "wsd(s, 0.3, 10, warmup_steps=0, decay_steps=4)").expect(
        [0.3] * 7 + [0.225, 0.15, 0.075, 0.0], hint="warmup_steps = 0: no warmup, update 0 already uses lr_max")
    .when_hidden("with warmup_steps = 0 (no warmup) update 0 should already use lr_max"),
    code("[wsd(s, 0.4, 8, 2, 0, 'cosine', 0.1) for s in range(10)]",
         "wsd(s, 0.4, 8, 2, decay_steps=0, shape='cosine', lr_min=0.1)").expect(
        [0.2] + [0.4] * 7 + [0.1, 0.1],
        hint="decay_steps = 0: lr_max to the end of the run, lr_min after it, and nothing to divide by")
    .when_hidden("with decay_steps = 0 the schedule should hold lr_max to the end of the run (and lr_min after "
                 "it) without dividing by zero"),
    code("[wsd(s, 1.0, 6, 2, 4, 'cosine') for s in range(7)]",
         "wsd(s, 1.0, 6, 2, 4, 'cosine'): no stable phase").expect(
        [0.5, 1.0, 1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4)), 0.0],
        hint="the cooldown starts right after the warmup, still at lr_max"),
    code("wsd(7, 2, 10, 2, 4, 'linear', 0)", "wsd(7, 2, 10, 2, 4, 'linear', 0) with integer arguments").expect(
        1.5, hint="2 * (1 - 1/4): divide with /, not //"),
    code("wsd(1, 3, 10, 4, 2)", "wsd(1, 3, 10, 4, 2) with integer arguments").expect(
        1.5, hint="update 1 of a warmup of 4: 3 * 2 / 4"),
    call("wsd", 95, 1.0, 100, 10, 20, shape="exponential").raises(
        ValueError, hint="inside the cooldown an unknown shape raises: use cooldown_factor")
    .when_hidden("wsd should get its cooldown from cooldown_factor (an unknown shape raises ValueError there)"),
    call("wsd", step=90, lr_max=0.5, total_steps=100, warmup_steps=10, decay_steps=20, shape="1-sqrt",
         lr_min=0.1).expect(0.1 + 0.4 * (1 - math.sqrt(0.5)),
                            hint="keep the parameter names step, lr_max, total_steps, warmup_steps, decay_steps, "
                                 "shape, lr_min"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# Here is the point of the stable phase. Below, your `wsd` for three budgets, $T = 200$,
# $300$ and $400$ updates, each with a warmup of 50 and a linear cooldown over its last 20%,
# and, on the right, a cosine to a tenth of the peak for the same three budgets.

# %% tags=["illustration"]
budgets_shown, warmup_shown = (200, 300, 400), 50
fig, (ax_wsd, ax_cos) = plt.subplots(1, 2, figsize=(12, 3.6), sharey=True)
for T in budgets_shown:
    steps_axis = np.arange(T)
    ax_wsd.plot(steps_axis, [wsd(s, 1.0, T, warmup_shown, T // 5) for s in steps_axis], linewidth=2, label=f"T = {T}")
    ax_cos.plot(steps_axis, [wsd(s, 1.0, T, warmup_shown, T - warmup_shown, "cosine", 0.1) for s in steps_axis],
                linewidth=2, label=f"T = {T}")
ax_wsd.set(xlabel="update (step)", ylabel="learning rate / peak", title="WSD, linear cooldown over the last 20%")
ax_cos.set(xlabel="update (step)", title="cosine to a tenth, one per budget")
for ax in (ax_wsd, ax_cos):
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
fig.tight_layout()

# %% [markdown]
# The three cosines part ways the moment their warmups end: the learning rate of update 100
# depends on the length of the run, so each budget needs a run of its own, from update 50 on.
# The three WSD schedules are one and the same curve until update 160, where the shortest
# leaves it. Train the stable run once, save a checkpoint at update 160, and a cooldown of 40
# updates from it gives the finished model for 200 updates; the same for 300 and 400. One
# run, several finished models (Hu et al., 2024, arXiv:2404.06395; Hägele et al., 2024).
# And if a larger budget turns up later, the stable run simply goes on.
#
# ## 3. Planning the branches
#
# How much does that save? Take budgets $B_1, \dots, B_k$ (in any order) and a cooldown of
# `cooldown_percent` $c$ percent of each. Budget $B_i$ cools down over
# $D_i = \lfloor B_i\, c / 100 \rfloor$ updates, in integer arithmetic: in floating point
# `0.29 * 100` is `28.999999999999996`, and `int()` of it is 28, not 29. Its cooldown starts
# at update $S_i = B_i - D_i$, from the stable run's checkpoint after $S_i$ updates (updates
# $0, \dots, S_i - 1$, warmup included).
#
# Count updates, one per forward and backward pass. The stable run is trained once, as far
# as the last checkpoint anybody needs; each cooldown is then trained once, on top of its
# checkpoint. Separate runs (a cosine for each budget, say) train every budget from the
# start.
#
# **Exercise (2 points).** Write `branch_plan(budgets, cooldown_percent)`, which returns a
# tuple `(starts, branched, separate)`: the list of the $S_i$, in the order of `budgets`; the
# number of updates the branched plan trains; and the number separate runs train. Assume at
# least one budget, and an integer percentage from 0 to 100.

# %% nbgrader={"grade_id": "branch_plan", "solution": true}
def branch_plan(budgets, cooldown_percent):
    """Where each budget's cooldown leaves the stable run, and the updates trained branched and separately."""
    ### BEGIN SOLUTION
    starts = [budget - budget * cooldown_percent // 100 for budget in budgets]
    cooldowns = sum(budget - start for budget, start in zip(budgets, starts))
    return starts, max(starts) + cooldowns, sum(budgets)
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_branch_plan", "grade": true, "points": 2}
from lrcourse.checks import code, run_tests


def plan_cases(budgets, percent, starts, branched, separate, why=""):
    """The three parts of branch_plan(budgets, percent), each its own case."""
    shown = f"branch_plan({budgets}, {percent}){why}"
    return [
        code(f"list(branch_plan({budgets}, {percent})[0])", f"{shown}: starts").expect(
            starts, hint="S_i = B_i - floor(B_i * percent / 100), in the order of the budgets"),
        code(f"branch_plan({budgets}, {percent})[1]", f"{shown}: updates trained branched").expect(
            branched, hint="the stable run up to the last checkpoint any cooldown needs, plus every cooldown once"),
        code(f"branch_plan({budgets}, {percent})[2]", f"{shown}: updates trained separately").expect(
            separate, hint="separate runs train every budget from update 0"),
    ]


tests = [
    *plan_cases([200, 300, 400], 20, [160, 240, 320], 500, 900),
    *plan_cases([1000], 10, [900], 1000, 1000, " (one budget: nothing to share)"),
    code("len(branch_plan([200, 300, 400], 20))", "len(branch_plan([200, 300, 400], 20))").expect(
        3, hint="return a tuple (starts, branched, separate)"),
]
### BEGIN HIDDEN TESTS
tests += [
    *plan_cases([400, 200, 300], 20, [320, 160, 240], 500, 900, " (budgets not in order)"),
    *plan_cases([300, 450, 600], 5, [285, 428, 570], 570 + 15 + 22 + 30, 1350, " (rounded down)"),
    *plan_cases([100], 29, [71], 100, 100, " (0.29 * 100 is 28.999999999999996 in floating point)"),
    *plan_cases([250, 1000], 0, [250, 1000], 1000, 1250, " (no cooldown: checkpoints of the stable run)"),
    *plan_cases([200, 300], 100, [0, 0], 500, 500, " (a cooldown over the whole run shares nothing)"),
    *plan_cases([7, 13, 50, 11], 30, [5, 10, 35, 8], 35 + 2 + 3 + 15 + 3, 81, ""),
    *plan_cases(list(range(1000, 10001, 1000)), 10, list(range(900, 9001, 900)), 9000 + 5500, 55000,
                " (ten budgets)"),
    code("branch_plan((300, 100), 50)[0]", "branch_plan((300, 100), 50) with a tuple of budgets: starts").expect(
        [150, 50], hint="budgets may come as any sequence"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# For the three budgets of the figure, the branched plan trains 500 updates and three separate
# runs 900: the stable run to update 320, then cooldowns of 40, 60 and 80. The saving grows
# with the number of budgets. (A detail: each cooldown's first update still uses the peak, so
# a trainer that shares updates while the learning rates agree, like the one below, shares
# that update with the stable run too. We count it the simple way.)

# %% tags=["illustration"]
for budgets, percent in (([200, 300, 400], 20), ([200, 300, 400], 5), (list(range(100, 1001, 100)), 20)):
    starts, branched, separate = branch_plan(budgets, percent)
    print(f"budgets {budgets[0]}..{budgets[-1]} ({len(budgets)} of them), {percent:>2}% cooldowns: "
          f"branched {branched:>5} updates, separate {separate:>5}, {separate / branched:.2f}x as many")

# %% [markdown]
# ## 4. One stable run against a cosine per budget
#
# Now we train it. The model is notebook 04's small character-level transformer (2 layers,
# width 48, 67k parameters, AdamW with $\beta = (0.9, 0.999)$ and no weight decay, batches of
# 32 windows of 32 characters), at a peak of 0.01 with a warmup of 50 updates, the setting
# that worked in notebooks 03 and 04. Budgets of 200, 300 and 400 updates. For each budget:
#
# * **WSD, linear, 20%**: the stable run with a linear cooldown over the last 20%;
# * **WSD, 1-sqrt, 20%**: the same cooldown length, Hägele et al.'s shape;
# * **WSD, linear, 5%**: a short cooldown, a quarter as long;
# * **cosine to 10%**: notebook 04's `warmup_cosine` down to a tenth of the peak, a run per
#   budget: your `wsd` with `decay_steps = total_steps - warmup_steps` and `shape="cosine"`.
#
# and, at the longest budget only, two runs for section 5. Every schedule is your `wsd`, and
# the cooldowns start where your `branch_plan` says. All runs of a seed start from the same
# initial weights and see the same batches. `train_lm_batched` trains them all at once and
# trains the updates that runs of a seed share only once: the warmup for everybody, the
# stable phase for all WSD runs. The branching is real: a cooldown is a copy of the stable
# run (weights and AdamW state) that goes its own way. Each run stops at its own budget, and
# we compare the validation loss (on text the model never trained on) at its end. On two
# CPU cores the next cell takes about a minute. (Under grading it runs one seed of a few
# dozen updates: far too few to mean anything.)

# %% nbgrader={"grade_id": "experiment_settings", "locked": true}
PEAK, WARMUP, BUDGETS = 0.01, 50, [200, 300, 400]
COOLDOWN_PERCENT, SHORT_PERCENT = 20, 5
SEEDS = [0, 1, 2]
if lrcourse.quick_mode():
    WARMUP, BUDGETS, SEEDS = 4, [16, 24, 32], [0]

# %% tags=["illustration"]
from lrcourse.batched import per_schedule_and_seed, train_lm_batched
from lrcourse.plots import trailing_mean
from lrcourse.transformer import load_corpus
from lrcourse.wsd import draw_runs

LONGEST = max(BUDGETS)
LINEAR, SQRT, SHORT, COSINE = (f"WSD, linear, {COOLDOWN_PERCENT}%", f"WSD, 1-sqrt, {COOLDOWN_PERCENT}%",
                               f"WSD, linear, {SHORT_PERCENT}%", "cosine to 10%")
D2Z, LINEAR_TO_10 = "linear to 0, whole run", f"WSD, linear, {COOLDOWN_PERCENT}%, to 10%"


def wsd_schedule(total, decay_steps, shape="linear", lr_min=0.0):
    """Your wsd at the experiment's peak and warmup, as a function of the step alone."""
    return lambda s: wsd(s, PEAK, total, WARMUP, decay_steps, shape, lr_min)


starts, branched, separate = branch_plan(BUDGETS, COOLDOWN_PERCENT)
short_starts, short_branched, _ = branch_plan(BUDGETS, SHORT_PERCENT)
# The runs from scratch first, then the branches: with three seeds on two cores, the middle
# seed's runs are split between the cores, and this order splits them where they share least.
schedules = {(COSINE, T): wsd_schedule(T, T - WARMUP, "cosine", PEAK / 10) for T in BUDGETS}
schedules[D2Z, LONGEST] = wsd_schedule(LONGEST, LONGEST - WARMUP)
for T, start, short_start in zip(BUDGETS, starts, short_starts):
    schedules[LINEAR, T] = wsd_schedule(T, T - start)
    schedules[SQRT, T] = wsd_schedule(T, T - start, "1-sqrt")
    schedules[SHORT, T] = wsd_schedule(T, T - short_start)
schedules[LINEAR_TO_10, LONGEST] = wsd_schedule(LONGEST, LONGEST - max(starts), lr_min=PEAK / 10)
lengths = {key: key[1] for key in schedules}  # every run stops at its own budget

corpus = load_corpus(device)
trained = per_schedule_and_seed(train_lm_batched, schedules, SEEDS, lengths, corpus=corpus, eval_every=LONGEST,
                                device=device, workers=1 if lrcourse.quick_mode() else 2)
final = {key: [h.val_loss[-1] for h in histories] for key, histories in trained.items()}
print(f"{len(schedules) * len(SEEDS)} runs trained. Updates per seed for the {COOLDOWN_PERCENT}% cooldowns: "
      f"{branched} branched, against {separate} for the cosine runs.")

# %% [markdown]
# The first seed's runs, up close: on the left the WSD runs with a linear 20% cooldown (the
# longest drawn in full: it *is* the stable run until its own cooldown; the dots are where
# the shorter budgets branch off), on the right the cosine runs. Above the learning rate,
# below the training loss (mean of the last 20 minibatches).

# %% tags=["illustration"]
colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"][:len(BUDGETS)]
fig, axes = plt.subplots(2, 2, figsize=(13, 6.5), sharex=True, sharey="row", gridspec_kw={"height_ratios": [1, 2]})
draw_runs(axes[0, 0], axes[1, 0], {f"{LINEAR}, T = {T}": trained[LINEAR, T][0] for T in BUDGETS},
          starts={f"{LINEAR}, T = {T}": start for T, start in zip(BUDGETS[:-1], starts[:-1])}, colors=colors)
draw_runs(axes[0, 1], axes[1, 1], {f"{COSINE}, T = {T}": trained[COSINE, T][0] for T in BUDGETS}, colors=colors)
tail = np.concatenate([trailing_mean(trained[name, T][0].loss, 20)[WARMUP:] for T in BUDGETS for name in (LINEAR, COSINE)])
axes[1, 0].set_ylim(tail.min() - 0.03, np.percentile(tail, 90) + 0.03)
axes[0, 0].set(ylabel="learning rate", title="one stable run, a cooldown per budget")
axes[0, 1].set(title="a cosine run per budget")
axes[1, 0].set(ylabel="training loss (last 20 updates)")
for ax in axes.flat:
    ax.grid(True, alpha=0.3)
for ax in axes[1]:
    ax.set_xlabel("update (step)")
    ax.set_xlim(WARMUP, LONGEST + 2)
    ax.legend(fontsize="small", loc="upper right")
fig.tight_layout()

# %% [markdown]
# The final validation loss of every run, against the WSD run with a linear 20% cooldown of
# the same seed and budget (above the zero line: worse than it). One dot per seed, the line
# through their mean.

# %% tags=["illustration"]
fig, ax = plt.subplots(figsize=(8, 4.2))
for i, name in enumerate((SQRT, SHORT, COSINE)):
    gaps = np.array([[w - b for b, w in zip(final[LINEAR, T], final[name, T])] for T in BUDGETS])  # budgets x seeds
    x = np.array(BUDGETS) + (i - 1) * LONGEST / 60  # side by side
    ax.plot(x, gaps.mean(axis=1), "-", color=f"C{i + 1}", linewidth=1.5, label=f"{name} minus {LINEAR}")
    ax.plot(np.repeat(x, gaps.shape[1]), gaps.ravel(), "o", color=f"C{i + 1}", markersize=5, alpha=0.8)
ax.axhline(0.0, color="gray", linewidth=1)
ax.set(xlabel="budget (updates)", ylabel="final validation loss, difference", xticks=BUDGETS,
       title=f"paired by seed ({len(SEEDS)} seed{'s' if len(SEEDS) > 1 else ''})")
ax.grid(True, alpha=0.3)
ax.legend(fontsize="small")
fig.tight_layout()

# %% [markdown]
# The numbers behind the plot. A seed's runs share initial weights and batches, so the
# differences within a row are what to read; the last line gives the spread between seeds,
# which is far larger.

# %% tags=["illustration"]
print(f"{'seed':>4} {'T':>4} | {'linear':>7} {'1-sqrt':>7} {'lin 5%':>7} {'cosine':>7} | "
      f"{'cos-lin':>7} {'sqrt-lin':>8} {'5%-20%':>7}")
for i, seed in enumerate(SEEDS):
    for T in BUDGETS:
        lin, sq, short, cos = (final[name, T][i] for name in (LINEAR, SQRT, SHORT, COSINE))
        print(f"{seed:>4} {T:>4} | {lin:7.3f} {sq:7.3f} {short:7.3f} {cos:7.3f} | "
              f"{cos - lin:+7.3f} {sq - lin:+8.3f} {short - lin:+7.3f}")


def compare(better, worse):
    """How often `better` ended below `worse`, over every seed and budget, and by how much."""
    gaps = [w - b for T in BUDGETS for b, w in zip(final[better, T], final[worse, T])]
    print(f"{better} ended below {worse} in {sum(g > 0 for g in gaps)} of {len(gaps)} (seed, budget) pairs, "
          f"by {min(gaps):+.4f} to {max(gaps):+.4f}")


compare(LINEAR, COSINE)
compare(LINEAR, SQRT)
compare(LINEAR, SHORT)
seed_spread = [max(final[LINEAR, T]) - min(final[LINEAR, T]) for T in BUDGETS]
print(f"spread between seeds ({LINEAR}): {min(seed_spread):.3f} to {max(seed_spread):.3f}")

# %% [markdown]
# What we measured on a 2-core CPU (seeds 0, 1, 2; the numbers move a little with the
# device):
#
# * **Branching was not a compromise here: it won.** The WSD branches with a linear 20%
#   cooldown ended below the cosine run of the same budget in all 9 (seed, budget) pairs, by
#   0.031 to 0.059, while training 500 updates per seed where the three cosine runs trained
#   900. In the plot each cooldown pulls its branch's loss down within a few dozen updates,
#   below the stable run it left: the drop of notebook 02, wherever we choose to put it.
# * **The shape: linear beat `1 - sqrt`, the opposite of what Hägele et al. found.** Linear
#   ended below `1 - sqrt` in all 9 pairs, but mostly by little (0.002 to 0.024), far less
#   than the spread between seeds.
# * **The length: 20% beat 5% in 8 of 9 pairs**, by up to 0.031; the exception (seed 0 at
#   400 updates) went the other way by 0.001.
#
# Why would linear beat `1 - sqrt` here? Look at how much learning rate each spends. Our runs
# are short: 400 updates of 1,024 characters are about 6 characters per parameter, and the
# loss is still falling fast when the cooldown starts (the final validation losses are 1.8
# to 2.4; notebook 03's runs of 700 updates reached about 1.7). In that regime how far the
# weights still travel matters a lot, and over the cooldown `1 - sqrt` averages a third of
# the peak where linear averages a half. The cooldown itself is needed, though: the 5% one
# keeps the peak longer and still did worse in 8 of 9 cases: too few updates at a low
# learning rate.
# Hägele et al. trained language models far longer, where the balance can tip the other way.
# What the tiny model does show is the mechanics, branches that really are finished models at
# a fraction of the cost; which shape is best is a question for runs of a realistic length.
#
# ## 5. Decay to zero, or to a tenth?
#
# Language models are commonly trained with a warmup and a cosine down to a tenth of the
# peak, as in notebook 03. Bergsma et al. (2025, arXiv:2502.15938) compared schedules, each
# at its best peak learning rate, and found a straight line
# down to zero (D2Z, "decay to zero") better than that cosine at compute-optimal dataset
# sizes, with a gain that grows with the number of training tokens per parameter: a model
# trained for 80 tokens per parameter with D2Z reached a lower loss than the same model
# trained for 200 with the cosine, a saving of 60% of the compute. Their explanation views
# AdamW's weights as a weighted average of all past updates: early on the learning rate must
# be large to move away from the initial weights; late, a small learning rate averages over
# many updates and cancels their noise; a line to zero serves both. And linear decay is what
# theory recommends too: Defazio et al. (2023, arXiv:2310.07831) derive it as the best
# schedule for the last iterate in the worst case, and found it matching or beating cosine
# annealing across the problems they tried (notebook 03 saw a line beat the cosine too,
# with both ending at a tenth).
#
# The experiment above trained two more runs of the longest budget for this: a straight line
# from the peak to 0 right after the warmup (your `wsd` with
# `decay_steps = total_steps - warmup_steps`), against the cosine to a tenth; and the 20%
# linear cooldown ending at a tenth of the peak instead of 0, to isolate the floor. Below,
# the four schedules and their mean learning rate, then the final validation loss per seed.

# %% tags=["illustration"]
four = (COSINE, D2Z, LINEAR, LINEAR_TO_10)
fig, ax = plt.subplots(figsize=(8, 3.6))
for name in four:
    lrs = trained[name, LONGEST][0].lr
    ax.plot(lrs, linewidth=2, label=f"{name} (mean {np.mean(lrs) / PEAK:.2f} x peak)")
ax.set(xlabel="update (step)", ylabel="learning rate", title=f"the four schedules of T = {LONGEST}")
ax.grid(True, alpha=0.3)
ax.legend(fontsize="small")
fig.tight_layout()

print(f"{'seed':>4} | " + " ".join(f"{name:>{max(len(name), 7)}}" for name in four))
for i, seed in enumerate(SEEDS):
    print(f"{seed:>4} | " + " ".join(f"{final[name, LONGEST][i]:>{max(len(name), 7)}.4f}" for name in four))
for better, worse in ((D2Z, COSINE), (LINEAR, COSINE), (LINEAR_TO_10, LINEAR)):
    gaps = [w - b for b, w in zip(final[better, LONGEST], final[worse, LONGEST])]
    print(f"{better} below {worse}: {sum(g > 0 for g in gaps)} of {len(gaps)} seeds "
          f"({', '.join(f'{g:+.4f}' for g in gaps)})")

# %% [markdown]
# What the tiny model shows, on every seed (CPU, seeds 0, 1, 2):
#
# * **No clear winner between D2Z and the cosine to a tenth.** The straight line to zero
#   ended lower on seeds 1 and 2 (by 0.004 and 0.011) and higher on seed 0 (by 0.028).
# * **Both lost to the 20% WSD cooldown**, which also ends at zero, on every seed, by 0.031
#   or more.
# * **With that cooldown, ending at a tenth was slightly better than ending at zero**, on
#   every seed, by 0.002 to 0.004: here a little more learning rate helped even at the end.
#
# So the tiny model does not reproduce the advantage of decaying to zero, and it is not in a
# position to test it. Bergsma et al.'s comparison above is at 80 and 200 tokens per
# parameter, and they report that the advantage grows with the tokens per parameter; our
# longest run sees about 6 characters per parameter. In runs this short the loss is limited
# by how far the weights have travelled more than by the noise of the last updates, and the
# schedules that spent the most learning rate (the means in the legend) did best, as long as
# they cooled down at the end. The regime in which averaging away the noise matters most,
# where a decay all the way to zero is meant to pay, is out of reach of a minute of CPU.
# (If you have several minutes, set `BUDGETS = [1000]` and `SEEDS = [0]` in a new cell, run
# the training cell and the table again, and see whether the order changes.)
#
# ## 6. The inverse square root
#
# The original transformer (Vaswani et al., 2017, arXiv:1706.03762) was trained with Adam
# ($\beta_2 = 0.98$) on a schedule of its own, which the paper describes in words: a linear
# rise over the first `warmup_steps` training steps, then a fall in proportion to the
# inverse square root of the step number. The whole is scaled by
# $d_{\text{model}}^{-1/2}$, the inverse square root of the model's width, and the paper
# used 4,000 warmup steps. Its step number `step_num` counts from 1; ours counts from 0, so
# `step_num = step + 1` (counting from 0 would give the first update a learning rate of 0,
# the wasted update of notebook 04).
#
# So, with $s$ = `step + 1` and $W$ = `warmup_steps`, the schedule has two pieces: a line
# through the origin, $a\,s$, while $s \le W$, and $c/\sqrt{s}$ after, where $c$ is the
# width's factor $d_{\text{model}}^{-1/2}$. Nothing jumps where the two meet.
#
# **Exercise (2 points).** Find $a$ from the condition that the two pieces meet at
# $s = W$, then write `inverse_sqrt(step, d_model, warmup_steps)` (for `warmup_steps >= 1`).
# Which of the two pieces is the smaller one before $W$, and which after?

# %% nbgrader={"grade_id": "inverse_sqrt", "solution": true}
def inverse_sqrt(step, d_model, warmup_steps):
    """Vaswani et al.'s schedule: a linear warmup over warmup_steps updates, then down as 1 / sqrt(step number)."""
    ### BEGIN SOLUTION
    s = step + 1  # Vaswani et al. count steps from 1
    return d_model ** -0.5 * min(s ** -0.5, s * warmup_steps ** -1.5)
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_inverse_sqrt", "grade": true, "points": 2}
import math

from lrcourse.checks import assert_true, call, code, run_tests


def rises_then_falls(peak_index, what):
    """A check: the values rise up to peak_index and fall after it."""
    def check(values):
        assert_true(isinstance(values, list) and len(values) > peak_index + 1, f"{what} returned {values!r}")
        rising = all(a < b for a, b in zip(values[:peak_index], values[1:peak_index + 1]))
        falling = all(a > b for a, b in zip(values[peak_index:], values[peak_index + 1:]))
        assert_true(rising and falling, f"{what} should rise up to update warmup_steps - 1 and fall after it")
    return check


tests = [
    call("inverse_sqrt", 0, 512, 4000).expect(
        1.746928107421711e-07, hint="update 0 is step_num 1: the warmup line a * s at s = 1"),
    call("inverse_sqrt", 3999, 512, 4000).expect(
        0.0006987712429686843, hint="update W - 1 is step_num W, the peak: where the two pieces meet"),
    call("inverse_sqrt", 15999, 512, 4000).expect(
        0.00034938562148434214, hint="four times as many steps as the warmup: half the peak (1 / sqrt(4))"),
    code("[inverse_sqrt(s, 64, 5) for s in range(12)]", "[inverse_sqrt(s, 64, 5) for s in range(12)]").check(
        rises_then_falls(4, "[inverse_sqrt(s, 64, 5) for s in range(12)]")),
]
### BEGIN HIDDEN TESTS
for d_model, warmup in ((512, 4000), (1024, 4000), (48, 50), (64, 5), (256, 1), (7, 3)):
    for step in (0, 1, warmup - 2, warmup - 1, warmup, 2 * warmup, 10 * warmup + 7, 10**6):
        if step < 0:
            continue
        s = step + 1
        tests.append(call("inverse_sqrt", step, d_model, warmup).expect(
            d_model**-0.5 * min(s**-0.5, s * warmup**-1.5),
            hint="d_model ** -0.5 * min(s ** -0.5, s * warmup_steps ** -1.5) with s = step + 1"))
tests += [
    call("inverse_sqrt", 0, 256, 1).expect(1 / 16, hint="a warmup of 1 update: update 0 uses the peak")
    .when_hidden("with warmup_steps = 1, update 0 should already use the peak, (d_model * 1) ** -0.5"),
    code("inverse_sqrt(3, 4, 16)", "inverse_sqrt(3, 4, 16) with integer arguments").expect(
        0.5 * 4 / 64, hint="a = c * W ** -1.5: use true powers and /, not //"),
    call("inverse_sqrt", 10**8 - 1, 100, 10).expect(1e-5, hint="far past the warmup: d_model ** -0.5 / sqrt(s)"),
    call("inverse_sqrt", step=8, d_model=16, warmup_steps=9).expect(
        16**-0.5 * 9**-0.5, hint="keep the parameter names step, d_model, warmup_steps"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# Meeting at $s = W$ means $a W = c/\sqrt{W}$, so $a = c\,W^{-3/2}$, and since the line is
# below $c/\sqrt{s}$ before $W$ and above it after, the schedule is the smaller of the two,
# which is how the paper writes it:
#
# $$ \text{lr} = d_{\text{model}}^{-1/2} \cdot \min\bigl(s^{-1/2},\; s \cdot W^{-3/2}\bigr), \qquad s = \text{step} + 1 . $$
#
# Its peak, at $s = W$, is $(d_{\text{model}} W)^{-1/2}$: $7.0 \times 10^{-4}$ for the base
# model's width of 512 and 4,000 warmup steps. Below, it is drawn for that model, and next to
# our experiment's WSD with the same warmup, scaled to the same peak.

# %% tags=["illustration"]
fig, (ax_paper, ax_ours) = plt.subplots(1, 2, figsize=(12, 3.6))
paper_steps = np.arange(0, 100_000, 50)
ax_paper.plot(paper_steps, [inverse_sqrt(s, 512, 4000) for s in paper_steps], linewidth=2)
ax_paper.set(xlabel="update (step)", ylabel="learning rate", title="inverse_sqrt(step, 512, 4000)")
ours = np.arange(LONGEST)
scale = PEAK / inverse_sqrt(WARMUP - 1, 48, WARMUP)  # the same peak as the experiment
ax_ours.plot(ours, [scale * inverse_sqrt(s, 48, WARMUP) for s in ours], linewidth=2, label="inverse square root")
ax_ours.plot(ours, trained[LINEAR, LONGEST][0].lr, linewidth=2, label=LINEAR)
ax_ours.set(xlabel="update (step)", title=f"at our scale, T = {LONGEST}, W = {WARMUP}")
ax_ours.legend(fontsize="small")
for ax in (ax_paper, ax_ours):
    ax.grid(True, alpha=0.3)
fig.tight_layout()
print(f"peak for d_model = 512, W = 4000: {inverse_sqrt(3999, 512, 4000):.2e}; "
      f"at the end of a run 25 times the warmup: {inverse_sqrt(25 * 4000 - 1, 512, 4000) / inverse_sqrt(3999, 512, 4000):.2f}"
      " of the peak")

# %% [markdown]
# Why is it rarely used for new models? The formula answers it.
#
# * **It never cools down.** After $T$ updates its learning rate is still
#   $\sqrt{W/T}$ of the peak: a fifth of it after 25 times the warmup. Notebooks 02 and 03
#   found that a run long enough to reach its noise floor should end at a low learning rate,
#   and section 4 showed what a cooldown buys in the last fifth of a run. The inverse square
#   root never gives its last updates that: it keeps falling slowly, but it never cools
#   down.
# * **Its peak is tied to other choices.** The peak is $(d_{\text{model}} W)^{-1/2}$: a
#   longer warmup *lowers* it, and the width sets it without regard to the data or the
#   batch size. Tuning the peak means multiplying the formula by a factor, and then it is a
#   warmup plus a particular decay that has to be tuned like any other.
# * **What it did have, WSD kept.** It needs no total length: it can run for as long as you
#   like. WSD's stable phase has the same property, and adds a cooldown that turns any point
#   of the run into a finished model.
#
# ## 7. Explore
#
# A cooldown designer (not graded; it needs a running notebook): pick a shape and move the
# sliders. It calls your `wsd` and `inverse_sqrt`. Compare a 20% cooldown of each shape and
# read off the mean learning rate in the title; set `decay_steps` to `total_steps -
# warmup_steps` to get a decay over the whole run.

# %% tags=["illustration"]
from lrcourse.explorer import Param, schedule_explorer


def with_shape(shape):
    """Your wsd with the cooldown shape fixed, as a schedule the explorer can read."""
    def schedule(step, lr_max, total_steps, warmup_steps, decay_steps, lr_min=0.0):
        return wsd(step, lr_max, total_steps, warmup_steps, decay_steps, shape, lr_min)
    schedule.__name__ = f"wsd_{shape.replace('-', '_')}"
    return schedule


wsd_specs = {"lr_max": Param("log", 0.01, 1e-4, 1.0, 0.01), "warmup_steps": Param("int", 50, 0, 500, 10),
             "decay_steps": Param("int", 200, 0, 1000, 10), "lr_min": 0.0}
schedule_explorer(
    {f"WSD, {shape}": with_shape(shape) for shape in ("linear", "1-sqrt", "cosine")} | {"inverse square root": inverse_sqrt},
    total_steps=1000,
    specs={**{f"WSD, {shape}": wsd_specs for shape in ("linear", "1-sqrt", "cosine")},
           "inverse square root": {"d_model": Param("int", 48, 16, 1024, 16), "warmup_steps": Param("int", 50, 1, 500, 1)}},
)

# %% [markdown]
# ## Summary
#
# * A cooldown is a factor $g(p)$ from 1 to 0 over its progress $p$: linear $1 - p$,
#   `1 - sqrt` $1 - \sqrt p$ (Hägele et al., 2024), cosine $\frac12(1 + \cos\pi p)$; over the
#   cooldown they average $\frac12$, $\frac13$ and $\frac12$ of the way from floor to peak.
# * WSD's stable phase does not depend on the budget, so one stable run, checkpointed at
#   $S_i = B_i - \lfloor B_i c/100 \rfloor$, gives a finished model for every budget $B_i$
#   with one cooldown each: $\max_i S_i + \sum_i D_i$ updates instead of $\sum_i B_i$ for
#   separate runs, and the stable run can go on if a larger budget turns up.
# * On the tiny transformer (200-400 updates, 3 seeds) the branched 20% linear cooldowns beat
#   a cosine run per budget on every seed and budget, at 56% of the updates; linear beat
#   `1 - sqrt` in every case and a 20% cooldown beat a 5% one in 8 of 9, by small margins,
#   in runs far shorter than the papers'.
# * Decay to zero: neither a line to zero over the whole run nor a cosine to a tenth won on
#   every seed, and the WSD cooldown beat both. Bergsma et al. (2025) find decay to
#   zero best at compute-optimal and longer training, a regime this model does not reach in
#   a minute; in our short runs, the schedules that spent the most learning rate and still
#   cooled down did best.
# * The inverse square root of Vaswani et al. (2017),
#   $d_{\text{model}}^{-1/2}\min(s^{-1/2}, s W^{-3/2})$ with $s$ = step + 1, never cools down
#   and ties its peak to the width and the warmup; WSD keeps its one virtue, not needing the
#   run's length.
#
# Next: **09 · One-cycle, plateaus, AdamW's weight decay and schedule-free**: `OneCycleLR`
# and `ReduceLROnPlateau` rebuilt, how the learning rate schedules AdamW's weight decay, and
# averaging the weights instead of decaying the learning rate.
