# %% [markdown]
# # 06 · Batch size and the learning rate
#
# Every learning rate in notebooks 01-05 was tuned for one batch size. Change the batch size
# (a bigger GPU, more GPUs, a smaller model that suddenly fits more examples) and the
# learning rate that was right is no longer right. There are two well-known rules for
# moving it: multiply it by the same factor as the batch (the **linear** rule), or by the
# square root of that factor (the **square-root** rule). This notebook derives both, shows
# which optimizer each belongs to, finds out why and where the linear rule stops working,
# and measures all of it on the digits network.
#
# **You will**
# 1. derive the linear scaling rule from a first-order expansion: how far do $k$ small steps
#    go, compared with one step on $k$ times more data?
# 2. derive the square-root rule from the noise of an update, and see why it is the rule for Adam;
# 3. derive the best learning rate as a function of the batch size from a noisy quadratic,
#    and meet the **gradient noise scale**, the batch size where the linear rule runs out;
# 4. estimate the gradient noise scale from gradients measured at two batch sizes, and from
#    per-example gradients, on a problem where the exact answer is known;
# 5. measure, on the digits network and its held-out validation set, how many steps each
#    batch size from 8 to 1,024 needs to reach a target loss, and which learning rate gets
#    there fastest, and compare them with the rules' predictions.
#
# Exercises: `linear_scaled_lr` (1 point), `noise_matched_lr` (1), `noise_scale_lr` (2),
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
# $$ w_k \approx w_0 - \eta \sum_{j=0}^{k-1} g_j(w_0)
#  \;+\; \eta^2 \sum_{j=0}^{k-1} \sum_{i<j} H_j\, g_i(w_0) . $$
#
# Set the last term aside for a moment (it is second order in $\eta$). What is left uses
# only gradients taken at $w_0$, on $k$ disjoint batches of $B$ examples: between them, one
# batch of $kB$ examples. A big-batch run would take a single step from $w_0$ on exactly
# that batch, $w_0 - \eta'\, g_{kB}(w_0)$, where $g_{kB}$ is the mean gradient over all
# $kB$ examples.
#
# **Exercise (1 point).** Find the learning rate $\eta'$ that makes the single big step land
# where the $k$ small steps land, to first order. Then write
# `linear_scaled_lr(base_lr, base_batch, batch)`: the learning rate for batches of `batch`
# examples, given that `base_lr` is right for batches of `base_batch` (so
# $k$ = `batch / base_batch`, which need not be a whole number).

# %% nbgrader={"grade_id": "linear_scaled_lr", "solution": true}
def linear_scaled_lr(base_lr, base_batch, batch):
    """The learning rate at which one step on a batch of `batch` examples matches, to first
    order, the steps of `base_lr` on batches of `base_batch` that use the same examples."""
    ### BEGIN SOLUTION
    return base_lr * batch / base_batch
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_linear_scaled_lr", "grade": true, "points": 1}
from lrcourse.checks import call, run_tests

