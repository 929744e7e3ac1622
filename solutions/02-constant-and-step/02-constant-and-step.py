# %% [markdown]
# # 02 · Constant and step schedules
#
# Notebook 01 ended with a compromise: one constant learning rate has to serve the sharp
# directions and the flat ones, the start of the run and its end. The oldest way out, and
# still a common one, is to train with a large learning rate for a while and then cut it,
# once or a few times, by a fixed factor. This notebook works out why that helps, writes the
# classic schedules as small functions, checks them against PyTorch, and shows the effect on
# a real network: the loss falls at the moment the learning rate drops.
#
# **You will**
# 1. fix the conventions every schedule in this course uses, on the constant schedule;
# 2. derive why SGD stalls at a *noise floor* set by the learning rate, why cutting the
#    learning rate lowers it, and how small a constant learning rate must be for a given floor;
# 3. implement step decay and multistep decay, derive exponential decay from step decay,
#    and match PyTorch's `StepLR`, `MultiStepLR` and `ExponentialLR` at every step;
# 4. watch a 10x drop of the learning rate make the loss fall, on several seeds.
#
# Exercises: `lr_for_noise_floor` (2 points), `step_decay` (2), `multistep_decay` (2),
# `exponential_decay` (2).

# %% nbgrader={"grade_id": "setup", "locked": true}
import math  # noqa: F401 (for your answers)

import matplotlib.pyplot as plt
import numpy as np
import torch

import lrcourse

lrcourse.seed_everything(0)
device = lrcourse.pick_device()
print(f"PyTorch {torch.__version__}, training on: {device}")
if lrcourse.quick_mode():
    print("Quick mode: the experiment at the end uses fewer seeds (grading or CI).")

# %% [markdown]
# ## 1. A schedule is a function of the step
#
# Every schedule in this course is a plain function of one integer, the **step**:
#
# * `step` counts the optimizer updates taken so far, starting from 0;
# * `lr(step)` is the learning rate that update number `step` uses. The first update of a
#   run uses `lr(0)`, the second `lr(1)`, and a run of `total_steps` updates ends with
#   `lr(total_steps - 1)`.
#
# The function is *pure*: its result depends only on its arguments, not on anything it
# remembers between calls. That makes a schedule easy to test, to plot and to resume: after
# a restart at update 5,000 you simply ask for `lr(5000)`. (PyTorch's schedulers instead
# keep a counter and change the optimizer's learning rate in place; notebook 05 shows how
# that works, and how it goes wrong.)
#
# The simplest schedule ignores the step. It is the baseline every other schedule has to
# beat, and in notebook 01 it was the only one we had. Written in this form it is the
# pattern for every schedule that follows: the step first, then the settings.

# %% tags=["illustration"]
def constant_lr(step, lr_max):
    """The learning rate of update `step` under a constant schedule: always lr_max."""
    return lr_max


# %% [markdown]
# ## 2. Why lower the learning rate at all?
#
# Notebook 01 ran gradient descent with the *exact* gradient. Training a network uses a
# minibatch, whose gradient is the exact one plus noise. Put that noise into the parabola
# $f(x) = \frac{1}{2}\lambda x^2$: each step sees the gradient $\lambda x_t + \sigma\xi_t$,
# where the $\xi_t$ are independent random numbers with mean 0 and variance 1 and $\sigma$
# says how noisy a minibatch is. The update becomes
#
# $$ x_{t+1} = x_t - \eta(\lambda x_t + \sigma \xi_t) = (1 - \eta\lambda)\,x_t - \eta\sigma\,\xi_t . $$
#
# Track the mean square $v_t = \mathbb{E}[x_t^2]$. Square the update and take the mean: the
# cross term vanishes, because $\xi_t$ has mean 0 and does not depend on $x_t$, so
#
# $$ v_{t+1} = (1 - \eta\lambda)^2\, v_t + \eta^2\sigma^2 . $$
#
# Two things happen in this line. The first term shrinks $v$ by the factor
# $(1-\eta\lambda)^2$ every step, exactly as in notebook 01. The second adds a fixed amount
# of noise every step. They balance where $v = (1-\eta\lambda)^2 v + \eta^2\sigma^2$, that is at
#
# $$ v^\ast = \frac{\eta^2\sigma^2}{1 - (1-\eta\lambda)^2} = \frac{\eta\,\sigma^2}{\lambda\,(2 - \eta\lambda)},
# \qquad
# \mathbb{E}[f] = \tfrac{1}{2}\lambda v^\ast = \frac{\eta\,\sigma^2}{2\,(2 - \eta\lambda)} \approx \frac{\eta\,\sigma^2}{4} . $$
#
# So with noisy gradients the loss does not go to zero: it settles on a **noise floor**
# roughly proportional to the learning rate. That is the whole case for decaying it:
#
# * a **large** $\eta$ reaches its floor quickly (the distance shrinks by $(1-\eta\lambda)^2$
#   per step) but its floor is high;
# * a **small** $\eta$ has a low floor but needs about $1/(2\eta\lambda)$ steps for each
#   factor of $e$ on the way down;
# * **large first, small later** gets both: race down to the high floor, then cut $\eta$ by
#   10 and the floor drops by about 10, within about $1/(2\eta\lambda)$ steps of the new,
#   smaller $\eta$.
#
# The cell below checks this on 4,000 independent copies of the noisy parabola
# ($\lambda = 1$, $\sigma = 1$, starting at $x_0 = 10$), with learning rates 0.1 and 0.01. It
# averages their loss at every step and draws the predicted floors as dashed lines.

