# %% [markdown]
# # 01 · Why the learning rate matters
#
# Train the same network three times, changing only the learning rate, and you can get
# three different stories: the loss barely moves, the loss falls nicely, or the loss
# explodes. This notebook explains why, first on a problem small enough to solve with pen
# and paper, then on a real network.
#
# **You will**
# 1. derive what gradient descent does on a quadratic, and find the largest stable step;
# 2. see why one learning rate cannot be fast in every direction at once (the condition number);
# 3. find the stable limit when momentum is added, by bisection on a 2x2 matrix, and check
#    it against the algebra and against `torch.optim.SGD`;
# 4. sweep the learning rate of a small network and recognise the same three regimes.
#
# Exercises: `gd_trajectory` (2 points), `max_stable_lr` (1), `best_constant_lr` (2),
# `momentum_matrix` (1), `max_stable_lr_momentum` (2).

# %% nbgrader={"grade_id": "setup", "locked": true}
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

import lrcourse
from lrcourse import plots
from lrcourse.checks import assert_close, assert_true

lrcourse.seed_everything(0)
device = lrcourse.pick_device()
print(f"PyTorch {torch.__version__}, training on: {device}")

# %% [markdown]
# ## 1. Gradient descent on a parabola
#
# Take the simplest loss with a minimum, a parabola in one variable:
#
# $$ f(x) = \tfrac{1}{2}\lambda x^2, \qquad \lambda > 0 . $$
#
# Its minimum is at $x = 0$, its slope is $f'(x) = \lambda x$, and its curvature
# $f''(x) = \lambda$ is the same everywhere: $\lambda$ says how sharply the valley bends.
# One step of gradient descent with learning rate $\eta$ gives
#
# $$ x_{t+1} = x_t - \eta\, f'(x_t) = x_t - \eta \lambda x_t = (1 - \eta\lambda)\, x_t . $$
#
# Every step multiplies the (signed) distance to the minimum by the same **factor**
# $r = 1 - \eta\lambda$, so after $t$ steps
#
# $$ x_t = (1 - \eta\lambda)^t \, x_0 . $$
#
# Everything about this run is decided by $r$:
#
# | learning rate | factor $r = 1-\eta\lambda$ | what happens |
# |---|---|---|
# | $\eta$ tiny | just below 1 | converges, but painfully slowly: it **stalls** |
# | $0 < \eta < 1/\lambda$ | between 0 and 1 | slides monotonically into the minimum |
# | $\eta = 1/\lambda$ | 0 | lands exactly on the minimum in one step |
# | $1/\lambda < \eta < 2/\lambda$ | between $-1$ and 0 | overshoots every step, flips sign, still converges |
# | $\eta = 2/\lambda$ | $-1$ | bounces between $x_0$ and $-x_0$ forever |
# | $\eta > 2/\lambda$ | below $-1$ | every overshoot is larger than the last: **diverges** |
#
# So gradient descent converges exactly when $|1 - \eta\lambda| < 1$, that is when
#
# $$ 0 < \eta < \frac{2}{\lambda} . $$
#
# How slow is "tiny"? For small $\eta\lambda$, $(1-\eta\lambda)^t \approx e^{-\eta\lambda t}$:
# shrinking the distance by a factor $e$ takes about $1/(\eta\lambda)$ steps. With
# $\eta\lambda = 10^{-4}$ that is ten thousand steps for *one* factor of $e$.
#
# Notice the asymmetry: too small costs time, too large costs everything. The limit depends
# on the curvature, so a sharper valley (larger $\lambda$) tolerates only a smaller step.
#
# **Exercise (2 points).** Write `gd_trajectory(x0, lam, lr, steps)` that runs gradient
# descent on $f(x) = \frac{1}{2}\lambda x^2$ by iterating the update above, and returns a
# NumPy array of length `steps + 1` holding $x_0, x_1, \dots, x_{\text{steps}}$ (the
# starting point included).

# %% nbgrader={"grade_id": "gd_trajectory", "solution": true}
def gd_trajectory(x0, lam, lr, steps):
    """x_0 .. x_steps of gradient descent on f(x) = lam * x**2 / 2, as a NumPy array."""
    ### BEGIN SOLUTION
    xs = np.empty(steps + 1, dtype=np.float64)
    xs[0] = x0
    for t in range(steps):
        grad = lam * xs[t]
        xs[t + 1] = xs[t] - lr * grad
    return xs
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_gd_trajectory", "grade": true, "points": 2}
import numpy as np
from lrcourse.checks import Opaque, assert_close, assert_true, call, run_tests


def numpy_array_close(expected, what, hint=""):
    """The result must be a NumPy array (not a list) with these values."""
    def check(result):
        name = result.type_name if isinstance(result, Opaque) else type(result).__name__
        assert_true(isinstance(result, np.ndarray),
                    f"{what} returned a {name}; return a NumPy array (np.array(your_list) converts a list)")
        assert_close(result, expected, what, hint=hint)
    return check


