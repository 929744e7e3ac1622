# %% [markdown]
# # 05 · Batch size and the learning rate
#
# Every learning rate in notebooks 01-04 was tuned for one batch size. Change the batch size
# (a bigger GPU, more GPUs, a smaller model that suddenly fits more examples) and the
# learning rate that was right is no longer right. There are two well-known rules for
# moving it: multiply it by the same factor as the batch (the **linear** rule), or by the
# square root of that factor (the **square-root** rule). This notebook derives both, shows
# which optimizer each belongs to, finds out why and where the linear rule stops working,
# and measures all of it on the digits network.
#
# **You will**
# 1. derive the linear scaling rule from a first-order expansion: $k$ small steps are about
#    one step $k$ times larger on $k$ times more data;
# 2. derive the square-root rule from the noise of an update, and see why it is the rule for Adam;
# 3. derive the best learning rate as a function of the batch size from a noisy quadratic,
#    and meet the **gradient noise scale**, the batch size where the linear rule runs out;
# 4. estimate the gradient noise scale from gradients measured at two batch sizes, and from
#    per-example gradients, on a problem where the exact answer is known;
# 5. measure the best learning rate of the digits network across batch sizes from 8 to 1,024
#    on a fixed budget of examples, and compare it with the rules' predictions.
#
# Exercises: `linear_scaled_lr` (1 point), `sqrt_scaled_lr` (1), `noise_scale_lr` (1),
# `noise_scale_two_batch` (2), `noise_scale_per_example` (2).

# %% nbgrader={"grade_id": "setup", "locked": true}
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

import lrcourse
from lrcourse.batched import train_batched
from lrcourse.checks import assert_close, assert_true

lrcourse.seed_everything(0)
device = lrcourse.pick_device()
print(f"PyTorch {torch.__version__}, training on: {device}")
if lrcourse.quick_mode():
    print("Quick mode: the experiment uses fewer batch sizes, learning rates and seeds (grading or CI).")

# %% [markdown]
# ## 1. $k$ small steps or one big one: the linear scaling rule
#
# Write $\ell(w; x)$ for the loss of one example $x$, $G(w)$ for the gradient of the average
# loss over the data (the *true* gradient), and
#
# $$ g_B(w) = \frac{1}{B}\sum_{i=1}^{B} \nabla \ell(w; x_i) $$
#
# for the gradient of a minibatch of $B$ examples. It is right on average,
# $\mathbb{E}[g_B] = G$, and its noise shrinks with the batch: if $\Sigma$ is the covariance
# of a single example's gradient, the covariance of $g_B$ is $\Sigma / B$.
#
# Now take $k$ steps of SGD with learning rate $\eta$ on $k$ different batches of $B$
# examples, $w_{j+1} = w_j - \eta\, g_j(w_j)$ for $j = 0, \dots, k-1$, where $g_j$ is the
# gradient on batch $j$. Adding them up,
#
# $$ w_k = w_0 - \eta \sum_{j=0}^{k-1} g_j(w_j) . $$
#
# Each gradient is taken at a slightly different point. Expand it around the start to first
# order, $g_j(w_j) \approx g_j(w_0) + H_j\,(w_j - w_0)$, where $H_j$ is the Hessian of batch
# $j$'s loss, and use $w_j - w_0 \approx -\eta \sum_{i<j} g_i(w_0)$:
#
# $$ w_k \approx w_0 - k\eta \, \underbrace{\frac{1}{k}\sum_{j=0}^{k-1} g_j(w_0)}_{g_{kB}(w_0)}
#  \;+\; \eta^2 \sum_{j=0}^{k-1} \sum_{i<j} H_j\, g_i(w_0) . $$
#
# The average of $k$ gradients of $B$ examples each is exactly the gradient of one batch of
# $kB$ examples, all taken at $w_0$. So, up to the last term, **$k$ steps with learning rate
# $\eta$ on batches of $B$ are one step with learning rate $k\eta$ on a batch of $kB$.** The
# two land at the same place and have used the same examples; the big-batch run took $k$
# times fewer steps, which on $k$ times more hardware is $k$ times less time.
#
# The same bookkeeping works for the noise. The $k$ small steps move by $k\eta G$ on average,
# with covariance $k \cdot \eta^2 \Sigma / B$ (independent batches add up their variances);
# the big step moves by $k\eta\,G$, with covariance $(k\eta)^2 \Sigma / (kB) = k \eta^2 \Sigma / B$.
# Mean and noise both match. This is the **linear scaling rule**: when the batch grows $k$
# times, multiply the learning rate by $k$.
#
# When is the last term small? It holds $k(k-1)/2$ products of a Hessian and a gradient, about
# $\frac{1}{2}(k\eta)^2 \lambda\,|g|$ in size for a curvature $\lambda$, next to a step of size
# $k\eta\,|g|$: the error relative to the step is about $\frac{1}{2}k\eta\lambda$. So the
# rule holds while the big step $k\eta$ is small compared with $1/\lambda$, that is, while
# the gradient barely changes over the distance the $k$ small steps travel. Two ways for that
# to fail follow directly:
#
# * **The big step reaches the stability limit.** Notebook 01 showed that no step larger
#   than $2(1+\beta)/\lambda_{\max}$ is stable, whatever the gradient. $k$ small steps of
#   $\eta$ can be fine where one step of $k\eta$ blows up, so the linear rule has to stop
#   somewhere.
# * **The gradient changes fast.** At the start of training the loss falls steeply and the
#   gradient turns quickly; that is where a large learning rate hurts most. This is one
#   reason for the warmup of notebook 04.
#
# (With momentum, as in `torch.optim.SGD`, the same argument applies to the momentum-averaged
# step, and the rule is used the same way.)
#
# Goyal et al. (2017, arXiv:1706.02677, "Accurate, Large Minibatch SGD: Training ImageNet in
# 1 Hour") made the rule work at scale: ResNet-50 on ImageNet with SGD and momentum,
# `lr = 0.1 * B / 256`, and a gradual warmup over the first 5 epochs, reached 23.74% top-1
# error with batches of 8k images, against 23.60% with batches of 256: the same model in 32
# times fewer steps. Beyond 8k the error grew: the rule broke down.
#
# **Exercise (1 point).** Write `linear_scaled_lr(base_lr, base_batch, batch)`: the learning
# rate for batches of `batch` examples, given that `base_lr` is right for batches of
# `base_batch`, by the linear rule.

# %% nbgrader={"grade_id": "linear_scaled_lr", "solution": true}
def linear_scaled_lr(base_lr, base_batch, batch):
    """The linear scaling rule: base_lr * batch / base_batch."""
    ### BEGIN SOLUTION
    return base_lr * batch / base_batch
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_linear_scaled_lr", "grade": true, "points": 1}
from lrcourse.checks import call, run_tests