# %% tags=["illustration"]
rng = np.random.default_rng(0)
lam, sigma, x0, steps, drop = 1.0, 1.0, 10.0, 300, 150


def noisy_parabola_loss(schedule, n_copies=4000):
    """Mean loss lam * x**2 / 2 over n_copies runs of SGD with gradient lam * x + sigma * noise."""
    x = np.full(n_copies, x0)
    losses = []
    for t in range(steps):
        losses.append(np.mean(0.5 * lam * x**2))
        x = x - schedule(t) * (lam * x + sigma * rng.standard_normal(n_copies))
    return np.array(losses)


def floor(eta):
    return eta * sigma**2 / (2 * (2 - eta * lam))


fig, ax = plt.subplots(figsize=(8, 4))
toy_runs = {"constant 0.1": lambda t: 0.1, "0.1, then 0.01 from step 150": lambda t: 0.1 if t < drop else 0.01,
            "constant 0.01": lambda t: 0.01}
for label, schedule in toy_runs.items():
    losses = noisy_parabola_loss(schedule)
    ax.plot(losses, label=label, linewidth=1.5)
    print(f"{label:<30} loss at step 149: {losses[drop - 1]:.4f}   at step 299: {losses[-1]:.4f}")
for eta in (0.1, 0.01):
    ax.axhline(floor(eta), color="gray", linestyle="--", linewidth=1)
    ax.text(steps, floor(eta), f"  floor for lr={eta}", va="center", fontsize="small")
ax.axvline(drop, color="gray", linestyle=":", linewidth=1)
ax.set_yscale("log")
ax.set(xlabel="update (step)", ylabel="mean loss over 4,000 runs", title="SGD on a noisy parabola")
ax.legend(fontsize="small")
fig.tight_layout()

# %% [markdown]
# The large learning rate reaches its floor within a few dozen steps and stays there. The
# small one is still far above both floors at step 300. The schedule that starts large and
# drops at step 150 heads for the lower floor at once, one factor of $e$ about every
# $1/(2\eta\lambda) = 50$ steps, and ends close to it, several times below both constant
# learning rates. A real network is not a parabola, but the same balance between the pull
# towards a minimum and the kick of the minibatch noise is why its loss often stops
# improving at a constant learning rate, and starts again when the learning rate is cut.
# Section 8 shows it.
#
# **How small must a constant learning rate be?** Turn the floor around: you want the loss
# of the parabola to settle at a target $f^\ast$, with $\lambda$ and $\sigma$ known. Which
# constant $\eta$ gets you there? The approximation $\eta\sigma^2/4$ holds only while
# $\eta\lambda$ is small, so start from the exact floor,
# $\mathbb{E}[f] = \frac{\eta\,\sigma^2}{2\,(2 - \eta\lambda)}$.
#
# **Exercise (2 points).** Set the exact floor equal to $f^\ast$ and solve for $\eta$ on
# paper (clear the fraction: what is left is linear in $\eta$). Then write
# `lr_for_noise_floor(target_loss, lam, sigma)`, which returns the constant learning rate
# whose noise floor is exactly `target_loss`.

# %% nbgrader={"grade_id": "lr_for_noise_floor", "solution": true}
def lr_for_noise_floor(target_loss, lam, sigma):
    """The constant LR at which SGD on 0.5 * lam * x**2 with gradient noise sigma settles at target_loss."""
    ### BEGIN SOLUTION
    return 4 * target_loss / (sigma**2 + 2 * lam * target_loss)
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_lr_for_noise_floor", "grade": true, "points": 2}
from lrcourse.checks import call, code, run_tests