tests = [
    call("linear_scaled_lr", 0.1, 256, 512).expect(
        0.2, hint="one batch of 512 replaces two steps on batches of 256: how far do those two steps go?"),
    call("linear_scaled_lr", 0.1, 256, 8192).expect(
        3.2, hint="write the sum of k batch means as a multiple of the mean over all k * B examples"),
]
### BEGIN HIDDEN TESTS
tests += [
    call("linear_scaled_lr", 0.0025, 8, 1024).expect(
        0.32, hint="write the sum of k batch means as a multiple of the mean over all k * B examples"),
    call("linear_scaled_lr", 0.37, 64, 64).expect(0.37, hint="the same batch size keeps the same learning rate"),
    call("linear_scaled_lr", 0.2, 128, 32).expect(
        0.05, hint="a smaller batch: the same reasoning run backwards, k = batch / base_batch < 1"),
    call("linear_scaled_lr", 0.3, 100, 150).expect(
        0.45, hint="k = batch / base_batch need not be a whole number"),
    call("linear_scaled_lr", 1, 3, 2).expect(2 / 3, hint="use true division, not //"),  # integer arguments
    call("linear_scaled_lr", 0.1, 256, 2**20).expect(
        409.6, hint="the first-order rule itself has no ceiling, however large the batch"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# The $k$ batch means add up to $k$ times the mean over all $kB$ examples, so
# $\eta' = k\eta$: **$k$ steps with learning rate $\eta$ on batches of $B$ are, to first
# order, one step with learning rate $k\eta$ on a batch of $kB$.** The two land at the same
# place and have used the same examples; the big-batch run took $k$ times fewer steps, which
# on $k$ times more hardware is $k$ times less time. This is the **linear scaling rule**:
# when the batch grows $k$ times, multiply the learning rate by $k$.
#
# The same bookkeeping works for the noise. The $k$ small steps move by $k\eta G$ on average,
# with covariance $k \cdot \eta^2 \Sigma / B$ (independent batches add up their variances);
# the big step moves by $k\eta\,G$, with covariance $(k\eta)^2 \Sigma / (kB) = k \eta^2 \Sigma / B$.
# Mean and noise both match.
#
# When is the term we set aside small? It holds $k(k-1)/2$ products of a Hessian and a
# gradient, about $\frac{1}{2}(k\eta)^2 \lambda\,|g|$ in size for a curvature $\lambda$, next
# to a step of size $k\eta\,|g|$: the error relative to the step is about
# $\frac{1}{2}k\eta\lambda$. So the rule holds while the big step $k\eta$ is small compared
# with $1/\lambda$, that is, while the gradient barely changes over the distance the $k$
# small steps travel. Two ways for that to fail follow directly:
#
# * **The big step reaches the stability limit.** Notebook 01 showed that no step larger
#   than $2/\lambda_{\max}$ is stable (without momentum; $2(1+\beta)/\lambda_{\max}$ with
#   it), whatever the gradient. $k$ small steps of $\eta$ can be fine where one step of
#   $k\eta$ blows up, so the linear rule has to stop somewhere.
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
# The first-order argument can be checked directly. The cell below takes a least-squares
# problem (defined properly in section 4), starts at a point away from its minimum, and
# compares $k = 8$ SGD steps (no momentum) with learning rate $\eta$ on 8 batches of 16
# examples with one step of `linear_scaled_lr(eta, 16, 128)` on the same 128 examples
# together. The Hessian of the 128 examples' loss is $X^\top X / 128$; the cell prints its
# eigenvalues' range, and with it the largest stable big step, $2/\lambda_{\max}$.

# %% tags=["illustration"]
rng = np.random.default_rng(0)
d, k, small = 10, 8, 16
x_demo = rng.standard_normal((k * small, d))
y_demo = x_demo @ np.ones(d) + 0.5 * rng.standard_normal(k * small)  # w* = (1, ..., 1)
w_start = np.zeros(d)
eigenvalues = np.linalg.eigvalsh(x_demo.T @ x_demo / len(x_demo))  # Hessian of the mean loss
print(f"Hessian of the 128 examples: eigenvalues from {eigenvalues.min():.2f} to {eigenvalues.max():.2f}; "
      f"the big step is stable only for k*eta < 2 / lambda_max = {2 / eigenvalues.max():.2f}")


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
    print(f"k*eta = {k * eta:<5.3g} relative gap {gap:6.3f} (k*eta/2 = {k * eta / 2:5.3f})   distance to w*: "
          f"{dist_small:5.2f} after 8 small steps, {dist_big:5.2f} after 1 big step "
          f"(started at {np.linalg.norm(w_start - 1.0):.2f})")

# %% [markdown]
# The curvatures lie between about 0.5 and 1.6, around 1 on average, so the relative gap
# should be close to $\frac{1}{2}k\eta$ while that is small, and it is (about 1%, 4% and
# 22%). The largest curvature, 1.57, puts the stability limit of the big step at
# $2/1.57 \approx 1.27$. At $k\eta = 1.6$ the big step is past it: it lands far from where
# the eight small ones went, and at $2.4$ it overshoots so much that it ends further from
# the minimum than it started, while the eight small steps, each well inside the stable
# range, still approach it.
#
# ## 2. Keep the noise constant: the square-root rule
#
# There is another way to choose the learning rate of the bigger batch. The noise in one
# update is $\eta\,(g_B - G)$: the minibatch gradient's error, scaled by the learning rate.
# Its covariance is $\eta^2 \Sigma / B$. Instead of matching the *distance* that $k$ small
# steps travel, one can ask that a single update be exactly as noisy as before.
#
# **Exercise (1 point).** Write `noise_matched_lr(base_lr, base_batch, batch)`: the learning
# rate for batches of `batch` examples whose update has the same noise covariance as an
# update with `base_lr` on batches of `base_batch`. Work out how it must grow with the
# batch before you write it.

# %% nbgrader={"grade_id": "noise_matched_lr", "solution": true}
def noise_matched_lr(base_lr, base_batch, batch):
    """The learning rate whose updates, on batches of `batch` examples, are as noisy as those
    of `base_lr` on batches of `base_batch`."""
    ### BEGIN SOLUTION
    return base_lr * math.sqrt(batch / base_batch)
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_noise_matched_lr", "grade": true, "points": 1}
import math

from lrcourse.checks import assert_close, call, run_tests


def keeps_update_variance(lr):
    """noise_matched_lr(0.02, 16, 64): lr**2 / 64 must equal 0.02**2 / 16."""
    assert_close(lr ** 2 / 64, 0.02 ** 2 / 16, "noise_matched_lr(0.02, 16, 64)**2 / 64",
                 hint="the update's covariance, lr**2 * Sigma / batch, must come out the same as "
                      "base_lr**2 * Sigma / base_batch; solve that for lr")


tests = [
    call("noise_matched_lr", 0.001, 32, 32).expect(0.001, hint="the same batch size keeps the same learning rate"),
    call("noise_matched_lr", 0.02, 16, 64).check(keeps_update_variance),
]
### BEGIN HIDDEN TESTS
tests += [
    call("noise_matched_lr", 0.001, 32, 128).expect(
        0.002, hint="set lr**2 * Sigma / batch equal to base_lr**2 * Sigma / base_batch and solve for lr"),
    call("noise_matched_lr", 0.003, 64, 16).expect(
        0.0015, hint="a smaller batch makes the gradient noisier, so the learning rate must shrink"),
    call("noise_matched_lr", 0.01, 100, 300).expect(
        0.01 * math.sqrt(3), hint="the factor batch / base_batch need not be a whole number"),
    call("noise_matched_lr", 2, 9, 4).expect(4 / 3, hint="use true division, not //"),  # integer arguments
    call("noise_matched_lr", 1e-3, 8, 8 * 10**6).expect(
        1.0, hint="the covariance lr**2 * Sigma / batch must stay the same, however large the batch"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# Matching $\eta'^2\,\Sigma/(kB) = \eta^2\,\Sigma/B$ gives $\eta' = \sqrt{k}\,\eta$: when the
# batch grows $k$ times, multiply the learning rate by $\sqrt{k}$. This is the
# **square-root rule**, the variance argument that Krizhevsky (2014, arXiv:1404.5997) gave
# for it.
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
# For Adam the square-root rule is what the linear rule is for SGD. This sketch is only a
# heuristic; Malladi et al. (2022, arXiv:2205.10287, "On the SDEs and Scaling Rules for
# Adaptive Gradient Algorithms") derived the rule properly, from stochastic differential
# equations that approximate RMSprop and Adam. Their full rule, for a batch $k$ times
# larger, also moves Adam's other hyperparameters: $1 - \beta_1$ and $1 - \beta_2$ grow
# $k$ times and $\epsilon$ shrinks $\sqrt{k}$ times. They validated it experimentally on
# vision and language models.
# This notebook trains with SGD only; its experiment shows the SGD half of the story.
#
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
# noise makes the punishment larger for a small batch. The best learning rate is the bottom
# of this parabola. Two numbers describe it:
#
# * $\eta_{\max}$, the best learning rate with the exact gradient (an infinite batch, no
#   noise term);
# * $B_{\text{noise}} = \operatorname{tr}(H\Sigma) / (G^\top H G)$, a batch size: the one at
#   which the noise's part of the $\eta^2$ term, $\operatorname{tr}(H\Sigma)/B$, is as large
#   as the gradient's part, $G^\top H G$.
#
# **Exercise (2 points).** Find the learning rate that minimises $\mathbb{E}[\Delta L]$ for a
# batch of $B$ examples, and write it with $\eta_{\max}$ and $B_{\text{noise}}$ only (divide
# the top and the bottom of your answer by $G^\top H G$). Then write
# `noise_scale_lr(lr_max, b_noise, batch)`, which returns it. Check your formula before you
# run the tests: it must give `lr_max` at every batch size when `b_noise = 0`, tend to
# `lr_max` for a huge batch, and grow in proportion to the batch while the batch is much
# smaller than `b_noise` (the linear rule of section 1).

# %% nbgrader={"grade_id": "noise_scale_lr", "solution": true}
def noise_scale_lr(lr_max, b_noise, batch):
    """The best learning rate of the noisy quadratic model for batches of `batch` examples."""
    ### BEGIN SOLUTION
    return lr_max / (1 + b_noise / batch)
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_noise_scale_lr", "grade": true, "points": 2}
from lrcourse.checks import assert_close, call, code, run_tests

tests = [
    call("noise_scale_lr", 0.6, 0, 64).expect(
        0.6, hint="without gradient noise (b_noise = 0) every batch size can use lr_max"),
    call("noise_scale_lr", 1.0, 100, 100).expect(
        0.5, hint="set the derivative of the parabola to zero; then divide the top and the bottom by G^T H G"),
]
### BEGIN HIDDEN TESTS
def grows_linearly(pair):
    """(noise_scale_lr(0.7, 1e6, 20), noise_scale_lr(0.7, 1e6, 10)): their ratio must be about 2."""
    big, small = pair
    assert_close(big / small, 2.0, "noise_scale_lr(0.7, 1e6, 20) / noise_scale_lr(0.7, 1e6, 10)", rtol=1e-4,
                 hint="far below b_noise the best LR grows linearly with the batch")


tests += [
    call("noise_scale_lr", 0.4, 300, 100).expect(
        0.1, hint="the noise term adds tr(H Sigma) / B = b_noise * G^T H G / B to the curvature term"),
    call("noise_scale_lr", 0.8, 4900, 64).expect(
        0.8 / (1 + 4900 / 64), hint="a batch much smaller than b_noise: the noise term dominates the bottom"),
    call("noise_scale_lr", 0.3, 64, 1024).expect(
        0.3 / (1 + 1 / 16), hint="a batch much larger than b_noise gets close to lr_max, but stays below it"),
    call("noise_scale_lr", 0.5, 250, 10**12).expect(
        0.5, rtol=1e-8, hint="for a huge batch the best LR tends to lr_max, not beyond"),
    call("noise_scale_lr", 2, 3, 2).expect(0.8, hint="use true division, not //"),  # integer arguments
    code("noise_scale_lr(0.7, 1e6, 20), noise_scale_lr(0.7, 1e6, 10)",
         "noise_scale_lr(0.7, 1e6, 20) and noise_scale_lr(0.7, 1e6, 10)").check(grows_linearly),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# Setting the derivative to zero gives
#
# $$ \eta_{\text{best}}(B) = \frac{|G|^2}{G^\top H G + \operatorname{tr}(H\Sigma)/B}
#  = \frac{\eta_{\max}}{1 + B_{\text{noise}}/B},
#  \qquad \eta_{\max} = \frac{|G|^2}{G^\top H G} , $$
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
# Shallue et al. (2018, arXiv:1811.03600, "Measuring the Effects of Data Parallelism on
# Neural Network Training") measured the number of steps needed to reach a target as a
# function of the batch size, each batch size with its own tuned learning rate, on many
# models and data sets, and found exactly these three regimes, with the place of the bend
# depending on the model and the data. Section 5 draws their picture for the digits network.
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
# The three rules side by side, all starting from the same learning rate at a batch of 8.
# For the noise-scale curve we take $B_{\text{noise}} = 256$ and pick $\eta_{\max}$ so that
# it passes through the same point; the linear rule is its tangent for small batches.

# %% tags=["illustration"]
batches = np.geomspace(8, 8192, 60)
base_lr, base_batch, b_noise = 0.02, 8, 256
lr_max = base_lr * (1 + b_noise / base_batch)  # noise_scale_lr(lr_max, b_noise, 8) = base_lr
fig, ax = plt.subplots(figsize=(7, 4.5))
ax.plot(batches, [linear_scaled_lr(base_lr, base_batch, b) for b in batches], label="linear rule (yours)")
ax.plot(batches, [noise_matched_lr(base_lr, base_batch, b) for b in batches], label="square-root rule (yours)")
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
# The squared norm falls with the batch size along a line in $1/B$, whose intercept is the
# signal $|G|^2$ and whose slope is the noise $\operatorname{tr}(\Sigma)$. Two unknowns: so
# measure at two batch sizes, $B_{\text{small}} < B_{\text{big}}$, and solve the two
# equations. This is McCandlish et al.'s two-batch estimator. In data-parallel training it
# costs nothing: each worker's gradient is a small batch and their average, which the
# workers compute anyway, is a big one.
#
# **Exercise (2 points).** Write `noise_scale_two_batch(g_small_sq, g_big_sq, b_small, b_big)`:
# given the squared norms of gradients measured at batch sizes `b_small` and `b_big` (or
# their averages over many batches), solve the two equations above for $|G|^2$ and
# $\operatorname{tr}(\Sigma)$ and return the estimate of $B_{\text{simple}}$. Raise
# `ValueError` unless `b_small < b_big`: two measurements at the same batch size cannot tell
# the signal from the noise.

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

from lrcourse.noise import expected_sq_norm, regression_grads, regression_noise  # noqa: F401 (the cases name it)

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
        hint="solve E|g_B|^2 = |G|^2 + tr(Sigma) / B at both batch sizes; check |G|^2 and tr(Sigma) "
             "separately on a case you can do by hand")
    for d_, dist_, sigma_, b_s, b_b in ((5, 0.3, 2.0, 1, 2), (40, 2.0, 0.5, 16, 1024), (3, 1.0, 0.0, 7, 9),
                                        (20, 0.1, 1.0, 32, 10**7))]
tests += [call("noise_scale_two_batch", 12, 4, 4, 20).expect(20.0, hint="use true division")]  # integers
tests += [call("noise_scale_two_batch", *args).raises(ValueError, hint="b_small must be < b_big")
          for args in ((4.0, 12.0, 20, 4), (1.0, 1.0, 8, 8))]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# Multiplying each equation by its $B$ and subtracting removes the trace; subtracting them
# as they are removes $|G|^2$:
#
# $$ |G|^2 \approx \frac{B_{\text{big}}\,|g_{\text{big}}|^2 - B_{\text{small}}\,|g_{\text{small}}|^2}{B_{\text{big}} - B_{\text{small}}},
#  \qquad
#  \operatorname{tr}(\Sigma) \approx \frac{|g_{\text{small}}|^2 - |g_{\text{big}}|^2}{1/B_{\text{small}} - 1/B_{\text{big}}} , $$
#
# and $B_{\text{simple}}$ is their ratio. Each estimate is unbiased if the squared norms
# are; a single measurement is noisy, though, and can even give a negative $|G|^2$ when the
# noise swamps the signal, so in practice both squared norms are averaged over many batches
# first.
#
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

# %% tags=["illustration"]
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
# ## 5. Batch size on the digits network, measured
#
# Now the digits network (64-128-128-10, SGD with momentum 0.9) on a **fixed budget of
# examples**: every run sees 19,200 training images, so a batch of 8 takes 2,400 updates and
# a batch of 1,024 takes 19 (19,200 / 1,024 = 18.75, rounded).
#
# Keep the size of the data in mind: the training set has 1,437 images, so a batch of 1,024
# is 71% of it. Such a batch gives almost the full-data gradient, and with 19 updates the run
# sees each image about 13 times. With that many passes the network can memorise the
# training set, so we judge every run on the **validation loss**: the cross-entropy on the
# 360 held-out images that no run ever trains on.
#
# For each batch size $B$ we train at learning rates on a grid that starts at the linear
# rule's prediction from `0.0025` at $B = 8$ (4 to 8 times below the fastest learning rate
# there, so safely stable) and doubles up to 16 times that, plus the learning rate of the
# square-root rule from the same start. We use a constant learning rate, with no warmup, so
# that the batch size and the learning rate are the only things that change. Each run
# records its validation loss about 100 times (after every update if it has fewer than 150),
# and we ask two questions:
#
# * **How many steps does it take to reach a validation loss of 0.2?** For each batch size
#   we take the learning rate of the grid that gets there first. This is the measurement of
#   Shallue et al.: steps to a target against batch size, each batch size with its own best
#   learning rate. The target must be one that every batch size reaches; 0.2 is (the best
#   run at $B = 1{,}024$ ends between 0.14 and 0.19), and so is every loss above it.
# * **Where does each run end?** The validation loss after all 19,200 examples.
#
# The copies for one batch size (all learning rates, all seeds) train together with
# `lrcourse.batched.train_batched`, which stacks their weights and gives the results of
# separate `lrcourse.train` runs (to float rounding), several times faster.

# %% nbgrader={"grade_id": "experiment_settings", "locked": true}
BUDGET = 19_200  # training examples per run, whatever the batch size
BASE_LR, BASE_BATCH = 0.0025, 8
BATCHES = [8, 16, 32, 64, 128, 256, 512, 1024]
GRID = [1.0, 2.0, 4.0, 8.0, 16.0]  # multiples of the linear rule's LR
SEEDS = [0, 1, 2]
TARGET = 0.2  # validation loss to reach: every batch size gets there at its best LR
if lrcourse.quick_mode():
    BATCHES, GRID, SEEDS = [64, 256, 1024], [1.0, 2.0, 4.0, 8.0], [0]

# %% tags=["illustration"]
digits = lrcourse.load_digits(device)


def key(lr):
    """A learning rate rounded to 12 digits, so that one computed two ways is one dict key."""
    return float(f"{lr:.12g}")


def steps_to_target(history):
    """The first evaluated step at which the validation loss is at most TARGET (inf if never)."""
    return next((step for step, loss in zip(history.val_steps, history.val_loss) if loss <= TARGET), math.inf)


def final_val_loss(history, steps):
    """The validation loss after the last update (inf if the run diverged before it)."""
    if history.diverged or not history.val_steps or history.val_steps[-1] != steps:
        return math.inf
    return history.val_loss[-1] if math.isfinite(history.val_loss[-1]) else math.inf


results = {}  # batch -> arrays (seeds x LRs) of steps to TARGET and final validation losses
for batch in BATCHES:
    steps = round(BUDGET / batch)
    rules = {"linear": linear_scaled_lr(BASE_LR, BASE_BATCH, batch),
             "sqrt": noise_matched_lr(BASE_LR, BASE_BATCH, batch)}
    grid = [linear_scaled_lr(BASE_LR, BASE_BATCH, batch) * m for m in GRID]
    lrs = sorted({key(lr) for lr in [*grid, *rules.values()]})  # each distinct LR once
    runs = [(seed, lr) for seed in SEEDS for lr in lrs]
    histories = dict(zip(runs, train_batched(
        [lr for _, lr in runs], steps, data=digits, batch_size=batch, seeds=[seed for seed, _ in runs],
        device=device, eval_every=max(1, round(steps / 100)))))  # about 100 evaluations per run

    def table(measure, lr_list):
        return np.array([[measure(histories[seed, key(lr)]) for lr in lr_list] for seed in SEEDS])

    r = results[batch] = dict(
        grid=np.array(grid), steps=steps,
        to_target=table(steps_to_target, grid), final=table(lambda h: final_val_loss(h, steps), grid),
        **{f"{name}_to_target": table(steps_to_target, [lr])[:, 0] for name, lr in rules.items()},
        **{f"{name}_final": table(lambda h: final_val_loss(h, steps), [lr])[:, 0] for name, lr in rules.items()})
    fastest = np.argmin(r["to_target"], axis=1)
    print(f"B = {batch:4d} ({steps:4d} steps): steps to loss {TARGET} at the fastest LR of the grid "
          + ", ".join(f"{r['to_target'][i, j]:.0f} (LR {grid[j]:.3g})" for i, j in enumerate(fastest))
          + ";  linear rule " + ", ".join(f"{v:.0f}" for v in r["linear_to_target"])
          + ";  square-root rule " + ", ".join(f"{v:.0f}" for v in r["sqrt_to_target"]))


# %% [markdown]
# The cell below draws four views of these runs:
#
# * **top left**: steps to reach the target against the batch size, at the fastest learning
#   rate of the grid (small dots: each seed; large dots: their geometric mean), at the
#   learning rates of the two rules from `0.0025` at $B = 8$, and the line of perfect
#   scaling; and a fit of the curve that section 3 predicts, $S_{\min}(1 + B_{\text{noise}}/B)$
#   steps (why this shape: see below), computed with your `noise_scale_lr`;
# * **top right**: the fastest learning rate of the grid for each batch size, against the
#   predictions of your `linear_scaled_lr` and `noise_matched_lr` from the first point;
# * **bottom left**: final validation loss against the learning rate *divided by the linear
#   rule's factor* $B/8$, one curve per batch size (the median over seeds). If the linear
#   rule held exactly, all curves would lie on top of each other;
# * **bottom right**: the final validation loss at the best learning rate of the grid, and
#   at the learning rates of the two rules.

# %% tags=["illustration"]
def fit_noise_scale(batches, steps):
    """s_min and b_noise of steps = s_min * (1 + b_noise / B) that best fit the measured steps
    (least squares on the logarithms). 1 / (1 + b_noise / B) is noise_scale_lr(1, b_noise, B)."""
    best_fit = None
    for b in np.geomspace(1, 1e5, 801):
        shape = np.array([1 / noise_scale_lr(1.0, b, batch) for batch in batches])
        log_s_min = np.mean(np.log(steps) - np.log(shape))
        err = np.mean((np.log(steps) - log_s_min - np.log(shape)) ** 2)
        if best_fit is None or err < best_fit[0]:
            best_fit = (err, math.exp(log_s_min), b)
    return best_fit[1], best_fit[2]


def geo_mean(values, axis=-1):
    return np.exp(np.log(values).mean(axis=axis))


batch_arr = np.array(BATCHES, dtype=float)
fastest_steps = np.array([results[b]["to_target"].min(axis=1) for b in BATCHES])  # batches x seeds
fastest_lr = np.array([results[b]["grid"][results[b]["to_target"].argmin(axis=1)] for b in BATCHES])
s_min, fit_b_noise = fit_noise_scale(BATCHES, geo_mean(fastest_steps))

fig, ((ax_steps, ax_lr), (ax_cliff, ax_final)) = plt.subplots(2, 2, figsize=(13, 10))
ax_steps.plot(np.repeat(batch_arr, len(SEEDS)), fastest_steps.ravel(), ".", color="gray", markersize=5)
ax_steps.plot(batch_arr, geo_mean(fastest_steps), "o-", color="black", label="fastest LR of the grid")
for name, label, color in (("linear", "linear rule from 0.0025 at B = 8", "tab:blue"),
                           ("sqrt", "square-root rule from 0.0025", "tab:orange")):
    to_target = geo_mean(np.array([results[b][f"{name}_to_target"] for b in BATCHES]))
    to_target[~np.isfinite(to_target)] = np.nan  # a rule that never reaches the target leaves a gap
    ax_steps.plot(batch_arr, to_target, "s-", color=color, markersize=4, label=label + " (missing: never)")
ax_steps.plot(batch_arr, geo_mean(fastest_steps)[0] * BATCHES[0] / batch_arr, ":", color="gray",
              label="perfect scaling (half the steps per doubling)")
fine = np.geomspace(BATCHES[0], BATCHES[-1], 100)
ax_steps.plot(fine, [s_min / noise_scale_lr(1.0, fit_b_noise, b) for b in fine], "--", color="tab:green",
              label=f"fit: {s_min:.0f} x (1 + {fit_b_noise:.0f} / B)")
ax_steps.set(xscale="log", yscale="log", xlabel="batch size B", ylabel=f"steps to validation loss {TARGET}",
             title="steps to a target vs batch size (Shallue et al.'s picture)")
ax_steps.legend(fontsize="small")

ax_lr.plot(np.repeat(batch_arr, len(SEEDS)), fastest_lr.ravel(), ".", color="gray", markersize=5)
ax_lr.plot(batch_arr, geo_mean(fastest_lr), "o", color="black", markersize=8, label="fastest LR of the grid")
ax_lr.plot(fine, [linear_scaled_lr(geo_mean(fastest_lr)[0], BATCHES[0], b) for b in fine], color="tab:blue",
           label="linear rule from the first point")
ax_lr.plot(fine, [noise_matched_lr(geo_mean(fastest_lr)[0], BATCHES[0], b) for b in fine], color="tab:orange",
           label="square-root rule from the first point")
ax_lr.set(xscale="log", yscale="log", xlabel="batch size B", ylabel="learning rate",
          title=f"the learning rate that reaches loss {TARGET} fastest")
ax_lr.legend(fontsize="small")

colors = plt.cm.viridis(np.linspace(0, 0.9, len(BATCHES)))
for batch, color in zip(BATCHES, colors):
    r = results[batch]
    loss = np.median(np.minimum(r["final"], 10.0), axis=0)  # a diverged run is drawn at 10
    ax_cliff.plot(r["grid"] * BASE_BATCH / batch, loss, "o-", color=color, markersize=3, label=f"B = {batch}")
ax_cliff.set(xscale="log", yscale="log", xlabel="learning rate x 8 / B",
             ylabel="final validation loss (diverged: 10)", title="final loss vs LR rescaled by the linear rule")
ax_cliff.set_xticks([BASE_LR * m for m in GRID], [f"{BASE_LR * m:.2g}" for m in GRID])
ax_cliff.minorticks_off()
ax_cliff.legend(fontsize="small", ncol=2)

for name, label, color in (("best", "best LR of the grid", "black"), ("linear", "linear rule", "tab:blue"),
                           ("sqrt", "square-root rule", "tab:orange")):
    values = np.array([results[b]["final"].min(axis=1) if name == "best" else results[b][f"{name}_final"]
                       for b in BATCHES])
    values = np.minimum(values, 10.0)
    ax_final.plot(batch_arr, geo_mean(values), "o-", color=color, label=label)
    ax_final.fill_between(batch_arr, values.min(axis=1), values.max(axis=1), color=color, alpha=0.2)
ax_final.axhline(math.log(10), color="gray", linestyle="--", linewidth=1, label="chance (ln 10)")
ax_final.set(xscale="log", yscale="log", xlabel="batch size B", ylabel="final validation loss",
             title=f"after {BUDGET:,} examples ({len(SEEDS)} seeds: geometric mean and range)")
ax_final.legend(fontsize="small")
for ax in (ax_steps, ax_lr, ax_cliff, ax_final):
    ax.grid(True, which="major", alpha=0.3)
fig.tight_layout()

print(f"steps to validation loss {TARGET} at the fastest LR (geometric mean over seeds): "
      + ", ".join(f"B={b}: {s:.0f}" for b, s in zip(BATCHES, geo_mean(fastest_steps))))
print(f"fitted: steps = {s_min:.1f} x (1 + {fit_b_noise:.0f} / B)")
for b in BATCHES:
    r = results[b]
    print(f"B = {b:4d}: final validation loss at the best LR {', '.join(f'{v:.3f}' for v in r['final'].min(axis=1))};"
          f"   linear rule {', '.join(f'{v:.3f}' for v in r['linear_final'])};"
          f"   square-root rule {', '.join(f'{v:.3f}' for v in r['sqrt_final'])}")

# %% [markdown]
# What the runs show (measured on two CPU cores with seeds 0, 1, 2, and again with seeds 3, 4,
# 5: every statement below held for all six; quick mode, used for grading, runs a smaller
# version of the same):
#
# * **Perfect scaling, then diminishing returns, then none** (top left). At the fastest
#   learning rate of the grid, doubling the batch from 8 to 16 roughly halves the steps
#   to a validation loss of 0.2 (from 136 to 70 steps, and from 149 to 82, in the geometric
#   means of the two sets of seeds). After that each doubling saves less: 8 times the batch
#   from 16 to 128 saves only about 3 times the steps, and 4 times the batch from 256 to
#   1,024 only 1.3-1.5 times; at 512 and 1,024 about 11 to 17 steps remain, whatever the
#   batch. This is Shallue et al.'s picture in miniature. The curve
#   $S_{\min}\,(1 + B_{\text{noise}}/B)$ fits it well, with $S_{\min}$ of 13-15 steps and
#   $B_{\text{noise}}$ between 70 and 95 depending on the seeds. That shape follows from
#   section 3: at its best learning rate a step removes
#   $\Delta L_{\max}/(1 + B_{\text{noise}}/B)$ of the loss, so a fixed drop of the loss
#   takes $1 + B_{\text{noise}}/B$ times the steps of an infinite batch.
# * **The fastest learning rate grows linearly at first, then slower** (top right). From 8
#   to 128, 16 times the batch, it grows 8 to 16 times (from 0.01-0.02 to 0.16); from 128 to
#   1,024, 8 times the batch, only 2 to 4 times, closer to the square-root rule. (The grid
#   doubles the learning rate, so each measurement is good to a factor of 2.)
# * **The bottom left plot shows why.** Rescaled by the linear rule, the curves for batches
#   8 to 64 lie nearly on top of each other, and so does the cliff where the median run
#   ends at a loss of 2 or more (chance is $\ln 10 \approx 2.3$): between 8 and 16 times
#   the linear rule's learning rate from 0.0025, that is between 0.02 and 0.04 on the
#   rescaled axis. There the linear rule is exact. At 128 the curve already climbs before
#   the cliff, and for larger batches the cliff slides to the left: to between 4 and 8
#   times at 256 and 512, and between 2 and 4 times at 1,024. The largest stable learning
#   rate stops growing in proportion to the batch and flattens out near the limit set by
#   the curvature (notebook 01 and section 1), which no batch size moves. The fastest
#   learning rate, just below the cliff, follows it.
# * **Held-out loss at the end of the budget** (bottom right). From 8 to 128 every batch
#   size ends between 0.04 and 0.08 at its best learning rate; 0.07-0.09 at 256, 0.08-0.12 at
#   512 and 0.14-0.18 at 1,024: two to three times the small batches' loss, after 19
#   updates. At 256 and 512 the lowest learning rate of the grid (the linear rule's) is
#   also the best one for the final loss: every larger one ends worse.
# * **The rules from a safe start.** From `0.0025` at $B = 8$, the linear rule nearly halves
#   the steps to the target with each doubling up to $B = 64$ (from 600-670 to 87-96), then
#   saves less (about 52, 33, 23 and 16 steps at 128-1,024; at 1,024 one seed in six no
#   longer gets there), and it ends between 0.06 and 0.09 up to $B = 256$. The square-root
#   rule falls behind from the first doubling, as section 2 predicts for SGD: from
#   $B = 128$ on it never reaches 0.2, and at 1,024 it ends at 1.8-1.9, barely below the
#   loss it started from.
#
# Note that the linear rule from the *fastest* learning rate at $B = 8$ (the blue line in
# the top right plot) walks over the cliff early, around $B = 64$-$128$ here: that learning
# rate sits just below the cliff, and the cliff stops moving linearly. A base learning rate
# with some margin scales further. Goyal et al.'s recipe works at a base learning rate that
# was tuned for batch 256, with a warmup that protects the first updates, and it too stops
# working at a batch of about 8k.
#
# ## 6. The gradient noise scale of the digits network
#
# Is $B_{\text{noise}}$ of 70-95 a sensible number for this network? Let us measure
# $B_{\text{simple}}$ with your `noise_scale_two_batch`, at several points of a training run
# (batch 64, learning rate 0.02). At each point we average the squared gradient norm over 64
# batches of 32 and 16 batches of 512, all drawn at random with replacement from the training
# set, so that their examples are independent as the estimator assumes.

# %% tags=["illustration"]
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


NOISE_STEPS = [0, 25, 50, 100, 200] if not lrcourse.quick_mode() else [0, 50, 100]
fig, ax = plt.subplots(figsize=(7, 4.5))
for seed in SEEDS:
    points = []
    for steps in NOISE_STEPS:
        model, loss = trained_model(steps, seed)
        points.append((loss, measure_noise_scale(model, seed)))
    losses_, b_simple = np.array(points).T
    ax.plot(losses_, b_simple, "o-", label=f"seed {seed}")
    print(f"seed {seed}: " + ",  ".join(f"step {s}: loss {loss:.2f}, B_simple {b:.0f}"
                                        for s, loss, b in zip(NOISE_STEPS, losses_, b_simple)))
ax.axhline(fit_b_noise, color="tab:green", linestyle="--",
           label=f"B_noise fitted to the steps in section 5 ({fit_b_noise:.0f})")
ax.set(xscale="log", yscale="log", xlabel="training loss (it falls from left to right)",
       ylabel="$B_{simple}$ (your two-batch estimate)", title="the gradient noise scale grows during training")
ax.invert_xaxis()
ax.legend(fontsize="small")
ax.grid(True, which="major", alpha=0.3)
fig.tight_layout()

# %% [markdown]
# At initialisation $B_{\text{simple}}$ is between 62 and 71; it dips to 40-50 during the
# first fast fall of the loss and then climbs: to 85-150 when the training loss is 0.6-0.7, to
# 280-650 at 0.13-0.15, and to between several hundred and several thousand at 0.04-0.05
# (where the estimates also get noisy: $|G|^2$ is small). The $B_{\text{noise}}$ fitted to
# the steps lies inside this range, near the values the noise scale takes while most of the
# loss is removed, on the way to the target of section 5. That is what the simple model
# predicts, with one caveat it cannot capture by itself: a run is not one step, and which
# part of training limits the batch size depends on the target. McCandlish et al. found
# that the critical batch size grows during training (so a lower target, reached later,
# tolerates larger batches) and that it is larger for harder tasks.
#
# ## Summary
#
# * **Linear rule** (SGD): $k$ steps of $\eta$ on batches of $B$ are, to first order, one step
#   of $k\eta$ on a batch of $kB$: same mean and same noise. It holds while the big step
#   stays well below $1/\lambda$ and the gradient changes slowly; Goyal et al. trained
#   ResNet-50 at batch 8k with it (and a 5-epoch warmup) at almost the error of batch 256.
# * **Square-root rule**: keeps the noise of one update constant. For SGD that under-steps;
#   for Adam, whose update is normalised by the gradient noise, it is the rule that keeps
#   both signal and noise matched (Malladi et al., 2022, who also scale Adam's betas and
#   epsilon).
# * **Where linear scaling ends**: the best learning rate of a noisy quadratic is
#   $\eta_{\max}/(1 + B_{\text{noise}}/B)$, linear only while $B \ll B_{\text{noise}}$, and
#   the steps a run needs behave like $S_{\min}(1 + B_{\text{noise}}/B)$: perfect scaling,
#   diminishing returns, then none (Shallue et al., 2018). The gradient noise scale
#   $B_{\text{simple}} = \operatorname{tr}(\Sigma)/|G|^2$ can be estimated from two batch
#   sizes or from per-example gradients, and it grows during training.
# * **On the digits network** at a fixed budget of 19,200 examples: the steps to a
#   validation loss of 0.2 roughly halve from batch 8 to 16, fall more slowly up to 256 and hardly
#   at all beyond, fitted by $B_{\text{noise}}$ of 70-95, a value the measured noise scale
#   passes through early in training. The fastest learning rate grows nearly in proportion
#   to the batch up to 128 and more slowly after that, because the cliff where training
#   blows up stops moving. The linear rule from a safe base learning rate holds up to 64-128;
#   the square-root rule, right for Adam, is far too timid for SGD.
#
# How the best learning rate moves when the *model* grows, rather than the batch, is the
# subject of notebook 11 · The learning rate and model size.
#
# Next, **07 · Diagnosing training**: telling a diverged, a stalled and a healthy run apart
# automatically, and choosing a learning rate with a range test.