tests = [
    call("gd_trajectory", 1.0, 4.0, 0.1, 3).check(numpy_array_close(
        [1.0, 0.6, 0.36, 0.216], "gd_trajectory(1.0, 4.0, 0.1, 3)",
        hint="the result starts with x0 and has steps + 1 values; each step multiplies by 1 - lr * lam = 0.6")),
    call("gd_trajectory", 2.0, 1.0, 0.5, 2).expect([2.0, 1.0, 0.5], hint="x_{t+1} = x_t - lr * lam * x_t"),
]
### BEGIN HIDDEN TESTS
tests += [
    call("gd_trajectory", -3.0, 2.5, 0.7, 5).expect(
        -3.0 * (1.0 - 0.7 * 2.5) ** np.arange(6),  # factor -0.75: overshoots and converges
        hint="with lr * lam > 1 the factor 1 - lr * lam is negative, so the sign flips every step"),
    call("gd_trajectory", 1.5, 4.0, 0.3, 0).expect(
        [1.5], hint="zero steps: the trajectory is just the starting point, an array of length 1"),
    call("gd_trajectory", 0.7, 3.0, 0.0, 4).expect([0.7] * 5, hint="with lr = 0 nothing moves"),
    call("gd_trajectory", 1.0, 4.0, 0.5, 4).expect([1.0, -1.0, 1.0, -1.0, 1.0],
                                                   hint="at lr = 2 / lam the factor is exactly -1"),
    call("gd_trajectory", 1.0, 4.0, 0.51, 20).expect(1.0 * (1.0 - 0.51 * 4.0) ** np.arange(21),
                                                     hint="above 2 / lam the trajectory grows"),
    call("gd_trajectory", 2, 1, 0.25, 2).expect(  # integer arguments
        [2.0, 1.5, 1.125], hint="use floats for the values, even if x0 and lam are integers"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# Let us look at the regimes for $\lambda = 4$, where the limit is $2/\lambda = 0.5$. On the
# left, learning rates well inside the stable range; on the right, the three cases around
# the limit: $0.49$ (factor $-0.96$), $0.50$ (factor $-1$) and $0.51$ (factor $-1.04$). The
# right panel plots $|x_t|$ on a log scale, where a geometric sequence is a straight line.

# %% tags=["illustration"]
lam = 4.0
fig, (ax_left, ax_right) = plt.subplots(1, 2, figsize=(12, 4))
for lr in (0.01, 0.1, 0.25, 0.4):
    plots.plot_trajectory(gd_trajectory(1.0, lam, lr, 20), ax=ax_left, label=f"lr={lr}  (factor {1 - lr * lam:+.2f})")
ax_left.set_title("inside the stable range ($\\lambda = 4$)")
for lr in (0.49, 0.50, 0.51):
    xs = gd_trajectory(1.0, lam, lr, 60)
    plots.plot_trajectory(np.abs(xs), ax=ax_right, label=f"lr={lr:.2f}  (factor {1 - lr * lam:+.2f})", logy=True)
ax_right.set_ylabel("$|x_t|$ (log scale)")
ax_right.set_title("around the limit $2/\\lambda = 0.5$")
fig.tight_layout()
print("after 60 steps: " + ", ".join(f"lr={lr:.2f}: |x| = {abs(gd_trajectory(1.0, lam, lr, 60)[-1]):.3g}"
                                     for lr in (0.49, 0.50, 0.51)))

# %% [markdown]
# A 4% change of the learning rate, from 0.49 to 0.51 (each 2% from the limit 0.5), turns
# a run that converges into one that is ten times further away after 60 steps than where it
# started. Meanwhile `lr=0.01` (factor 0.96) is still at 0.44 after 20 steps, and
# `lr=0.25` (factor 0) gets there in one.
#
# Feel it with the slider below: it calls **your** `gd_trajectory` and draws the
# prediction $\pm|x_0|\,|1-\eta\lambda|^t$ as dashed lines. Watch what happens as you cross
# 0.25 and 0.5. (The slider needs a running notebook; it is not graded.)

# %% tags=["illustration"]
from lrcourse.widgets import quadratic_explorer

quadratic_explorer(gd_trajectory, lam=4.0, x0=1.0, steps=30)

# %% [markdown]
# ## 2. More than one direction: the sharpest one sets the limit
#
# A real loss has many parameters, and it curves differently in different directions. The
# simplest model of that is a quadratic whose curvatures $\lambda_1, \dots, \lambda_n$ lie
# along the coordinate axes:
#
# $$ f(\mathbf{x}) = \tfrac{1}{2} \sum_{i=1}^n \lambda_i x_i^2 . $$
#
# The gradient's $i$-th entry is $\lambda_i x_i$, so one step of gradient descent updates
# every coordinate on its own, $x_{i,t+1} = (1 - \eta\lambda_i)\,x_{i,t}$: $n$ copies of
# section 1 running side by side **with the same** $\eta$. The run converges only if every
# coordinate does, $|1 - \eta\lambda_i| < 1$ for all $i$, and the tightest of these
# conditions comes from the largest curvature:
#
# $$ \eta < \frac{2}{\lambda_{\max}} . $$
#
# (Any quadratic can be rotated into this form: the $\lambda_i$ are the eigenvalues of its
# Hessian. For a neural network the largest eigenvalue of the Hessian of the loss is called
# the **sharpness**.) If a curvature is zero or negative there is no minimum to converge to
# along that direction, and the question has no answer.
#
# **Exercise (1 point).** Write `max_stable_lr(lambdas)` that returns the largest stable
# learning rate $2/\lambda_{\max}$ for the curvatures in `lambdas` (a list, tuple or NumPy
# array), and raises `ValueError` if any curvature is not strictly positive.

# %% nbgrader={"grade_id": "max_stable_lr", "solution": true}
def max_stable_lr(lambdas):
    """2 / max(lambdas): gradient descent on sum(lam_i * x_i**2) / 2 converges below it."""
    ### BEGIN SOLUTION
    lambdas = np.asarray(lambdas, dtype=np.float64)
    if lambdas.size == 0:
        raise ValueError("max_stable_lr needs at least one curvature")
    if np.any(lambdas <= 0):
        raise ValueError(f"every curvature must be > 0, got {lambdas.tolist()}")
    return 2.0 / float(lambdas.max())
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_max_stable_lr", "grade": true, "points": 1}
import numpy as np
from lrcourse.checks import call, run_tests

tests = [
    call("max_stable_lr", [4.0]).expect(0.5, hint="one direction: the limit is 2 / lam"),
    call("max_stable_lr", [1.0, 4.0, 2.0]).expect(
        0.5, hint="every direction must be stable, and the sharpest one is the hardest"),
    call("max_stable_lr", [1.0, -2.0]).raises(ValueError, hint="a negative curvature has no minimum"),
]
### BEGIN HIDDEN TESTS
tests += [
    call("max_stable_lr", [0.3, 12.5, 7.0]).expect(0.16, hint="2 divided by the largest curvature"),
    call("max_stable_lr", np.array([25.0, 0.5])).expect(
        0.08, hint="it must accept a NumPy array, and the largest curvature may come first"),
    call("max_stable_lr", (8,)).expect(0.25, hint="a tuple with one integer curvature"),
]
tests += [call("max_stable_lr", bad).raises(
    ValueError, hint="a curvature is <= 0: check that every curvature is strictly positive; zero is not allowed either.")
    for bad in ([1.0, 0.0, 3.0], [2.0, -1.0, 5.0], [-4.0])]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# ## 3. The best constant learning rate, and why it is not fast
#
# Staying below $2/\lambda_{\max}$ keeps the run alive; which $\eta$ makes it *fastest*? After
# many steps the distance to the minimum shrinks like $\rho^t$, where $\rho$ is the worst
# factor over all directions:
#
# $$ \rho(\eta) = \max_i\, |1 - \eta\lambda_i| = \max\big(|1 - \eta\lambda_{\min}|,\; |1 - \eta\lambda_{\max}|\big) $$
#
# (as a function of $\lambda$, $|1-\eta\lambda|$ is V-shaped, so its largest value over the
# curvatures sits at one of the two ends). Two forces pull against each other as $\eta$ grows:
#
# * the **flattest** direction wants a *large* step: its factor $1 - \eta\lambda_{\min}$
#   shrinks as $\eta$ grows;
# * the **sharpest** direction wants a *small* one: once $\eta > 1/\lambda_{\max}$ it
#   overshoots, and the size of its factor, $\eta\lambda_{\max} - 1$, grows with $\eta$.
#
# One term falls with $\eta$ and the other rises, so their maximum $\rho(\eta)$ is smallest
# where the two are **equal**: a smaller $\eta$ leaves the flattest direction slower, a
# larger one makes the sharpest direction slower. The best constant learning rate
# $\eta^\star$ equalises the two ends.
#
# **Exercise (2 points).** Solve "the flattest and the sharpest direction shrink by the same
# factor" for $\eta$, and write `best_constant_lr(lambdas)`, which returns that $\eta^\star$
# for the curvatures in `lambdas` (a list, tuple or NumPy array of positive numbers, in any
# order). Only the two ends matter. Check your answer with one curvature: there the best
# step lands on the minimum at once.

# %% nbgrader={"grade_id": "best_constant_lr", "solution": true}
def best_constant_lr(lambdas):
    """The constant LR at which the flattest and the sharpest direction shrink by the same factor."""
    ### BEGIN SOLUTION
    lambdas = np.asarray(lambdas, dtype=np.float64)
    return 2.0 / float(lambdas.min() + lambdas.max())
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_best_constant_lr", "grade": true, "points": 2}
import numpy as np
from lrcourse.checks import assert_close, call, run_tests

tests = [
    call("best_constant_lr", [1.0, 3.0]).expect(
        0.5, hint="at the answer, 1 - lr * lam_min (the flattest factor) equals lr * lam_max - 1 (the sharpest one's "
                  "size): here 1 - lr = 3 * lr - 1"),
    call("best_constant_lr", [2.0]).expect(
        0.5, hint="with one direction the best step lands on the minimum at once: its factor 1 - lr * lam is 0"),
]
### BEGIN HIDDEN TESTS
def balances_the_rates(lams):
    """At the best LR the worst factor max|1 - lr * lam_i| is (kappa - 1) / (kappa + 1)."""
    kappa = max(lams) / min(lams)

    def check(lr_star):
        rate = max(abs(1.0 - lr_star * lam_i) for lam_i in lams)
        assert_close(rate, (kappa - 1) / (kappa + 1),
                     f"the rate max|1 - lr * lam_i| at best_constant_lr({lams})",
                     hint="at the best LR the flattest and the sharpest direction shrink by the same factor "
                          "(kappa-1)/(kappa+1)")
    return check


tests += [
    call("best_constant_lr", [0.5, 9.0, 2.0, 4.0]).expect(
        2.0 / 9.5, hint="only the smallest and the largest curvature matter, not the others"),
    call("best_constant_lr", [9.0, 4.0, 0.5, 2.0]).expect(2.0 / 9.5, hint="the order of the curvatures must not matter"),
    call("best_constant_lr", np.array([10.0, 10.0])).expect(0.1, hint="it must accept a NumPy array"),
    call("best_constant_lr", (5,)).expect(0.2, hint="a single curvature gives 1 / lam"),
    call("best_constant_lr", [0.2, 3.0, 40.0]).check(balances_the_rates([0.2, 3.0, 40.0])),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# Solving $1 - \eta\lambda_{\min} = \eta\lambda_{\max} - 1$ gives
#
# $$ \eta^\star = \frac{2}{\lambda_{\min} + \lambda_{\max}} , $$
#
# and at $\eta^\star$ both ends shrink by the same factor
#
# $$ \rho^\star = 1 - \eta^\star\lambda_{\min} = \frac{\lambda_{\max} - \lambda_{\min}}{\lambda_{\max} + \lambda_{\min}}
# = \frac{\kappa - 1}{\kappa + 1}, \qquad \kappa = \frac{\lambda_{\max}}{\lambda_{\min}} , $$
#
# where $\kappa$ is the **condition number**. For large $\kappa$, $\rho^\star \approx 1 - 2/\kappa$,
# so one factor of $e$ takes about $\kappa/2$ steps *even with the best constant learning
# rate*. A valley 1,000 times sharper across than along needs about 500 steps per factor of
# $e$, and no choice of a single constant $\eta$ can do better: the learning rate has to be
# small for the sharp directions, which leaves it too small for the flat ones. Note also that
# $\eta^\star = \frac{\kappa}{\kappa+1}\cdot\frac{2}{\lambda_{\max}}$: for an ill-conditioned
# problem the best learning rate sits just below the blow-up limit.
#
# The cell below checks the derivation numerically. On the left, the worst factor $\rho(\eta)$
# for curvatures $\{1, 10\}$: a V whose bottom is at your $\eta^\star$. On the right, the
# distance to the minimum when each problem is run with its own best learning rate, using your
# `gd_trajectory` once per coordinate (the coordinates do not interact). The dashed lines,
# the predicted rates $\left(\frac{\kappa-1}{\kappa+1}\right)^t$, lie exactly on top of the
# measured ones.

# %% tags=["illustration"]
fig, (ax_rho, ax_dist) = plt.subplots(1, 2, figsize=(12, 4))
lams = np.array([1.0, 10.0])
etas = np.linspace(0.0, 0.25, 501)
rho = np.max(np.abs(1.0 - etas[:, None] * lams[None, :]), axis=1)
ax_rho.plot(etas, rho, label=r"$\rho(\eta) = \max_i |1 - \eta\lambda_i|$")
ax_rho.axvline(best_constant_lr(lams), color="tab:green", linestyle="--", label=r"$\eta^\star$ (yours)")
ax_rho.axvline(max_stable_lr(lams), color="tab:red", linestyle=":", label=r"$2/\lambda_{\max}$ (yours)")
ax_rho.axhline(1.0, color="gray", linewidth=0.8)
ax_rho.set(xlabel=r"learning rate $\eta$", ylabel="worst factor per step", title=r"curvatures $\{1, 10\}$")
ax_rho.legend(fontsize="small")

steps = 100
for kappa in (10.0, 100.0):
    lams = np.array([1.0, kappa])
    lr = best_constant_lr(lams)
    coords = np.stack([gd_trajectory(1.0, lam_i, lr, steps) for lam_i in lams])  # start at (1, 1)
    distance = np.linalg.norm(coords, axis=0)
    line, = ax_dist.plot(distance, label=rf"$\kappa = {kappa:g}$, $\eta^\star = {lr:.3g}$")
    ax_dist.plot(distance[0] * ((kappa - 1) / (kappa + 1)) ** np.arange(steps + 1), "--", color=line.get_color())
ax_dist.set_yscale("log")
ax_dist.set(xlabel="step $t$", ylabel=r"distance to the minimum $\|x_t\|$", title="best constant LR")
ax_dist.legend(fontsize="small")
fig.tight_layout()

# %% [markdown]
# Ten times worse conditioning, ten times slower, even at the best learning rate. Real
# networks are badly conditioned, and their curvatures change as training moves the weights,
# so no single learning rate is right in every direction, or at every moment of a run.
#
# ## 4. Momentum moves the limit
#
# The optimizer we will train the network with is `torch.optim.SGD` with momentum
# $\beta$ (often 0.9). It keeps a running sum of gradients $v$ and steps along it
# (heavy-ball momentum, Polyak, 1964; PyTorch's form, with $v_0 = 0$):
#
# $$ v_{t+1} = \beta v_t + f'(x_t), \qquad x_{t+1} = x_t - \eta\, v_{t+1} . $$
#
# With momentum, one number no longer describes the state of the run: the next step depends
# on where $x_t$ is *and* on the velocity $v_t$ it carries. On the parabola, $f'(x) = \lambda x$,
# both update rules are linear in the pair $(x_t, v_t)$, so one update multiplies that pair
# by a fixed $2 \times 2$ matrix $M$:
#
# $$ \begin{pmatrix} x_{t+1} \\ v_{t+1} \end{pmatrix} = M \begin{pmatrix} x_t \\ v_t \end{pmatrix},
# \qquad \begin{pmatrix} x_t \\ v_t \end{pmatrix} = M^t \begin{pmatrix} x_0 \\ v_0 \end{pmatrix} . $$
#
# $M$ plays the part of the factor $r$ of plain gradient descent. Its entries follow from the
# two update rules: write $v_{t+1}$ in terms of $x_t$ and $v_t$ (that is the second row),
# then put it into the rule for $x_{t+1}$ (the first row). With $\beta = 0$ you should get
# back $x_{t+1} = (1 - \eta\lambda)\,x_t$.
#
# **Exercise (1 point).** Write `momentum_matrix(lam, beta, lr)`, which returns $M$ as a
# $2 \times 2$ NumPy array of floats, acting on the column $(x_t, v_t)$: row 0 gives
# $x_{t+1}$, row 1 gives $v_{t+1}$.

# %% nbgrader={"grade_id": "momentum_matrix", "solution": true}
def momentum_matrix(lam, beta, lr):
    """The 2x2 matrix M with (x_{t+1}, v_{t+1}) = M @ (x_t, v_t) for heavy-ball momentum on lam * x**2 / 2."""
    ### BEGIN SOLUTION
    # v_{t+1} = lam * x_t + beta * v_t;  x_{t+1} = x_t - lr * v_{t+1} = (1 - lr * lam) x_t - lr * beta * v_t
    return np.array([[1.0 - lr * lam, -lr * beta],
                     [lam, beta]], dtype=np.float64)
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_momentum_matrix", "grade": true, "points": 1}
import numpy as np
from lrcourse.checks import assert_close, call, run_tests


def matches_the_update(lam, beta, lr):
    """M applied to a few states (x, v) gives what one step of the two update rules gives."""
    def check(m):
        m = np.asarray(m, dtype=np.float64)
        assert_close(m.shape, (2, 2), f"the shape of momentum_matrix({lam}, {beta}, {lr})")
        for x, v in [(1.0, 0.0), (0.0, 1.0), (0.5, -2.0)]:
            v_next = beta * v + lam * x
            x_next = x - lr * v_next
            assert_close(m @ np.array([x, v]), [x_next, v_next],
                         f"momentum_matrix({lam}, {beta}, {lr}) @ (x, v) for (x, v) = ({x}, {v})",
                         hint="compute v_{t+1} = beta * v_t + lam * x_t first, then x_{t+1} = x_t - lr * v_{t+1}: "
                              "the coefficient of x_t in each is the first column, of v_t the second")
    return check


tests = [
    call("momentum_matrix", 4.0, 0.0, 0.1).expect(
        [[0.6, 0.0], [4.0, 0.0]],
        hint="with beta = 0, x_{t+1} = (1 - lr * lam) x_t as in section 1, and v_{t+1} is the gradient lam * x_t"),
    call("momentum_matrix", 2.0, 0.5, 0.1).check(matches_the_update(2.0, 0.5, 0.1)),
]
### BEGIN HIDDEN TESTS
tests += [
    call("momentum_matrix", 4.0, 0.9, 0.3).check(matches_the_update(4.0, 0.9, 0.3)),
    call("momentum_matrix", 0.5, 0.99, 2.0).expect(
        [[0.0, -1.98], [0.5, 0.99]], hint="the velocity from v_t reaches x_{t+1} through -lr * beta"),
    call("momentum_matrix", 3, 0, 1).expect([[-2.0, 0.0], [3.0, 0.0]], hint="integer arguments"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# As with $r$, the run converges when $M^t$ shrinks to zero, and that happens exactly when
# both eigenvalues $z$ of $M$ have $|z| < 1$. The largest $|z|$ is the **spectral radius**
# of $M$, `np.abs(np.linalg.eigvals(M)).max()`: it is the factor by which the distance to the
# minimum shrinks per step in the long run, just as $|1 - \eta\lambda|$ was without momentum.
#
# So there is a largest stable learning rate again, and this time we find it by experiment
# on $M$ rather than by algebra. Tiny steps are stable (the spectral radius is just below 1)
# and huge ones blow up; the stable learning rates form one interval $0 < \eta < \eta_{\max}$
# (we check that after the exercise). **Bisection** finds the end of an interval like that:
# keep a learning rate `lo` known to be stable (or 0) and one `hi` known to be unstable,
# look at their midpoint, and replace whichever end has the same verdict. Every look halves
# the interval, so 50 looks pin the limit down to about $10^{-15}$ of `hi`.
#
# **Exercise (2 points).** Write `max_stable_lr_momentum(lam, beta)`, which returns the
# largest stable learning rate of heavy-ball momentum on $\frac{1}{2}\lambda x^2$: the
# boundary where the spectral radius of your `momentum_matrix(lam, beta, lr)` reaches 1,
# found by bisection, to a relative accuracy of $10^{-9}$ or better. You need an unstable
# `hi` to start from: try a guess and double it until it is unstable. Make it work for any
# $\lambda > 0$, from $10^{-3}$ to $10^{3}$, and $0 \le \beta < 1$.

# %% nbgrader={"grade_id": "max_stable_lr_momentum", "solution": true}
def max_stable_lr_momentum(lam, beta):
    """Largest stable LR of SGD with heavy-ball momentum beta on f(x) = lam * x**2 / 2, by bisection."""
    ### BEGIN SOLUTION
    def stable(lr):
        radius = np.abs(np.linalg.eigvals(momentum_matrix(lam, beta, lr))).max()
        return radius < 1.0  # no-mutate: a radius of exactly 1 sits on the limit itself, either side finds it

    lo, hi = 0.0, 1.0 / lam  # no-mutate: any positive first guess works, the loop below doubles it
    while stable(hi):
        lo, hi = hi, 2.0 * hi  # no-mutate: growing by 2 or by 4, the bracket still holds the limit
    while hi - lo > 1e-12 * hi:  # no-mutate: any accuracy well below the tests' 1e-9 will do
        mid = 0.5 * (lo + hi)
        if stable(mid):
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_max_stable_lr_momentum", "grade": true, "points": 2}
import numpy as np
from lrcourse.checks import assert_true, call, run_tests


def brackets_the_limit(lam, beta):
    """Just below the answer the run is stable, just above it is not (measured on the true M)."""
    def radius(lr):
        m = np.array([[1.0 - lr * lam, -lr * beta], [lam, beta]])
        return float(np.abs(np.linalg.eigvals(m)).max())

    def check(lr_max):
        lr_max = float(lr_max)
        below, above = radius(lr_max * (1 - 1e-6)), radius(lr_max * (1 + 1e-6))
        assert_true(below < 1.0 < above,
                    f"max_stable_lr_momentum({lam}, {beta}) returned {lr_max:.6g}, but the spectral radius is "
                    f"{below:.9f} just below it and {above:.9f} just above it: the limit is where it crosses 1. "
                    "Hint: bisect while keeping lo stable and hi unstable")
    return check


tests = [
    call("max_stable_lr_momentum", 4.0, 0.0).expect(
        0.5, rtol=1e-8,
        hint="with beta = 0 this is plain gradient descent: your bisection must find section 1's 2 / lam"),
    call("max_stable_lr_momentum", 4.0, 0.9).check(brackets_the_limit(4.0, 0.9)),
]
### BEGIN HIDDEN TESTS
tests += [
    call("max_stable_lr_momentum", 2.5, 0.5).expect(1.2, rtol=1e-8, hint="the closed form is 2 * (1 + beta) / lam"),
    call("max_stable_lr_momentum", 10.0, 0.99).expect(0.398, rtol=1e-8, hint="the closed form is 2 * (1 + beta) / lam"),
    call("max_stable_lr_momentum", 0.8, 0.0).expect(
        2.5, rtol=1e-8, hint="beta = 0 must give the plain gradient descent limit 2 / lam"),
    call("max_stable_lr_momentum", 1000.0, 0.9).expect(
        0.0038, rtol=1e-8,
        hint="a sharp curvature: the limit is small, so the accuracy must be relative, not absolute"),
    call("max_stable_lr_momentum", 0.001, 0.9).expect(
        3800.0, rtol=1e-8, hint="a flat curvature: the limit is large, so keep doubling hi until it is unstable"),
    call("max_stable_lr_momentum", 7.0, 0.6).check(brackets_the_limit(7.0, 0.6)),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# Your bisection found the limit; algebra explains it. The eigenvalues of $M$ solve
# $\det(M - zI) = 0$:
#
# $$ p(z) = z^2 - (1 + \beta - \eta\lambda)\, z + \beta = 0 . $$
#
# The product of the two roots is $\beta < 1$. If they are complex they have equal size
# $\sqrt\beta < 1$, so the run converges (spiralling in). If they are real, one can leave
# the unit interval only through $+1$ or $-1$. At $z = 1$, $p(1) = \eta\lambda > 0$, so no
# root ever sits at $+1$. At $z = -1$, $p(-1) = 2(1 + \beta) - \eta\lambda$, which reaches zero
# when $\eta\lambda = 2(1+\beta)$. Past that point a root is below $-1$ and the run diverges with
# growing, sign-flipping oscillations, just like plain gradient descent above $2/\lambda$.
# So heavy-ball momentum is stable for
#
# $$ 0 < \eta < \frac{2(1 + \beta)}{\lambda} , $$
#
# which is $2/\lambda$ again when $\beta = 0$; and the stable learning rates are indeed one
# interval, as the bisection assumed. The cell below compares your bisection with this
# closed form. Momentum raises the limit on $\eta$ by a factor $1 + \beta$, less than 2,
# although on a long gentle slope it moves $1/(1-\beta)$ times further per step (10 times
# for $\beta = 0.9$) than plain gradient descent with the same $\eta$.

# %% tags=["illustration"]
for lam_, beta_ in [(4.0, 0.0), (4.0, 0.5), (4.0, 0.9), (4.0, 0.99), (0.01, 0.9), (250.0, 0.9)]:
    found, closed = max_stable_lr_momentum(lam_, beta_), 2 * (1 + beta_) / lam_
    print(f"lambda = {lam_:<6g} beta = {beta_:<5g} bisection {found:.10g}   2(1 + beta)/lambda = {closed:.10g}   "
          f"relative difference {abs(found - closed) / closed:.1e}")

# %% [markdown]
# Now let PyTorch check the algebra. The cell below runs the real `torch.optim.SGD` with
# `momentum=0.9` on $f(x) = 2x^2$ ($\lambda = 4$), 2% below and 2% above your limit. Note that
# both learning rates are far above the plain gradient descent limit of 0.5.

# %% tags=["illustration"]
def sgd_on_parabola(lam, lr, momentum, steps=200, x0=1.0):
    """|x_t| for torch.optim.SGD on f(x) = lam * x**2 / 2."""
    x = torch.tensor([x0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([x], lr=lr, momentum=momentum)
    xs = [abs(x0)]
    for _ in range(steps):
        opt.zero_grad()
        loss = 0.5 * lam * (x ** 2).sum()
        loss.backward()
        opt.step()
        xs.append(abs(x.item()))
    return np.array(xs)


lam, beta = 4.0, 0.9
limit = max_stable_lr_momentum(lam, beta)
fig, ax = plt.subplots(figsize=(7, 4))
for scale in (0.98, 1.02):
    xs = sgd_on_parabola(lam, scale * limit, beta)
    plots.plot_trajectory(xs, ax=ax, label=f"lr = {scale:.2f} x limit = {scale * limit:.3f}", logy=True)
    print(f"lr = {scale * limit:.4f}: |x| after 200 steps = {xs[-1]:.3g}")
ax.set_ylabel("$|x_t|$ (log scale)")
ax.set_title(f"torch.optim.SGD, momentum {beta}, $\\lambda$ = {lam:g}: limit {limit:.3g}")
fig.tight_layout()

# %% [markdown]
# ## 5. The same three regimes on a real network
#
# Now a real model: the 64-128-128-10 ReLU network of `lrcourse`, classifying the 8x8
# handwritten digits (1,437 training images), trained with SGD, momentum 0.9 and minibatches
# of 64 for 300 steps. We sweep six constant learning rates, each run starting from the same
# initial weights and seeing the same minibatches, so the learning rate is the only
# difference. (`lr_sweep_batched` trains the six copies at once, as one batched network: each
# gets the losses `lrcourse.train` would give it, in a second or two on a laptop CPU.) The left plot draws
# losses above $10^3$ at the top edge, so that one exploding run does not squash the others;
# the legend gives its peak.

# %% tags=["illustration"]
from lrcourse.batched import lr_sweep_batched

lrs = [1e-4, 1e-3, 1e-2, 0.1, 0.5, 3.0]
sweep = lr_sweep_batched(lrs, total_steps=300, seed=0, device=device, progress=False)
for lr, history in sweep.items():
    finite = [v for v in history.loss if math.isfinite(v)]
    status = f"diverged (inf/NaN) at step {len(history.loss) - 1}" if history.diverged else ""
    print(f"lr={lr:<7g} first loss {history.loss[0]:.3f}   final loss {history.final_loss():9.3g}"
          f"   largest loss {max(finite):9.3g}   {status}")

fig, (ax_curves, ax_final) = plt.subplots(1, 2, figsize=(13, 4.5))
plots.plot_loss_curves(sweep, ax=ax_curves, title="training loss, SGD with momentum 0.9", clip=1e3)
plots.plot_final_loss_vs_lr(sweep, ax=ax_final, chance_loss=math.log(10),
                            title="final loss (mean of the last 20 steps)")
fig.tight_layout()

# %% [markdown]
# All three regimes of the parabola are there (exact numbers change a little with the seed
# and the device; the regimes do not):
#
# * **Too small: stall** (`1e-4`, `1e-3`). Every step changes the weights a tiny amount, the
#   factor $1-\eta\lambda$ is close to 1 in every direction, and 300 steps are not enough: at
#   `1e-4` the loss has hardly left its starting value $\approx 2.3$. Nothing is wrong with
#   the run except its length: while steps are this small, progress depends roughly on
#   $\eta \times$ steps, so `1e-4` would need about 100 times more steps to get where `1e-2` got.
# * **About right** (`1e-2`, `0.1`). The loss falls by orders of magnitude; `0.1` is the best
#   of the sweep, fitting the training set almost perfectly.
# * **Too large: blow-up** (`0.5`, `3.0`). The loss shoots up, as $|x_t|$ did above
#   $2/\lambda$. At `3.0` it reaches about $10^{21}$ within a few steps and can overflow to
#   inf or NaN; `lrcourse.train` then stops the run and sets `History.diverged`. At `0.5` the
#   loss first falls, then spikes, then settles at about $2.30 = \ln 10$ (the dashed line on
#   the right): the loss of a network that gives every image the same prediction. That
#   plateau is not a recovery. The cell below shows what happened to the network.
#
# Between the good and the bad regime lies a threshold (here somewhere between 0.1 and 0.5).
# The parabola tells us that such a threshold must exist and what it depends on: with
# momentum, the run is stable while $\eta < 2(1+\beta)/\lambda_{\max}$, where
# $\lambda_{\max}$ is the sharpness of the loss, the largest curvature the optimizer meets.
# But for a network $\lambda_{\max}$ is not a constant you can look up: it changes as the
# weights move (under full-batch gradient descent it tends to rise until it hovers near
# $2/\eta$, the "edge of stability", Cohen et al., 2021, arXiv:2103.00065), every minibatch
# has a loss surface of its own, and far from a minimum the quadratic picture only holds
# locally. So in practice the threshold is **found by experiment**, with a sweep like this
# one. Here, as with $\eta^\star$ on the quadratic, the best learning rate of the sweep sits
# not far below it.

# %% tags=["illustration"]
data = lrcourse.load_digits(device)


def train_and_keep_model(lr, seed=0):
    """Train like the sweep does, and also return the trained network."""
    models = []

    def make_model():
        models.append(lrcourse.DigitsMLP())
        return models[-1]

    history = lrcourse.train(lr, 300, data=data, model_fn=make_model, seed=seed, device=device)
    return history, models[0]


for lr in (0.1, 0.5):
    history, model = train_and_keep_model(lr)
    with torch.no_grad():
        hidden1 = torch.relu(model.net[0](data.x_train))
        hidden2 = torch.relu(model.net[2](hidden1))
        logits = model(data.x_train)
    dead = (hidden2.max(dim=0).values == 0).float().mean().item()
    spread = logits.std(dim=0).mean().item()
    print(f"lr={lr}: {dead:.0%} of the second layer's ReLUs output 0 for every training image; "
          f"spread of the outputs across images: {spread:.3g}")

# %% [markdown]
# After the blow-up at `0.5` every unit of the second hidden layer outputs zero for every
# image: the huge early updates pushed their inputs to negative values everywhere, where a
# ReLU is flat and passes no gradient, so no later step can revive them. The output is the
# same for every image, and the best such network predicts the class frequencies, a loss of
# about $\ln 10$. A blown-up run does not always end in inf or NaN; often it ends in a quietly
# dead network, which is harder to notice.
#
# ## Summary
#
# * On a quadratic, each step multiplies the error along a direction of curvature $\lambda$
#   by $1 - \eta\lambda$. Gradient descent converges iff $0 < \eta < 2/\lambda_{\max}$,
#   oscillates forever at the limit and diverges above it; a tiny $\eta$ converges too slowly
#   to be useful.
# * The best constant learning rate, $2/(\lambda_{\min}+\lambda_{\max})$, still shrinks the error
#   only by $(\kappa-1)/(\kappa+1)$ per step: the condition number limits any constant LR.
# * Heavy-ball momentum $\beta$ moves the limit to $2(1+\beta)/\lambda_{\max}$.
# * A real network shows the same three regimes: stall, train, blow up. Its threshold cannot
#   be computed in advance, so it is found by a sweep, and a blown-up run may end quietly dead
#   rather than in NaN.
#
# A constant learning rate is a compromise between the sharp and the flat directions and
# between the start of a run and its end. Next, **02 · Constant and step schedules**: let the
# learning rate change during training.