tests = [
    call("lr_for_noise_floor", 0.1 / 3.8, 1.0, 1.0).expect(
        0.1, hint="in the toy above, lr = 0.1 settles at 0.1 / (2 * (2 - 0.1)) = 0.1 / 3.8; that floor should give "
                  "0.1 back"),
    code("eta = lr_for_noise_floor(0.02, 2.0, 0.5)\neta * 0.5**2 / (2 * (2 - eta * 2.0))",
         "the exact floor at lr_for_noise_floor(0.02, lam=2.0, sigma=0.5)").expect(
        0.02, hint="put your learning rate back into the exact floor formula: it must give the target"),
]
### BEGIN HIDDEN TESTS
tests += [
    call("lr_for_noise_floor", 0.5, 1.0, 1.0).expect(
        1.0, hint="eta * sigma**2 / 4 is only an approximation for small eta * lam: solve the exact floor"),
]
tests += [
    call("lr_for_noise_floor", target, lam, sigma).expect(
        4 * target / (sigma**2 + 2 * lam * target),
        hint="solve eta * sigma**2 / (2 * (2 - eta * lam)) = target_loss for eta")
    for target, lam, sigma in ((1e-4, 3.0, 2.0), (0.3, 10.0, 0.1), (2.0, 0.5, 3.0), (0.0263, 1.0, 1.0))
]
tests += [
    call("lr_for_noise_floor", 1e6, 4.0, 1.0).expect(
        4e6 / (1 + 8e6), hint="however high the target, the learning rate stays below 2 / lam (notebook 01)"),
    call("lr_for_noise_floor", sigma=2.0, lam=0.25, target_loss=0.01).expect(
        0.04 / (4 + 0.005), hint="keep the parameter names target_loss, lam, sigma"),
]
### END HIDDEN TESTS
run_tests(tests, globals())


# %% [markdown]
# Your function on the parabola of the cell above ($\lambda = \sigma = 1$): each ten times
# lower floor needs a learning rate about ten times smaller, and that learning rate needs
# about ten times more updates, $1/(2\eta\lambda)$, for each factor of $e$ on the way down.

# %% tags=["illustration"]
for target in (floor(0.1), floor(0.1) / 10, floor(0.1) / 100):
    eta = lr_for_noise_floor(target, lam, sigma)
    print(f"floor {target:.5f}: lr = {eta:.5f}, about {1 / (2 * eta * lam):5.0f} updates per factor of e on the way")

# %% [markdown]
# A constant learning rate has to choose between a low floor and a fast descent. A schedule
# does not: it starts large and is cut later.
#
# ## 3. Step decay
#
# The simplest way to "cut it now and then": multiply the learning rate by a factor
# $\gamma < 1$ (typically 0.1 or 0.5) every `step_size` updates. With `step_size = 3` and
# $\gamma = 0.5$:
#
# | update `step` | 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 |
# |---|---|---|---|---|---|---|---|---|
# | cuts so far | 0 | 0 | 0 | 1 | 1 | 1 | 2 | 2 |
# | `lr(step) / lr_max` | 1 | 1 | 1 | 0.5 | 0.5 | 0.5 | 0.25 | 0.25 |
#
# Updates `0 .. step_size - 1` run at `lr_max`; update `step_size`, the first one after
# `step_size` updates, already runs at the cut value. The number of cuts before update `step`
# is the number of whole blocks of `step_size` updates that came before it,
# $\lfloor \text{step} / \text{step\_size} \rfloor$, and each cut multiplies by $\gamma$:
#
# $$ \text{lr}(\text{step}) = \text{lr}_{\max} \cdot \gamma^{\lfloor \text{step}\,/\,\text{step\_size} \rfloor} . $$
#
# PyTorch's `torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma)` is this schedule.
# Its documentation speaks of epochs, because it is often stepped once per epoch, but what it
# counts is calls of `scheduler.step()`: call it once per update, as in this course, and
# `step_size` counts updates.
#
# **Exercise (2 points).** Write `step_decay(step, lr_max, step_size, gamma)`. The tests
# compare it with `StepLR` at every step of a run, using `torch_lrs` from `lrcourse.reference`
# (it reads the learning rate each update of a real `torch.optim.SGD` uses under the scheduler).