tests = [
    call("linear_scaled_lr", 0.1, 256, 512).expect(0.2, hint="twice the batch, twice the learning rate"),
    call("linear_scaled_lr", 0.1, 256, 8192).expect(
        3.2, hint="Goyal et al.'s ResNet-50 at batch 8k: 0.1 * 8192 / 256"),
]
### BEGIN HIDDEN TESTS
tests += [
    call("linear_scaled_lr", 0.0025, 8, 1024).expect(0.32, hint="base_lr * batch / base_batch"),
    call("linear_scaled_lr", 0.37, 64, 64).expect(0.37, hint="the same batch size keeps the same learning rate"),
    call("linear_scaled_lr", 0.2, 128, 32).expect(
        0.05, hint="a smaller batch scales the learning rate down by the same factor"),
    call("linear_scaled_lr", 0.3, 100, 150).expect(
        0.45, hint="the factor batch / base_batch need not be a whole number"),
    call("linear_scaled_lr", 1, 3, 2).expect(2 / 3, hint="use true division, not //"),  # integer arguments
    call("linear_scaled_lr", 0.1, 256, 2**20).expect(
        409.6, hint="the rule itself has no ceiling: base_lr * batch / base_batch"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# The first-order argument can be checked directly. The cell below takes a least-squares
# problem (defined properly in section 4), starts at a point away from its minimum, and
# compares $k = 8$ SGD steps with learning rate $\eta$ on 8 batches of 16 examples with one
# step of `linear_scaled_lr(eta, 16, 128)` on the same 128 examples together. Its curvature
# is about $\lambda = 1$ in every direction, so the relative gap should be about
# $\frac{1}{2}k\eta$ while that is small, and the big step should fail once $k\eta$ passes
# $2/\lambda = 2$.

# %%
rng = np.random.default_rng(0)
d, k, small = 10, 8, 16
x_demo = rng.standard_normal((k * small, d))
y_demo = x_demo @ np.ones(d) + 0.5 * rng.standard_normal(k * small)  # w* = (1, ..., 1)
w_start = np.zeros(d)


def batch_grad(w, x, y):
    return x.T @ (x @ w - y) / len(y)


for eta in (0.002, 0.01, 0.05, 0.2, 0.3):
    w_small = w_start.copy()
    for j in range(k):
        rows = slice(j * small, (j + 1) * small)
        w_small = w_small - eta * batch_grad(w_small, x_demo[rows], y_demo[rows])
    w_big = w_start - linear_scaled_lr(eta, small, k * small) * batch_grad(w_start, x_demo, y_demo)
    gap = np.linalg.norm(w_big - w_small) / np.linalg.norm(w_small - w_start)
    dist_small, dist_big = np.linalg.norm(w_small - 1.0), np.linalg.norm(w_big - 1.0)
    print(f"k*eta = {k * eta:<5.3g} relative gap {gap:6.3f} (k*eta/2 = {k * eta / 2:5.3f})   distance to w*: {dist_small:5.2f} after 8 small steps, "
          f"{dist_big:5.2f} after 1 big step (started at {np.linalg.norm(w_start - 1.0):.2f})")

# %% [markdown]
# For small $k\eta$ the two end points nearly coincide, and the gap grows in proportion to
# $k\eta$, close to the predicted $\frac{1}{2}k\eta$ (about 1%, 4% and 20%). At $k\eta = 1.6$ the single step lands far from where the
# eight small ones went, and at $2.4$ it overshoots so much that it ends further from the
# minimum than it started, while the eight small steps, each well inside the stable range,
# still approach it.
#
# ## 2. Keep the noise constant: the square-root rule
#
# There is another way to choose the learning rate of the bigger batch. The noise in one
# update is $\eta\,(g_B - G)$, with covariance $\eta^2 \Sigma / B$. To keep *that* fixed
# when the batch grows $k$ times, the learning rate has to grow by $\sqrt{k}$:
# $(\sqrt{k}\,\eta)^2\, \Sigma / (kB) = \eta^2 \Sigma / B$. This is the **square-root rule**,
# the variance argument that Krizhevsky (2014, arXiv:1404.5997) gave for it.
#
# For plain SGD the square-root rule keeps the wrong thing fixed. Over the same examples,
# $k$ small steps move by $k\eta G$ on average, and one big step with $\sqrt{k}\,\eta$ moves by
# only $\sqrt{k}\,\eta\, G$: the big-batch run travels $\sqrt{k}$ times less for the same data.
# With SGD, the square-root rule falls further behind with every doubling (section 5 shows it).
#
# **Adam is different.** Adam divides each gradient entry by the square root of its running
# mean square, $\sqrt{v}$. When the minibatch noise dominates the gradient (the usual case
# in the middle of training), $\sqrt{v}$ is about the noise level, $\sigma/\sqrt{B}$ for a
# per-example standard deviation $\sigma$. The update is then about
# $\eta\, g_B \sqrt{B}/\sigma$: a signal of $\eta\sqrt{B}\,G/\sigma$ and a noise of size
# about $\eta$, whatever the batch. Redo the bookkeeping of section 1 with this update.
# $k$ small steps: signal $k\eta\sqrt{B}\,G/\sigma$, noise variance $k\eta^2$. One step with
# batch $kB$ and learning rate $\eta'$: signal $\eta'\sqrt{kB}\,G/\sigma$, noise variance
# $\eta'^2$. Both match for
#
# $$ \eta' = \sqrt{k}\;\eta . $$
#
# For Adam the square-root rule is what the linear rule is for SGD. Malladi et al. (2022,
# arXiv:2205.10287) derived it properly from stochastic differential equations that
# approximate RMSprop and Adam (the full rule also adjusts Adam's other hyperparameters a
# little), and confirmed it on vision and language models. In the measurements behind this
# course, Adam on a small transformer was already worse with the linear rule than with the
# square-root rule at batches of 32-128.
#
# **Exercise (1 point).** Write `sqrt_scaled_lr(base_lr, base_batch, batch)`, the square-root
# rule: `base_lr` times the square root of `batch / base_batch`.

# %% nbgrader={"grade_id": "sqrt_scaled_lr", "solution": true}
def sqrt_scaled_lr(base_lr, base_batch, batch):
    """The square-root scaling rule: base_lr * sqrt(batch / base_batch)."""
    ### BEGIN SOLUTION
    return base_lr * math.sqrt(batch / base_batch)
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_sqrt_scaled_lr", "grade": true, "points": 1}
import math

from lrcourse.checks import assert_close, call, run_tests

tests = [
    call("sqrt_scaled_lr", 0.001, 32, 128).expect(0.002, hint="four times the batch, twice the learning rate"),
    call("sqrt_scaled_lr", 0.001, 32, 32).expect(0.001, hint="the same batch size keeps the same learning rate"),
]
### BEGIN HIDDEN TESTS
def keeps_update_variance(lr):
    """sqrt_scaled_lr(0.02, 16, 64): lr**2 / batch must equal base_lr**2 / base_batch."""
    assert_close(lr ** 2 / 64, 0.02 ** 2 / 16, "sqrt_scaled_lr(0.02, 16, 64)**2 / 64",
                 hint="the rule keeps lr**2 / batch, the variance of an update, fixed")


tests += [
    call("sqrt_scaled_lr", 0.003, 64, 16).expect(0.0015, hint="a batch four times smaller halves the learning rate"),
    call("sqrt_scaled_lr", 0.01, 100, 300).expect(
        0.01 * math.sqrt(3), hint="base_lr * sqrt(batch / base_batch); the factor need not be a whole number"),
    call("sqrt_scaled_lr", 2, 9, 4).expect(  # integer arguments
        4 / 3, hint="use true division inside the square root, not //"),
    call("sqrt_scaled_lr", 1e-3, 8, 8 * 10**6).expect(
        1.0, hint="a million times the batch: a thousand times the learning rate"),
    call("sqrt_scaled_lr", 0.02, 16, 64).check(keeps_update_variance),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# ## 3. How big can a useful step get? The gradient noise scale
#
# The linear rule says nothing about where it stops. McCandlish et al. (2018,
# arXiv:1812.06162, "An Empirical Model of Large-Batch Training") answered that with a
# one-step calculation worth doing yourself. Near the current weights, model the loss as a
# quadratic with gradient $G$ and Hessian $H$. One SGD step with the minibatch gradient $g$
# changes the loss by
#
# $$ L(w - \eta g) - L(w) \approx -\eta\, G^\top g + \tfrac{1}{2}\eta^2\, g^\top H g . $$
#
# Average over the minibatch, using $\mathbb{E}[g] = G$ and
# $\mathbb{E}[g g^\top] = G G^\top + \Sigma/B$:
#
# $$ \mathbb{E}[\Delta L] \approx -\eta\,|G|^2 + \tfrac{1}{2}\eta^2 \Big( G^\top H G + \frac{\operatorname{tr}(H\Sigma)}{B} \Big) . $$
#
# A parabola in $\eta$: the first term rewards a big step, the second punishes it, and the
# noise makes the punishment larger for a small batch. Setting the derivative to zero gives
# the best learning rate,
#
# $$ \eta_{\text{best}}(B) = \frac{|G|^2}{G^\top H G + \operatorname{tr}(H\Sigma)/B}
#  = \frac{\eta_{\max}}{1 + B_{\text{noise}}/B},
#  \qquad \eta_{\max} = \frac{|G|^2}{G^\top H G},\quad B_{\text{noise}} = \frac{\operatorname{tr}(H\Sigma)}{G^\top H G} , $$
#
# and the loss it removes per step is $\Delta L_{\max} / (1 + B_{\text{noise}}/B)$, with
# $\Delta L_{\max} = |G|^4 / (2\,G^\top H G)$. Read it in three regimes:
#
# * **$B \ll B_{\text{noise}}$**: $\eta_{\text{best}} \approx \eta_{\max}\, B / B_{\text{noise}}$,
#   proportional to $B$. That is the linear rule, and doubling the batch doubles the progress
#   per step: **perfect scaling**.
# * **$B \approx B_{\text{noise}}$**: doubling the batch still helps, but less than twice:
#   **diminishing returns**.
# * **$B \gg B_{\text{noise}}$**: $\eta_{\text{best}} \to \eta_{\max}$ and the progress per step
#   stops growing. The batch gradient is already almost exact; more examples do not make the
#   step any better, and $\eta_{\max}$ is a limit set by the curvature, like the stability
#   limit of notebook 01. **No more returns.**
#
# Shallue et al. (2018, arXiv:1811.03600) measured the steps needed to reach a target as a
# function of the batch size on many models and data sets and found exactly these three
# regimes, with the place of the bend depending on the model and the data.
#
# If the Hessian is close to a multiple of the identity, $H$ cancels out and the noise scale
# needs gradients only:
#
# $$ B_{\text{simple}} = \frac{\operatorname{tr}(\Sigma)}{|G|^2} . $$
#
# It compares the total variance of one example's gradient with the squared length of the true
# gradient: $B_{\text{simple}}$ is the batch size at which the minibatch noise,
# $\operatorname{tr}(\Sigma)/B$, is as large as the signal $|G|^2$. McCandlish et al. found
# that it predicts the batch size where the returns start to diminish (the *critical* batch
# size) across very different tasks, and that it grows during training, as $|G|$ shrinks.
#
# **Exercise (1 point).** Write `noise_scale_lr(lr_max, b_noise, batch)`, the best learning
# rate `lr_max / (1 + b_noise / batch)` of the model above.

# %% nbgrader={"grade_id": "noise_scale_lr", "solution": true}
def noise_scale_lr(lr_max, b_noise, batch):
    """The best learning rate of the noisy quadratic model: lr_max / (1 + b_noise / batch)."""
    ### BEGIN SOLUTION
    return lr_max / (1 + b_noise / batch)
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_noise_scale_lr", "grade": true, "points": 1}
from lrcourse.checks import assert_close, call, code, run_tests

tests = [
    call("noise_scale_lr", 1.0, 100, 100).expect(0.5, hint="at batch = b_noise the best LR is half of lr_max"),
    call("noise_scale_lr", 0.4, 300, 100).expect(0.1, hint="lr_max / (1 + b_noise / batch) = 0.4 / 4"),
]
### BEGIN HIDDEN TESTS
def grows_linearly(pair):
    """(noise_scale_lr(0.7, 1e6, 20), noise_scale_lr(0.7, 1e6, 10)): their ratio must be about 2."""
    big, small = pair
    assert_close(big / small, 2.0, "noise_scale_lr(0.7, 1e6, 20) / noise_scale_lr(0.7, 1e6, 10)", rtol=1e-4,
                 hint="far below b_noise the best LR grows linearly with the batch")


tests += [
    call("noise_scale_lr", 0.6, 0, 64).expect(0.6, hint="without gradient noise every batch size can use lr_max"),
    call("noise_scale_lr", 0.8, 4900, 64).expect(
        0.8 / (1 + 4900 / 64), hint="lr_max / (1 + b_noise / batch), with true division"),
    call("noise_scale_lr", 0.3, 64, 1024).expect(
        0.3 / (1 + 1 / 16), hint="a batch much larger than b_noise gets close to lr_max"),
    call("noise_scale_lr", 0.5, 250, 10**12).expect(
        0.5, rtol=1e-8, hint="for a huge batch the best LR tends to lr_max, not beyond"),
    call("noise_scale_lr", 2, 3, 2).expect(0.8, hint="2 / (1 + 3 / 2), with true division"),  # integer arguments
    code("noise_scale_lr(0.7, 1e6, 20), noise_scale_lr(0.7, 1e6, 10)",
         "noise_scale_lr(0.7, 1e6, 20) and noise_scale_lr(0.7, 1e6, 10)").check(grows_linearly),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# The three rules side by side, all starting from the same learning rate at a batch of 8.
# For the noise-scale curve we take $B_{\text{noise}} = 256$ and pick $\eta_{\max}$ so that
# it passes through the same point; the linear rule is its tangent for small batches.

# %%
batches = np.geomspace(8, 8192, 60)
base_lr, base_batch, b_noise = 0.02, 8, 256
lr_max = base_lr * (1 + b_noise / base_batch)  # noise_scale_lr(lr_max, b_noise, 8) = base_lr
fig, ax = plt.subplots(figsize=(7, 4.5))
ax.plot(batches, [linear_scaled_lr(base_lr, base_batch, b) for b in batches], label="linear rule (yours)")
ax.plot(batches, [sqrt_scaled_lr(base_lr, base_batch, b) for b in batches], label="square-root rule (yours)")
ax.plot(batches, [noise_scale_lr(lr_max, b_noise, b) for b in batches], linewidth=2.5,
        label=f"$\\eta_{{\\max}}/(1 + B_{{noise}}/B)$, $B_{{noise}}$ = {b_noise} (yours)")
ax.axvline(b_noise, color="gray", linestyle=":", linewidth=1)
ax.axhline(lr_max, color="gray", linestyle="--", linewidth=1, label=f"$\\eta_{{\\max}}$ = {lr_max:.2f}")
ax.set(xscale="log", yscale="log", xlabel="batch size $B$", ylabel="learning rate",
       title="three answers to \"which LR for this batch?\"")
ax.legend(fontsize="small")
ax.grid(True, which="major", alpha=0.3)
fig.tight_layout()

# %% [markdown]
# On a log-log plot the linear rule is a line of slope 1 and the square-root rule a line of
# slope 1/2. The noise-scale curve follows the linear rule well below $B_{\text{noise}}$,
# bends around it, and flattens at $\eta_{\max}$: at $B = B_{\text{noise}}$ it is already
# half of what the linear rule asks for, and at $8\,B_{\text{noise}}$ the linear rule asks
# for nearly nine times more than is useful.
#
# ## 4. Measuring the gradient noise scale
#
# $B_{\text{simple}}$ needs $|G|^2$ and $\operatorname{tr}(\Sigma)$, and we never see $G$,
# only minibatch gradients. But their squared length tells us both. The minibatch gradient
# is $G$ plus a noise $e$ with mean zero and covariance $\Sigma/B$, so
#
# $$ \mathbb{E}\,|g_B|^2 = |G|^2 + 2\,G^\top \mathbb{E}[e] + \mathbb{E}\,|e|^2
#  = |G|^2 + \frac{\operatorname{tr}(\Sigma)}{B} . $$
#
# (A vector's expected squared length is the sum of its entries' variances: the trace.)
# Two unknowns, so measure at two batch sizes, $B_{\text{small}} < B_{\text{big}}$, and solve
# the two equations. Multiplying each by its $B$ and subtracting removes the trace;
# subtracting them as they are removes $|G|^2$:
#
# $$ |G|^2 \approx \frac{B_{\text{big}}\,|g_{\text{big}}|^2 - B_{\text{small}}\,|g_{\text{small}}|^2}{B_{\text{big}} - B_{\text{small}}},
#  \qquad
#  \operatorname{tr}(\Sigma) \approx \frac{|g_{\text{small}}|^2 - |g_{\text{big}}|^2}{1/B_{\text{small}} - 1/B_{\text{big}}} , $$
#
# and $B_{\text{simple}}$ is their ratio. This is McCandlish et al.'s two-batch estimator. In
# data-parallel training it costs nothing: each worker's gradient is a small batch and their
# average, which the workers compute anyway, is a big one. Each estimate is unbiased if the
# squared norms are; a single measurement is noisy, though, and can even give a negative
# $|G|^2$ when the noise swamps the signal, so in practice both squared norms are averaged
# over many batches first.
#
# **Exercise (2 points).** Write `noise_scale_two_batch(g_small_sq, g_big_sq, b_small, b_big)`:
# given the squared norms of gradients measured at batch sizes `b_small` and `b_big` (or
# their averages over many batches), return the estimate of $B_{\text{simple}}$ above.
# Raise `ValueError` unless `b_small < b_big`: two measurements at the same batch size
# cannot tell the signal from the noise.

# %% nbgrader={"grade_id": "noise_scale_two_batch", "solution": true}
def noise_scale_two_batch(g_small_sq, g_big_sq, b_small, b_big):
    """B_simple = tr(Sigma) / |G|^2 from squared gradient norms at two batch sizes."""
    ### BEGIN SOLUTION
    if not b_small < b_big:
        raise ValueError(f"need b_small < b_big, got b_small={b_small}, b_big={b_big}")
    g_sq = (b_big * g_big_sq - b_small * g_small_sq) / (b_big - b_small)
    trace = (g_small_sq - g_big_sq) / (1 / b_small - 1 / b_big)
    return trace / g_sq
    ### END SOLUTION


# %% [markdown]
# To test an estimator we need a problem whose answer is known exactly. Least squares with
# random inputs is one. Take inputs $x \sim \mathcal{N}(0, I_d)$, labels $y = x^\top w^\star + \epsilon$
# with noise $\epsilon \sim \mathcal{N}(0, \sigma^2)$, and the loss $\frac{1}{2}(x^\top w - y)^2$.
# At weights $w = w^\star + \delta$ one example's gradient is
#
# $$ \nabla\ell = x\,(x^\top \delta - \epsilon) . $$
#
# Its mean is $G = \mathbb{E}[x x^\top]\,\delta = \delta$. For its covariance, a property of
# the Gaussian (its fourth moments) gives
# $\mathbb{E}[x x^\top (x^\top\delta)^2] = |\delta|^2 I + 2\,\delta\delta^\top$, and the label
# noise adds $\sigma^2 I$, so $\Sigma = \mathbb{E}[\nabla\ell\,\nabla\ell^\top] - G G^\top
# = (|\delta|^2 + \sigma^2)\, I + \delta\delta^\top$. Hence
#
# $$ |G|^2 = |\delta|^2, \qquad \operatorname{tr}(\Sigma) = d\,(|\delta|^2 + \sigma^2) + |\delta|^2,
#  \qquad B_{\text{simple}} = d\,\Big(1 + \frac{\sigma^2}{|\delta|^2}\Big) + 1 . $$
#
# Far from the minimum ($|\delta| \gg \sigma$) the noise scale is about $d + 1$; close to it,
# it grows without bound, because the true gradient vanishes while the label noise does not.
# `lrcourse/noise.py` turns these formulas into code (`regression_noise`, printed below;
# `expected_sq_norm`, the expected squared norm of a minibatch gradient), along with a
# sampler of per-example gradients (`regression_grads`); the tests use them.

# %% nbgrader={"grade_id": "regression_problem", "locked": true}
import inspect

from lrcourse.noise import expected_sq_norm, regression_grads, regression_noise

print(inspect.getsource(regression_noise))

# %% nbgrader={"grade_id": "test_noise_scale_two_batch", "grade": true, "points": 2}
from lrcourse.checks import call, code, run_tests

# |G|^2 = 2, tr(Sigma) = 40: E|g_4|^2 = 2 + 40/4 = 12 and E|g_20|^2 = 2 + 40/20 = 4
tests = [
    call("noise_scale_two_batch", 12.0, 4.0, 4, 20).expect(
        20.0, hint="here |G|^2 = 2 and tr(Sigma) = 40, so B_simple = 40 / 2 = 20"),
    # least squares, d = 10, |delta| = 1, sigma = 1: B_simple = 10 * (1 + 1) + 1 = 21
    code("noise_scale_two_batch(expected_sq_norm(4, 10, 1.0, 1.0), expected_sq_norm(64, 10, 1.0, 1.0), 4, 64)",
         "noise_scale_two_batch on the exact E|g_B|^2 of least squares (d=10, |delta|=1, sigma=1), "
         "batches 4 and 64").expect(21.0, hint="solve E|g_B|^2 = |G|^2 + tr(Sigma) / B at the two batch sizes"),
    call("noise_scale_two_batch", 5.0, 5.0, 32, 32).raises(
        ValueError, hint="equal batch sizes: two measurements at the same batch size cannot tell the signal "
                         "from the noise"),
]
### BEGIN HIDDEN TESTS
from lrcourse.noise import regression_noise


def exact_b_simple(d, dist, sigma):
    """B_simple of the least-squares problem."""
    return regression_noise(d, dist, sigma)[2]


# |G|^2 = 0.5, tr(Sigma) = 3: E|g_3|^2 = 1.5, E|g_50|^2 = 0.56
tests += [call("noise_scale_two_batch", 1.5, 0.56, 3, 50).expect(6.0, hint="here |G|^2 = 0.5 and tr(Sigma) = 3")]
tests += [
    code(f"noise_scale_two_batch(expected_sq_norm({b_s}, {d_}, {dist_}, {sigma_}), "
         f"expected_sq_norm({b_b}, {d_}, {dist_}, {sigma_}), {b_s}, {b_b})",
         f"noise_scale_two_batch on exact least-squares norms (d={d_}, |delta|={dist_}, sigma={sigma_}), "
         f"batches {b_s} and {b_b}").expect(
        exact_b_simple(d_, dist_, sigma_), rtol=1e-6,
        hint="|G|^2 = (b_big * g_big_sq - b_small * g_small_sq) / (b_big - b_small), "
             "tr(Sigma) = (g_small_sq - g_big_sq) / (1 / b_small - 1 / b_big)")
    for d_, dist_, sigma_, b_s, b_b in ((5, 0.3, 2.0, 1, 2), (40, 2.0, 0.5, 16, 1024), (3, 1.0, 0.0, 7, 9),
                                        (20, 0.1, 1.0, 32, 10**7))]
tests += [call("noise_scale_two_batch", 12, 4, 4, 20).expect(20.0, hint="use true division")]  # integers
tests += [call("noise_scale_two_batch", *args).raises(ValueError, hint="b_small must be < b_big")
          for args in ((4.0, 12.0, 20, 4), (1.0, 1.0, 8, 8))]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# ### The noise scale from per-example gradients
#
# If you can get the gradient of every example separately (PyTorch's `torch.func` can), you
# have two batch sizes for free: each example alone is a "batch" of 1, and all $n$ together
# are a batch of $n$. Averaging the squared norm over the $n$ single examples gives the
# estimator
#
# $$ B_{\text{simple}} \approx \text{noise\_scale\_two\_batch}\Big(\tfrac{1}{n}\sum_i |\nabla\ell_i|^2,\; \big|\tfrac{1}{n}\sum_i \nabla\ell_i\big|^2,\; 1,\; n\Big) . $$
#
# Work out what it computes and you find familiar statistics: its trace is the sum over
# coordinates of the per-example gradients' sample variance with the $n - 1$ denominator
# (NumPy's `var(ddof=1)`), and its $|G|^2$ is $|\bar g|^2 - \operatorname{tr}(\Sigma)/n$,
# the squared length of the mean gradient with its noise subtracted.
#
# **Exercise (2 points).** Write `noise_scale_per_example(grads)`: `grads` is an $n \times d$
# array (or a list of lists), one example's gradient per row, all taken at the same weights.
# Return the estimate of $B_{\text{simple}}$ above (you may call your
# `noise_scale_two_batch`). Raise `ValueError` if there are fewer than two rows.

# %% nbgrader={"grade_id": "noise_scale_per_example", "solution": true}
def noise_scale_per_example(grads):
    """B_simple from an n x d array of per-example gradients (one row per example)."""
    ### BEGIN SOLUTION
    grads = np.asarray(grads, dtype=np.float64)
    n = grads.shape[0]
    if n < 2:  # no-mutate (n < 1 also raises: noise_scale_two_batch refuses b_small = b_big = 1)
        raise ValueError(f"need the gradients of at least two examples, got {n}")
    mean_sq_norm = np.mean(np.sum(grads**2, axis=1))  # batches of one example
    sq_norm_of_mean = np.sum(np.mean(grads, axis=0) ** 2)  # one batch of all n
    return noise_scale_two_batch(mean_sq_norm, sq_norm_of_mean, 1, n)
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_noise_scale_per_example", "grade": true, "points": 2}
import numpy as np
from lrcourse.checks import assert_true, call, code, run_tests


def within_10_percent(exact, what, hint=""):
    """The result must be a number within 10% of `exact` (an estimate from sampled gradients)."""
    tail = f" Hint: {hint}" if hint else ""

    def check(got):
        if got is None:
            raise AssertionError(f"{what} returned None: did you forget `return`?")
        if isinstance(got, (bool, str)) or not isinstance(got, (int, float, np.ndarray)) or np.size(got) != 1:
            raise AssertionError(f"{what} returned {got!r} ({type(got).__name__}); expected a number")
        value = float(np.asarray(got, dtype=np.float64).reshape(-1)[0])
        assert_true(abs(value - exact) < 0.1 * exact,
                    f"{what}: expected about {exact:.4g} (within 10%), got {value:.4g}.{tail}")
    return check


# mean gradient (2, 1, 1): |mean|^2 = 6; per-example squared norms 5 and 13, average 9
tests = [
    call("noise_scale_per_example", np.array([[1.0, 0.0, 2.0], [3.0, 2.0, 0.0]])).expect(
        2.0, hint="tr(Sigma) = sum of var(ddof=1) over the columns = 6; |G|^2 = |mean|^2 - tr(Sigma) / n = 3"),
    # B_simple = 10 * (1 + 1) + 1 = 21
    code("noise_scale_per_example(regression_grads(20_000, 10, 1.0, 1.0, seed=0))",
         "noise_scale_per_example on 20,000 sampled least-squares gradients (d=10, |delta|=1, sigma=1)").check(
        within_10_percent(21.0, "noise_scale_per_example on 20,000 sampled least-squares gradients "
                                "(d=10, |delta|=1, sigma=1)",
                          hint="each row is one example's gradient; average the squared row norms, and take the "
                               "squared norm of the mean row")),
]
### BEGIN HIDDEN TESTS
from lrcourse.noise import regression_noise


def exact_b_simple(d, dist, sigma):
    """B_simple of the least-squares problem."""
    return regression_noise(d, dist, sigma)[2]


rows = [[0.0, 1.0], [2.0, -1.0], [4.0, 3.0]]  # mean (2, 1): |mean|^2 = 5; squared norms 1, 5, 25: average 31/3
some = np.random.default_rng(7).standard_normal((6, 4)) + np.array([1.0, -2.0, 0.5, 0.0])
var_sum = some.var(axis=0, ddof=1).sum()
two_rows = [[1.0, 2.0], [3.0, 0.0]]  # mean (2, 1), |mean|^2 = 5; norms 5 and 9: average 7 -> tr 4, |G|^2 3
tests += [
    call("noise_scale_per_example", rows).expect(
        24.0 / 7.0, hint="tr(Sigma) = 4 + 4 = 8 with var(ddof=1); |G|^2 = 5 - 8/3 = 7/3; it must accept a list of lists"),
    call("noise_scale_per_example", some).expect(
        var_sum / (np.sum(some.mean(axis=0) ** 2) - var_sum / 6), rtol=1e-9,
        hint="tr(Sigma): column variances with ddof=1, summed; |G|^2: |mean row|^2 - tr(Sigma) / n"),
]
tests += [
    code(f"noise_scale_per_example(regression_grads(40_000, {d_}, {dist_}, {sigma_}, seed=3))",
         f"noise_scale_per_example on 40,000 sampled least-squares gradients (d={d_}, |delta|={dist_}, "
         f"sigma={sigma_})").check(within_10_percent(
        exact_b_simple(d_, dist_, sigma_), f"noise_scale_per_example on 40,000 sampled least-squares gradients "
                                           f"(d={d_}, |delta|={dist_}, sigma={sigma_})"))
    for d_, dist_, sigma_ in ((4, 2.0, 1.0), (8, 0.5, 0.5))]
tests += [
    call("noise_scale_per_example", two_rows).expect(4.0 / 3.0, hint="two examples are enough"),
    call("noise_scale_per_example", np.array([[1.0, 2.0, 3.0]])).raises(
        ValueError, hint="a single row: at least two examples are needed"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# How good are the estimators with a realistic amount of data? The cell below draws 16,384
# examples of the least-squares problem at three distances from the minimum and estimates
# $B_{\text{simple}}$ twice: from all per-example gradients, and with the two-batch
# estimator on averaged squared norms of 512 batches of 32 and 16 batches of 1,024 (the same
# examples, grouped).

# %%
d_ls, sigma_ls, n_ls = 10, 1.0, 16_384
print(f"{'|delta|':>8} {'exact':>9} {'per-example':>12} {'two-batch (32, 1024)':>21}")
for dist in (3.0, 1.0, 0.3):
    grads = regression_grads(n_ls, d_ls, dist, sigma_ls, seed=1)
    sq_small = np.mean(np.sum(grads.reshape(-1, 32, d_ls).mean(axis=1) ** 2, axis=1))
    sq_big = np.mean(np.sum(grads.reshape(-1, 1024, d_ls).mean(axis=1) ** 2, axis=1))
    exact = regression_noise(d_ls, dist, sigma_ls)[2]
    print(f"{dist:>8g} {exact:>9.1f} {noise_scale_per_example(grads):>12.1f} "
          f"{noise_scale_two_batch(sq_small, sq_big, 32, 1024):>21.1f}")

# %% [markdown]
# Both estimators land close to the exact value, and all three columns show the noise scale
# growing as the weights approach the minimum: from about 12 at $|\delta| = 3$ to over 100 at
# $|\delta| = 0.3$. (The estimates get noisier as it grows: the signal $|G|^2$ they must
# pull out of the noise becomes small.) A batch size that is "large" at the start of training
# can be "small" near its end.
#
# ## 5. The best learning rate across batch sizes, measured
#
# Now the digits network (64-128-128-10, SGD with momentum 0.9) on a **fixed budget of
# examples**: every run sees 19,200 training images, so a batch of 8 takes 2,400 updates and
# a batch of 1,024 takes 19 (19,200 / 1,024 = 18.75, rounded). Perfect scaling would mean
# that the best run of every batch size ends at the same loss, in fewer and fewer steps.
#
# Keep the size of the data in mind: the training set has 1,437 images, so a batch of 1,024
# is 71% of it. Such a batch gives almost the full-data gradient, and with 19 updates the run
# sees each image about 13 times.
#
# For each batch size $B$ we train at learning rates on a grid that starts at the linear
# rule's prediction from `0.0025` at $B = 8$ (a learning rate about ten times below the best
# one there, so safely stable) and goes up by factors of $\sqrt 2$ to 16 times that, plus
# the learning rates of the square-root rule and of no scaling at all from the same start.
# Each run reports its final loss on the whole training set. We use a constant learning rate:
# when we tried a warmup over the first 10% of the updates (notebook 04), it moved the best
# learning rates by at most one step of $\sqrt 2$, no more than changing the seed does, and
# changed none of the conclusions below, so it is left out here.
#
# The copies for one batch size (all learning rates, all seeds) train together with
# `lrcourse.batched.train_batched`, which stacks their weights and gives exactly the results
# of separate `lrcourse.train` runs, several times faster. About half a minute on two CPU cores.

# %% nbgrader={"grade_id": "experiment_settings", "locked": true}
BUDGET = 19_200  # training examples per run, whatever the batch size
BASE_LR, BASE_BATCH = 0.0025, 8
BATCHES = [8, 16, 32, 64, 128, 256, 512, 1024]
GRID = [2 ** (j / 2) for j in range(9)]  # multiples of the linear rule's LR: 1 to 16
SEEDS = [0, 1, 2]
if lrcourse.quick_mode():
    BATCHES, GRID, SEEDS = [32, 128, 512], [1.0, 2.0, 4.0, 8.0], [0]

# %%
digits = lrcourse.load_digits(device)
# The "validation" set handed to the trainer is the training set itself, so that each run
# reports its final loss on all 1,437 training images, after its last update.
on_train = lrcourse.DigitsData(digits.x_train, digits.y_train, digits.x_train, digits.y_train)


def final_train_losses(lrs, batch, seeds):
    """Final training loss of every (seed, LR) pair: an array seeds x LRs, inf if a run diverged."""
    steps = round(BUDGET / batch)
    runs = [(seed, lr) for seed in seeds for lr in lrs]
    histories = train_batched([lr for _, lr in runs], steps, data=on_train, batch_size=batch,
                              seeds=[seed for seed, _ in runs], device=device, eval_every=steps)
    finals = [h.val_loss[-1] if h.val_loss and not h.diverged and math.isfinite(h.val_loss[-1]) else math.inf
              for h in histories]
    return np.array(finals).reshape(len(seeds), len(lrs))


results = {}  # batch -> dict(grid=LRs, grid_loss=seeds x LRs, linear=, sqrt=, none= (one loss per seed))
for batch in BATCHES:
    rules = {"linear": linear_scaled_lr(BASE_LR, BASE_BATCH, batch),
             "sqrt": sqrt_scaled_lr(BASE_LR, BASE_BATCH, batch), "none": BASE_LR}
    grid = [BASE_LR * batch / BASE_BATCH * m for m in GRID]
    lrs = sorted({float(f"{lr:.12g}") for lr in [*grid, *rules.values()]})  # each distinct LR once
    losses = final_train_losses(lrs, batch, SEEDS)
    column = {lr: losses[:, i] for i, lr in enumerate(lrs)}
    results[batch] = dict(grid=np.array(grid), grid_loss=np.stack([column[float(f"{lr:.12g}")] for lr in grid], 1),
                          **{name: column[float(f"{lr:.12g}")] for name, lr in rules.items()})
    best = [grid[i] for i in np.argmin(results[batch]["grid_loss"], axis=1)]
    print(f"B = {batch:4d} ({round(BUDGET / batch):4d} steps): best LR per seed "
          + ", ".join(f"{lr:.3g}" for lr in best)
          + f";  loss at the linear rule's LR {rules['linear']:.3g}: "
          + ", ".join(f"{v:.3g}" for v in results[batch]["linear"]))

# %% [markdown]
# The cell below draws three views of these runs:
#
# * **left**: final loss against the learning rate *divided by the linear rule's factor*
#   $B/8$, one curve per batch size (the median over seeds). If the linear rule held
#   exactly, all curves would lie on top of each other;
# * **middle**: the best learning rate of the grid for each batch size (small dots: each
#   seed; large dots: their geometric mean), against the predictions of your
#   `linear_scaled_lr` and `sqrt_scaled_lr` from the best learning rate at the smallest
#   batch, and your `noise_scale_lr` with $\eta_{\max}$ and $B_{\text{noise}}$ fitted to the
#   large dots (a least-squares fit of the logarithms);
# * **right**: the final loss at the best learning rate, and at the learning rates that
#   the three rules give from `0.0025` at $B = 8$.

# %%
def fit_noise_scale(batches, best_lrs):
    """lr_max and b_noise of noise_scale_lr that best fit the measured best LRs (in log space)."""
    best_fit = None
    for b in np.geomspace(1, 1e5, 801):
        shape = np.array([noise_scale_lr(1.0, b, batch) for batch in batches])
        log_lr_max = np.mean(np.log(best_lrs) - np.log(shape))
        err = np.mean((np.log(best_lrs) - log_lr_max - np.log(shape)) ** 2)
        if best_fit is None or err < best_fit[0]:
            best_fit = (err, math.exp(log_lr_max), b)
    return best_fit[1], best_fit[2]


batch_arr = np.array(BATCHES, dtype=float)
best_lr = np.array([[results[b]["grid"][i] for i in np.argmin(results[b]["grid_loss"], axis=1)] for b in BATCHES])
best_lr_mean = np.exp(np.log(best_lr).mean(axis=1))  # geometric mean over seeds
fit_lr_max, fit_b_noise = fit_noise_scale(BATCHES, best_lr_mean)

fig, (ax_curves, ax_best, ax_loss) = plt.subplots(1, 3, figsize=(17, 5))
colors = plt.cm.viridis(np.linspace(0, 0.9, len(BATCHES)))
for batch, color in zip(BATCHES, colors):
    r = results[batch]
    loss = np.median(np.minimum(r["grid_loss"], 10.0), axis=0)  # a diverged run is drawn at 10
    ax_curves.plot(r["grid"] * BASE_BATCH / batch, loss, "o-", color=color, markersize=3, label=f"B = {batch}")
ax_curves.set(xscale="log", yscale="log", xlabel="learning rate x 8 / B", ylabel="final training loss (diverged: 10)",
              title="loss vs LR rescaled by the linear rule")
ticks = [BASE_LR * m for m in GRID[::2]]
ax_curves.set_xticks(ticks, [f"{t:.2g}" for t in ticks])
ax_curves.minorticks_off()
ax_curves.legend(fontsize="small", ncol=2)

small = BATCHES[0]
for i, batch in enumerate(BATCHES):
    ax_best.plot([batch] * len(SEEDS), best_lr[i], ".", color="gray", markersize=5)
ax_best.plot(batch_arr, best_lr_mean, "o", color="black", markersize=8, label="best LR of the grid (measured)")
fine = np.geomspace(BATCHES[0], BATCHES[-1], 100)
ax_best.plot(fine, [linear_scaled_lr(best_lr_mean[0], small, b) for b in fine], color="tab:blue",
             label="linear rule from the first point")
ax_best.plot(fine, [sqrt_scaled_lr(best_lr_mean[0], small, b) for b in fine], color="tab:orange",
             label="square-root rule from the first point")
ax_best.plot(fine, [noise_scale_lr(fit_lr_max, fit_b_noise, b) for b in fine], "--", color="tab:green",
             label=f"fit: {fit_lr_max:.2f} / (1 + {fit_b_noise:.0f} / B)")
ax_best.set(xscale="log", yscale="log", xlabel="batch size B", ylabel="learning rate",
            title=f"best LR at a budget of {BUDGET:,} examples")
ax_best.legend(fontsize="small")

for name, label, color in (("best", "best LR of the grid", "black"),
                           ("linear", "linear rule from 0.0025 at B = 8", "tab:blue"),
                           ("sqrt", "square-root rule", "tab:orange"), ("none", "no scaling (0.0025)", "tab:red")):
    if name == "best":
        values = np.array([np.min(results[b]["grid_loss"], axis=1) for b in BATCHES])
    else:
        values = np.array([results[b][name] for b in BATCHES])
    values = np.minimum(values, 10.0)
    ax_loss.plot(batch_arr, np.exp(np.log(values).mean(axis=1)), "o-", color=color, label=label)
    ax_loss.fill_between(batch_arr, values.min(axis=1), values.max(axis=1), color=color, alpha=0.2)
ax_loss.axhline(math.log(10), color="gray", linestyle="--", linewidth=1, label="chance (ln 10)")
ax_loss.set(xscale="log", yscale="log", xlabel="batch size B", ylabel="final training loss",
            title=f"final loss ({len(SEEDS)} seeds: geometric mean and range)")
ax_loss.set_ylim(top=30)  # room for the legend above the curves
ax_loss.legend(fontsize="small", loc="upper left")
for ax in (ax_curves, ax_best, ax_loss):
    ax.grid(True, which="major", alpha=0.3)
fig.tight_layout()

ratio = best_lr_mean[-1] / best_lr_mean[0]
print(f"best LR from B = {BATCHES[0]} to B = {BATCHES[-1]} ({BATCHES[-1] // BATCHES[0]}x the batch): "
      f"{best_lr_mean[0]:.3g} -> {best_lr_mean[-1]:.3g}, {ratio:.1f}x")
print(f"fitted noise-scale curve: lr_max = {fit_lr_max:.2f}, B_noise = {fit_b_noise:.0f}")
best_loss = {b: np.min(results[b]["grid_loss"], axis=1) for b in BATCHES}
for b in BATCHES:
    print(f"B = {b:4d}: best loss {', '.join(f'{v:.2g}' for v in best_loss[b])};   linear rule "
          f"{', '.join(f'{v:.2g}' for v in results[b]['linear'])};   square root "
          f"{', '.join(f'{v:.2g}' for v in results[b]['sqrt'])};   no scaling {', '.join(f'{v:.2g}' for v in results[b]['none'])}")

# %% [markdown]
# What the runs show (measured on two CPU cores with seeds 0, 1, 2, and again with seeds 3, 4,
# 5: every statement below held for all six; quick mode, used for grading, runs a smaller
# version of the same):
#
# * **Perfect scaling, then diminishing returns.** At its best learning rate, every batch
#   size from 8 to 128 ends at about the same loss (a few times $10^{-4}$, scattered by the
#   seed), in 2,400 down to 150 steps. From 256 on, no learning rate of the grid gets there:
#   the best loss is a few times higher at 256 and 512, and 50 to 100 times higher at 1,024
#   (19 steps).
# * **The best learning rate grows linearly at first, then slower.** From $B = 8$ to 64 it
#   grows almost as fast as the batch (6 to 8 times for 8 times the batch, depending on the
#   seed); from 64 to 1,024 only 3 to 6 times for 16 times the batch, closer to the
#   square-root rule's 4. The noise-scale curve fits it well, with $B_{\text{noise}}$ around
#   200 and $\eta_{\max}$ around 0.5 (the fit moves a little with the seeds).
# * **The left plot shows why.** Rescaled by the linear rule, the curves for batches 8 to 64
#   lie on top of each other, and so does the cliff where the network blows up (between 0.02
#   and 0.04 on the rescaled axis): there, the linear rule is exact. For larger batches the
#   cliff slides to the left: the largest stable learning rate stops growing in proportion
#   to the batch, and flattens out near the limit set by the curvature (notebook 01 and
#   section 1), which no batch size moves. The best learning rate, just below the cliff,
#   follows it.
# * **The rules from a safe start.** Starting from `0.0025` at $B = 8$, the linear rule keeps
#   the final loss at about 0.02 up to $B = 256$; it is 20-40% worse at 512 and about four
#   times worse at 1,024. The square-root rule and no scaling fall behind from the first
#   doubling, as section 2 predicts for SGD: at 1,024 they have barely left the starting
#   loss.
#
# Note that the linear rule from the *best* learning rate at $B = 8$ (the blue line in the
# middle plot) fails much earlier: the best learning rate sits just below the cliff, so the
# rule walks over it as soon as the cliff stops moving linearly, around $B = 64$-$128$ here.
# A base learning rate with some margin scales further. Goyal et al.'s recipe works at a
# base learning rate that was tuned for batch 256, with a warmup that protects the first
# updates, and it too stops working at a batch of about 8k.
#
# ## 6. The gradient noise scale of the digits network
#
# Is $B_{\text{noise}} \approx 200$ a sensible number for this network? Let us measure
# $B_{\text{simple}}$ with your `noise_scale_two_batch`, at several points of a training run
# (batch 64, learning rate 0.02). At each point we average the squared gradient norm over 64
# batches of 32 and 16 batches of 512, all drawn at random with replacement from the training
# set, so that their examples are independent as the estimator assumes.

# %%
def sq_grad_norm(model, idx):
    """Squared norm of the gradient of the mean loss over the training examples idx."""
    model.zero_grad()
    F.cross_entropy(model(digits.x_train[idx]), digits.y_train[idx]).backward()
    return sum(float(p.grad.pow(2).sum()) for p in model.parameters())


def measure_noise_scale(model, seed, b_small=32, b_big=512, n_small=64, n_big=16):
    gen = torch.Generator().manual_seed(seed)
    n = len(digits.x_train)
    small_sq = np.mean([sq_grad_norm(model, torch.randint(n, (b_small,), generator=gen).to(device))
                        for _ in range(n_small)])
    big_sq = np.mean([sq_grad_norm(model, torch.randint(n, (b_big,), generator=gen).to(device))
                      for _ in range(n_big)])
    return noise_scale_two_batch(small_sq, big_sq, b_small, b_big)


def trained_model(steps, seed):
    """The digits network after `steps` updates (batch 64, LR 0.02), and its training loss."""
    models = []

    def make_model():
        models.append(lrcourse.DigitsMLP())
        return models[-1]

    lrcourse.train(0.02, max(steps, 1), data=digits, model_fn=make_model, batch_size=64, seed=seed,
                   device=device, progress=False)
    if steps == 0:  # a fresh network with the same initial weights
        lrcourse.seed_everything(seed)
        models[0] = lrcourse.DigitsMLP().to(device)
    model = models[0]
    with torch.no_grad():
        loss = F.cross_entropy(model(digits.x_train), digits.y_train).item()
    return model, loss


NOISE_STEPS = [0, 25, 50, 100, 200]
fig, ax = plt.subplots(figsize=(7, 4.5))
for seed in SEEDS:
    points = []
    for steps in NOISE_STEPS:
        model, loss = trained_model(steps, seed)
        points.append((loss, measure_noise_scale(model, seed)))
    losses_, b_simple = np.array(points).T
    ax.plot(losses_, b_simple, "o-", label=f"seed {seed}")
    print(f"seed {seed}: " + ",  ".join(f"step {s}: loss {l:.2f}, B_simple {b:.0f}"
                                        for s, l, b in zip(NOISE_STEPS, losses_, b_simple)))
ax.axhline(fit_b_noise, color="tab:green", linestyle="--", label=f"B_noise fitted in section 5 ({fit_b_noise:.0f})")
ax.set(xscale="log", yscale="log", xlabel="training loss (it falls from left to right)",
       ylabel="$B_{simple}$ (your two-batch estimate)", title="the gradient noise scale grows during training")
ax.invert_xaxis()
ax.legend(fontsize="small")
ax.grid(True, which="major", alpha=0.3)
fig.tight_layout()

# %% [markdown]
# At initialisation $B_{\text{simple}}$ is about 70; it dips a little during the first fast
# fall of the loss and then climbs steadily, to several hundred when the loss is near 0.1 and
# to between several hundred and several thousand at 0.04 (where the estimates also get
# noisy: $|G|^2$ is small). The
# $B_{\text{noise}}$ fitted to the best learning rates lies inside this range, at the values
# the noise scale passes through in the middle of a run. That is what the simple model
# predicts, with one caveat it cannot capture by itself: a run is not one step, and which
# part of training limits the batch size depends on the budget. In the same way, McCandlish
# et al. found that the critical batch size grows during training, and that it is larger for
# harder tasks.
#
# ## Summary
#
# * **Linear rule** (SGD): $k$ steps of $\eta$ on batches of $B$ are, to first order, one step
#   of $k\eta$ on a batch of $kB$: same mean and same noise. It holds while the big step
#   stays well below $1/\lambda$ and the gradient changes slowly; Goyal et al. trained
#   ResNet-50 at batch 8k with it (and a 5-epoch warmup) at almost the error of batch 256.
# * **Square-root rule**: keeps the noise of one update constant. For SGD that under-steps;
#   for Adam, whose update is normalised by the gradient noise, it is the rule that keeps
#   both signal and noise matched (Malladi et al., 2022).
# * **Where linear scaling ends**: the best learning rate of a noisy quadratic is
#   $\eta_{\max}/(1 + B_{\text{noise}}/B)$, linear only while $B \ll B_{\text{noise}}$. The
#   gradient noise scale $B_{\text{simple}} = \operatorname{tr}(\Sigma)/|G|^2$ can be
#   estimated from two batch sizes or from per-example gradients, and it grows during
#   training. Beyond it: diminishing returns, then none (Shallue et al., 2018).
# * **On the digits network** at a fixed budget of 19,200 examples: the best loss is about
#   the same from batch 8 to 128, a few times worse at 256-512 and much worse at 1,024; the
#   best learning rate grows nearly in proportion to the batch up to 64 and more slowly after
#   that, fitted by $B_{\text{noise}} \approx 200$, a value the measured noise scale passes
#   through in the middle of training. The linear rule from a safe base learning rate holds
#   up to 256; the square-root rule, right for Adam, is far too timid for SGD.
#
# Next, **06 · Diagnosing training**: telling a diverged, a stalled and a healthy run apart
# automatically, and choosing a learning rate with a range test.