# %% nbgrader={"grade_id": "step_decay", "solution": true}
def step_decay(step, lr_max, step_size, gamma):
    """lr_max multiplied by gamma once for every full block of step_size updates before `step`."""
    ### BEGIN SOLUTION
    return lr_max * gamma ** (step // step_size)
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_step_decay", "grade": true, "points": 2}
from torch.optim.lr_scheduler import StepLR

from lrcourse.checks import code, run_tests
from lrcourse.reference import torch_lrs

tests = [
    code("step_decay(0, 1.0, 3, 0.5)", "step_decay(0, lr_max=1.0, step_size=3, gamma=0.5)").expect(
        1.0, hint="the first update uses lr_max"),
    code("step_decay(2, 1.0, 3, 0.5)", "step_decay(2, lr_max=1.0, step_size=3, gamma=0.5)").expect(
        1.0, hint="updates 0, 1 and 2 form the first block: no cut yet"),
    code("step_decay(3, 1.0, 3, 0.5)", "step_decay(3, lr_max=1.0, step_size=3, gamma=0.5)").expect(
        0.5, hint="update 3 comes after one full block of 3 updates, so the LR has been cut once"),
    code("[step_decay(s, 1.0, 3, 0.5) for s in range(10)]",
         "[step_decay(s, 1.0, 3, 0.5) for s in range(10)] compared with StepLR(step_size=3, gamma=0.5)").expect(
        torch_lrs(lambda opt: StepLR(opt, step_size=3, gamma=0.5), 1.0, 10),
        hint="the number of cuts is step // step_size (integer division: the LR changes in jumps)"),
]
### BEGIN HIDDEN TESTS
for lr_max, step_size, gamma, total in ((0.3, 7, 0.2, 50), (0.05, 1, 0.9, 30), (2.0, 100, 0.1, 350),
                                        (0.1, 4, 1.0, 20), (0.8, 5, 0.5, 5)):
    tests.append(code(f"[step_decay(s, {lr_max!r}, {step_size!r}, {gamma!r}) for s in range({total})]",
                      f"step_decay(s, {lr_max}, step_size={step_size}, gamma={gamma}) for s = 0..{total - 1}, "
                      f"compared with StepLR").expect(
        torch_lrs(lambda opt: StepLR(opt, step_size=step_size, gamma=gamma), lr_max, total),
        hint="lr_max * gamma ** (step // step_size); with step_size = 1 every update is a new block"))
for k in (1, 2, 5):
    tests.append(code(f"step_decay({7 * k}, 0.3, 7, 0.2)", f"step_decay({7 * k}, 0.3, step_size=7, gamma=0.2)").expect(
        0.3 * 0.2**k, hint="at step = k * step_size the LR has been cut exactly k times"))
    tests.append(code(f"step_decay({7 * k - 1}, 0.3, 7, 0.2)",
                      f"step_decay({7 * k - 1}, 0.3, step_size=7, gamma=0.2)").expect(
        0.3 * 0.2 ** (k - 1), hint="the last update of a block still uses the previous value"))
tests += [
    code("step_decay(1_000_000, 2.0, 250_000, 0.5)", "step_decay(1_000_000, 2.0, step_size=250_000, gamma=0.5)").expect(
        0.125, hint="4 full blocks have passed: 2.0 * 0.5**4"),
    code("step_decay(999_999, 2.0, 250_000, 0.5)", "step_decay(999_999, 2.0, step_size=250_000, gamma=0.5)").expect(
        0.25, hint="3 full blocks have passed: 2.0 * 0.5**3"),
    code("step_decay(12, 1, 4, 0.5)", "step_decay(12, 1, 4, 0.5) with an integer lr_max").expect(
        0.125, hint="lr_max * gamma ** (step // step_size)"),
]
### END HIDDEN TESTS
run_tests(tests, globals())


# %% [markdown]
# ## 4. Cutting at chosen milestones
#
# Regular blocks are rarely what you want; the cuts usually go at chosen points of the run.
# The ResNets on CIFAR-10 were trained for 64,000 updates with the learning rate divided by 10
# at updates 32,000 and 48,000, half and three quarters of the way (He et al., 2016,
# arXiv:1512.03385); ResNet-50 on ImageNet for 90 epochs, divided by 10 at epochs 30, 60 and
# 80 (Goyal et al., 2017, arXiv:1706.02677). **Multistep decay** takes a list of milestones
# and multiplies by $\gamma$ at each one the run has reached:
#
# $$ \text{lr}(\text{step}) = \text{lr}_{\max} \cdot \gamma^{\,\#\{\,m \,\in\, \text{milestones} : m \le \text{step}\,\}} . $$
#
# A milestone $m$ means that update $m$ is the first to use the lower value, just as update
# `step_size` was the first after a cut in step decay. That fixes the edge cases:
#
# * a milestone at 0 means that even the first update uses $\text{lr}_{\max}\cdot\gamma$;
# * the milestones may come in any order, since only how many of them are $\le$ `step`
#   matters;
# * a milestone listed twice counts twice: the LR is multiplied by $\gamma^2$ there. This is
#   what `torch.optim.lr_scheduler.MultiStepLR` does (it counts its milestones with a
#   `collections.Counter`), so we do the same;
# * no milestones at all leaves the learning rate constant.
#
# Milestones are whole numbers $\ge 0$.
#
# **Exercise (2 points).** Write `multistep_decay(step, lr_max, milestones, gamma)`, where
# `milestones` is a list or tuple of integers.

# %% nbgrader={"grade_id": "multistep_decay", "solution": true}
def multistep_decay(step, lr_max, milestones, gamma):
    """lr_max multiplied by gamma once for every milestone m <= step (repeats count, order does not)."""
    ### BEGIN SOLUTION
    reached = sum(1 for m in milestones if m <= step)
    return lr_max * gamma**reached
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_multistep_decay", "grade": true, "points": 2}
from torch.optim.lr_scheduler import MultiStepLR

from lrcourse.checks import code, run_tests
from lrcourse.reference import torch_lrs

tests = [
    code("multistep_decay(0, 1.0, [2, 5], 0.1)", "multistep_decay(0, 1.0, milestones=[2, 5], gamma=0.1)").expect(
        1.0, hint="no milestone reached yet: lr_max"),
    code("multistep_decay(2, 1.0, [2, 5], 0.1)", "multistep_decay(2, 1.0, milestones=[2, 5], gamma=0.1)").expect(
        0.1, hint="update 2 is the first to use the lower LR of milestone 2: count milestones m <= step"),
    code("[multistep_decay(s, 1.0, [2, 5], 0.1) for s in range(8)]",
         "[multistep_decay(s, 1.0, [2, 5], 0.1) for s in range(8)] compared with MultiStepLR").expect(
        torch_lrs(lambda opt: MultiStepLR(opt, milestones=[2, 5], gamma=0.1), 1.0, 8),
        hint="lr_max * gamma ** (number of milestones m with m <= step)"),
]
### BEGIN HIDDEN TESTS
cases = (
    ([30, 80], 0.5, 0.1, 100, "the usual case"),
    ([6, 2], 0.2, 0.5, 10, "milestones out of order"),
    ((3, 7), 0.2, 0.5, 10, "milestones in a tuple"),
    ([3, 3, 8], 1.0, 0.5, 12, "a milestone listed twice counts twice, as in MultiStepLR"),
    ([0, 4], 0.3, 0.1, 8, "a milestone at 0: the first update already uses lr_max * gamma"),
    ([], 0.7, 0.1, 5, "no milestones: a constant LR"),
    ([2, 5], 0.4, 1.0, 8, "gamma = 1 never changes the LR"),
    ([50], 0.1, 0.1, 20, "a milestone after the end of the run"),
)
for milestones, lr_max, gamma, total, why in cases:
    tests.append(code(f"[multistep_decay(s, {lr_max!r}, {milestones!r}, {gamma!r}) for s in range({total})]",
                      f"multistep_decay(s, {lr_max}, milestones={milestones!r}, gamma={gamma}) for s = 0..{total - 1}, "
                      f"compared with MultiStepLR ({why})").expect(
        torch_lrs(lambda opt: MultiStepLR(opt, milestones=list(milestones), gamma=gamma), lr_max, total),
        hint="count every milestone m <= step, repeats included, whatever the order"))
tests += [
    code("multistep_decay(0, 0.3, [0], 0.1)", "multistep_decay(0, 0.3, milestones=[0], gamma=0.1)").expect(
        0.03, hint="a milestone at 0 means the first update already uses lr_max * gamma"),
    code("multistep_decay(10**7, 1.0, [10, 10**6, 10**7], 0.5)",
         "multistep_decay(10**7, 1.0, milestones=[10, 10**6, 10**7], gamma=0.5)").expect(
        0.125, hint="all three milestones are <= step"),
    code("multistep_decay(10**7 - 1, 1.0, [10, 10**6, 10**7], 0.5)",
         "multistep_decay(10**7 - 1, 1.0, milestones=[10, 10**6, 10**7], gamma=0.5)").expect(
        0.25, hint="the milestone 10**7 is not reached before update 10**7"),
]
### END HIDDEN TESTS
run_tests(tests, globals())


# %% [markdown]
# ## 5. Exponential decay, the continuous cousin
#
# Step decay holds the learning rate for `step_size` updates and then cuts it by $\gamma$ all
# at once. Its continuous cousin spreads each cut evenly over its block: it multiplies the
# learning rate by the same factor $q$ after *every* update, with $q$ chosen so that over a
# block of `step_size` updates the learning rate falls by exactly as much as step decay's one
# cut. The two then agree at every block boundary (update 0, `step_size`, `2 * step_size`,
# ...), and in between the smooth one glides where the staircase jumps. PyTorch's
# `ExponentialLR(optimizer, gamma)` is this schedule, but its `gamma` is the factor per
# update, your $q$, not the factor per block.
#
# **Exercise (2 points).** Work out $q$ on paper: what do `step_size` updates, each
# multiplying by $q$, do to the learning rate, and what must that equal? Then write
# `exponential_decay(step, lr_max, step_size, gamma)`, with the same arguments as
# `step_decay`: the learning rate of update `step` when it falls by the factor $q$ at every
# update. The tests compare it with `ExponentialLR` given your $q$, and with your
# `step_decay` at the block boundaries.

# %% nbgrader={"grade_id": "exponential_decay", "solution": true}
def exponential_decay(step, lr_max, step_size, gamma):
    """Step decay's smooth cousin: the same factor every update, gamma over every step_size updates."""
    ### BEGIN SOLUTION
    return lr_max * gamma ** (step / step_size)
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_exponential_decay", "grade": true, "points": 2}
from torch.optim.lr_scheduler import ExponentialLR

from lrcourse.checks import code, run_tests
from lrcourse.reference import torch_lrs

tests = [
    code("exponential_decay(0, 1.0, 1, 0.5)", "exponential_decay(0, 1.0, step_size=1, gamma=0.5)").expect(
        1.0, hint="the first update uses lr_max"),
    code("[exponential_decay(s, 1.0, 1, 0.5) for s in range(6)]",
         "[exponential_decay(s, 1.0, step_size=1, gamma=0.5) for s in range(6)] compared with "
         "ExponentialLR(gamma=0.5)").expect(
        torch_lrs(lambda opt: ExponentialLR(opt, gamma=0.5), 1.0, 6),
        hint="with step_size = 1 every update is a block, so every update cuts by gamma"),
    code("[exponential_decay(s, 1.0, 2, 0.25) for s in range(5)]",
         "[exponential_decay(s, 1.0, step_size=2, gamma=0.25) for s in range(5)]").expect(
        [1.0, 0.5, 0.25, 0.125, 0.0625],
        hint="two updates per block and a cut of 0.25 per block: which factor, applied twice, gives 0.25?"),
    code("[exponential_decay(s, 0.3, 7, 0.2) for s in (0, 7, 14, 70)]",
         "exponential_decay(s, 0.3, step_size=7, gamma=0.2) at the block boundaries s = 0, 7, 14, 70").expect(
        [0.3, 0.3 * 0.2, 0.3 * 0.2**2, 0.3 * 0.2**10],
        hint="at every block boundary the smooth decay meets the staircase, step_decay(s, 0.3, 7, 0.2)"),
]
### BEGIN HIDDEN TESTS
for lr_max, step_size, gamma, total in ((0.1, 100, 0.5, 500), (0.03, 3, 0.9, 40), (0.5, 4, 1.0, 10),
                                        (0.2, 1, 0.999, 2000), (1.0, 250, 0.1, 1000)):
    tests.append(code(f"[exponential_decay(s, {lr_max!r}, {step_size!r}, {gamma!r}) for s in range({total})]",
                      f"exponential_decay(s, {lr_max}, step_size={step_size}, gamma={gamma}) for s = 0..{total - 1}, "
                      f"compared with ExponentialLR"
                      ).expect(torch_lrs(lambda opt: ExponentialLR(opt, gamma=gamma ** (1 / step_size)), lr_max, total),
                               hint="q ** step_size must equal gamma"))
tests += [
    code("exponential_decay(10_000, 1.0, 10_000, 0.01)", "exponential_decay(10_000, 1.0, step_size=10_000, gamma=0.01)"
         ).expect(0.01, hint="after one full block the smooth decay has cut by gamma"),
    code("exponential_decay(5, 1.0, 10, 0.25)", "exponential_decay(5, 1.0, step_size=10, gamma=0.25)").expect(
        0.5, hint="halfway through a block it has cut by the square root of gamma"),
    code("exponential_decay(3, 2, 1, 0.5)", "exponential_decay(3, 2, 1, 0.5) with integer lr_max and step_size"
         ).expect(0.25, hint="use true division (/) for the fraction of a block"),
    code("exponential_decay(1_000_000, 2.0, 250_000, 0.5)",
         "exponential_decay(1_000_000, 2.0, step_size=250_000, gamma=0.5)").expect(
        0.125, hint="4 full blocks: 2.0 * 0.5**4"),
    code("exponential_decay(step=6, lr_max=0.4, step_size=4, gamma=0.5)",
         "exponential_decay(step=6, lr_max=0.4, step_size=4, gamma=0.5)").expect(
        0.4 * 0.5**1.5, hint="keep the parameter names step, lr_max, step_size, gamma"),
]
### END HIDDEN TESTS
run_tests(tests, globals())


# %% [markdown]
# After `step_size` updates the smooth decay has multiplied by $q^{\,\text{step\_size}}$,
# and that must equal $\gamma$, so $q = \gamma^{1/\text{step\_size}}$ and
#
# $$ \text{lr}(\text{step}) = \text{lr}_{\max} \cdot q^{\,\text{step}}
#    = \text{lr}_{\max} \cdot \gamma^{\,\text{step}\,/\,\text{step\_size}} : $$
#
# the formula of step decay without the rounding down. In PyTorch it is
# `ExponentialLR(optimizer, gamma=gamma ** (1 / step_size))`. The same reasoning gives $q$
# from the end point of a run: to go from $\text{lr}_{\max}$ to $\text{lr}_{\text{end}}$
# over $T$ updates, $q^T = \text{lr}_{\text{end}}/\text{lr}_{\max}$. Dividing by 100 over
# 10,000 updates needs $q = 0.01^{1/10000} \approx 0.99954$: with one cut per update, the
# factor is always close to 1.
#
# A note on the end of the run. None of the three decays of this notebook knows how long the
# run is, so none of them stops: if a run goes on past the planned end, step and exponential
# decay keep cutting (multistep holds its value after the last milestone). PyTorch's
# schedulers behave the same way, so the tests cover long runs too. The schedules of
# notebooks 03 and 04 take `total_steps` and hold their final value after it.

# %% [markdown]
# Here are the four schedules side by side over a run of 1,000 updates, with your exponential
# decay given the step decay's settings (a cut by 0.5 per 200 updates). On the log scale on
# the right, exponential decay is a straight line through the corners of the staircase.

# %% tags=["illustration"]
total = 1000
steps_axis = np.arange(total)
curves = {
    "constant": [constant_lr(s, 0.1) for s in steps_axis],
    "step (step_size=200, gamma=0.5)": [step_decay(s, 0.1, 200, 0.5) for s in steps_axis],
    "multistep ([500, 750], gamma=0.1)": [multistep_decay(s, 0.1, [500, 750], 0.1) for s in steps_axis],
    "exponential (step_size=200, gamma=0.5)": [exponential_decay(s, 0.1, 200, 0.5) for s in steps_axis],
}
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
for ax, scale in zip(axes, ("linear", "log")):
    for label, values in curves.items():
        ax.plot(steps_axis, values, label=label, linewidth=1.5)
    ax.set(xlabel="update (step)", ylabel="learning rate", yscale=scale, title=f"{scale} scale")
    ax.grid(True, alpha=0.3)
axes[0].legend(fontsize="small")
fig.tight_layout()

# %% [markdown]
# ## 6. Explore
#
# Pick a schedule and move its sliders (not graded; it needs a running notebook). It calls
# your functions. The title gives the first and last learning rate of the run and the mean
# over it: the mean learning rate is a rough measure of how far a run can travel, and it will
# matter when we compare schedules in notebook 03. Try `milestones` like `300, 600` or
# `0, 500`, and give step and exponential decay the same `step_size` and `gamma`: their
# means differ, although they agree at every block boundary.

# %% tags=["illustration"]
from lrcourse.explorer import schedule_explorer

schedule_explorer(
    {"step decay": step_decay, "multistep decay": multistep_decay,
     "exponential decay": exponential_decay, "constant": constant_lr},
    total_steps=1000,
    specs={"step decay": {"step_size": 200}, "exponential decay": {"step_size": 200}},
)

# %% [markdown]
# ## 7. A step drop on a real network
#
# Back to the digits network of notebook 01 (64-128-128-10, SGD with momentum 0.9), now with
# minibatches of 32, which makes the gradient noisier than the 64 of notebook 01. Three runs
# of 300 updates each, from the same initial weights and on the same minibatches:
#
# * **constant 0.1**: large, fast, and by section 2 stuck on a high noise floor;
# * **step**: 0.1, cut by 10 at update 150 (your `multistep_decay` with one milestone);
# * **constant 0.01**: the small learning rate from the start.
#
# We repeat this for several seeds, since a single noisy run proves little. All the runs
# train at once (`lrcourse.train_batched` stacks the copies of the network and gives each its
# own schedule and seed; it returns what `lrcourse.train` would, run by run). The plot shares
# its x axis between the learning rate (top) and the training loss (bottom). The raw
# minibatch loss jumps around too much to read, so each thin line is a run's loss averaged
# over its last 20 updates (`trailing_mean`), and the thick line is the median over the seeds.

# %% nbgrader={"grade_id": "experiment_settings", "locked": true}
LR_HIGH, DROP_AT, TOTAL_STEPS, BATCH = 0.1, 150, 300, 32
SEEDS = [0, 1, 2] if lrcourse.quick_mode() else [0, 1, 2, 3, 4, 5, 6, 7]

# %% tags=["illustration"]
schedules = {
    "constant 0.1": lambda s: constant_lr(s, LR_HIGH),
    "step: 0.1, then 0.01 from update 150": lambda s: multistep_decay(s, LR_HIGH, [DROP_AT], 0.1),
    "constant 0.01": lambda s: constant_lr(s, LR_HIGH / 10),
}
from lrcourse.batched import per_schedule_and_seed
from lrcourse.plots import trailing_mean

data = lrcourse.load_digits(device)
# one run per (schedule, seed), all trained at once
runs = per_schedule_and_seed(lrcourse.train_batched, schedules, SEEDS, TOTAL_STEPS, data=data, batch_size=BATCH,
                             device=device)

fig, (ax_lr, ax_loss) = plt.subplots(2, 1, sharex=True, figsize=(9, 7), gridspec_kw={"height_ratios": [1, 2]})
for (name, histories), color in zip(runs.items(), ("tab:blue", "tab:orange", "tab:green")):
    ax_lr.plot(histories[0].lr, color=color, linewidth=2, label=name)
    curves = np.array([trailing_mean(h.loss, 20) for h in histories])
    for curve in curves:
        ax_loss.plot(curve, color=color, linewidth=0.7, alpha=0.35)
    ax_loss.plot(np.median(curves, axis=0), color=color, linewidth=2.5, label=f"{name} (median of {len(SEEDS)} seeds)")
for ax in (ax_lr, ax_loss):
    ax.axvline(DROP_AT, color="gray", linestyle=":", linewidth=1)
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
ax_lr.set(ylabel="learning rate", title=f"digits MLP, SGD momentum 0.9, batch {BATCH}")
ax_lr.legend(fontsize="small", loc="lower left")
ax_loss.set(xlabel="update (step)", ylabel="training loss (mean of last 20 updates)")
ax_loss.legend(fontsize="small", loc="lower left")
fig.tight_layout()

# %% [markdown]
# The numbers behind the plot: the mean training loss over the 40 updates before the drop
# (110-149), over updates 190-229 (40 to 80 updates after it), and over the last 40 updates.

# %% tags=["illustration"]
def window_mean(history, start, stop):
    return float(np.mean(history.loss[start:stop]))


before, after, end = (DROP_AT - 40, DROP_AT), (DROP_AT + 40, DROP_AT + 80), (TOTAL_STEPS - 40, TOTAL_STEPS)
step_name = list(schedules)[1]
print(f"{'seed':>4} | {'constant 0.1':^22} | {'step':^22} | {'constant 0.01':^22} | step: fall")
print(f"{'':>4} | {'before  after    end':^22} | {'before  after    end':^22} | {'before  after    end':^22} |")
falls, beats_high, beats_low = [], 0, 0
for i, seed in enumerate(SEEDS):
    row = []
    for name in schedules:
        h = runs[name][i]
        row.append(f"{window_mean(h, *before):6.3f} {window_mean(h, *after):6.3f} {window_mean(h, *end):6.3f}")
    h_step = runs[step_name][i]
    fall = window_mean(h_step, *before) / window_mean(h_step, *after)
    falls.append(fall)
    beats_high += window_mean(h_step, *end) < window_mean(runs["constant 0.1"][i], *end)
    beats_low += window_mean(h_step, *end) < window_mean(runs["constant 0.01"][i], *end)
    print(f"{seed:>4} | {row[0]:^22} | {row[1]:^22} | {row[2]:^22} | {fall:5.1f}x")
print(f"\nAt the drop the step run's loss fell by {min(falls):.1f}x to {max(falls):.1f}x (seed by seed).")
for name in schedules:
    ends = [window_mean(h, *end) for h in runs[name]]
    print(f"last 40 updates, {name:<36} {min(ends):.3f} to {max(ends):.3f}, median {np.median(ends):.3f}")
print(f"The step run ended lower than constant 0.1 for {beats_high} of {len(SEEDS)} seeds "
      f"and lower than constant 0.01 for {beats_low} of {len(SEEDS)}.")

# %% [markdown]
# What the plot and the table show (exact numbers change with the seed and the device; these
# are our runs on a CPU, 8 seeds):
#
# * Up to update 150 the two runs at 0.1 are the same run (the orange line hides the blue
#   one). After a fast start their loss improves slowly and jumps up and down, between about
#   0.05 and 0.2 over updates 110-149 depending on the seed. This is the noise floor of
#   section 2, made worse by the occasional spike of a learning rate this large.
# * Right after the learning rate drops, the step run's loss falls, several times lower
#   within 80 updates (4x to 16x), and it stays down: over the last 40 updates it is between
#   0.005 and 0.012, for every seed.
# * The constant 0.1 run keeps jumping. A network is not a parabola with a fixed floor: it can
#   fit 1,437 training images almost exactly, so on some seeds the constant run also gets
#   low, and on others it is still high at the end (0.001 to 0.16 over the last 40 updates;
#   the step run ended lower for 6 of the 8 seeds, and its median is about 4x lower). The
#   step run gets low every time.
# * The constant 0.01 run is smooth but slow: at update 300 (about 0.08) it is still well
#   above where the step run ended, for every seed, because it never had the fast start.
#
# The step schedule gets the fast start of the large learning rate and the low floor of the
# small one. Two questions remain open, and the next notebooks take them up: *when* to drop
# (too early and the run is slow for the rest of the time; too late and the budget is spent
# on the floor), and whether a smooth decay does better than a staircase. Notebook 03
# derives cosine annealing, a decay with no milestones to choose.
#
# ## Summary
#
# * A schedule is a pure function `lr(step)`; `step` counts updates from 0 and update `step`
#   uses `lr(step)`.
# * With noisy gradients SGD settles on a noise floor roughly proportional to the learning
#   rate ($\approx\eta\sigma^2/4$ on a parabola; a floor of $f^\ast$ needs
#   $\eta = 4f^\ast/(\sigma^2 + 2\lambda f^\ast)$). Large rates are fast but stop high; cutting
#   the rate lowers the floor.
# * Step decay: $\text{lr}_{\max}\,\gamma^{\lfloor \text{step}/\text{step\_size}\rfloor}$
#   (`StepLR`). Multistep decay: one factor $\gamma$ per milestone $m \le$ `step`, repeats
#   counted (`MultiStepLR`). Exponential decay spreads each cut over its block: a factor
#   $\gamma^{1/\text{step\_size}}$ per update, $\text{lr}_{\max}\,\gamma^{\text{step}/\text{step\_size}}$
#   (`ExponentialLR` with that factor as its `gamma`).
#
# Next: **03 · Cosine annealing**.
