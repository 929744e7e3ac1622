# %% [markdown]
# # 07 · Diagnosing training: divergence and stalls
#
# Notebook 01 showed that a constant learning rate can make a run stall, train, or blow up,
# and we told the three apart by looking at plots. Looking does not scale: a sweep of
# dozens of runs, a job that fails at 3 a.m., or a tuning tool that must decide on its own
# which runs to stop all need a rule a program can apply. And a sweep is expensive: one run
# per learning rate, times a few seeds, just to learn roughly where the good learning rates
# are. This notebook turns the three regimes into such rules, and then derives a way to find
# the scale of a good learning rate in a single run, the *learning rate range test*.
#
# **You will**
# 1. work out what each regime does to a loss curve, and turn that into three rules with
#    thresholds you can justify;
# 2. write `classify_run`, which labels a loss curve "diverged", "stalled" or "healthy";
# 3. derive the learning rate range test (Smith, 2017, arXiv:1506.01186) and write its
#    learning rates and a rule that reads a suggested learning rate off its loss curve;
# 4. classify a wide sweep of the digits network on several seeds, and check the range
#    test's one-run suggestion against the sweep.
#
# Exercises: `classify_run` (3 points), `lr_range_test_lrs` (1), `suggest_lr` (2).

# %% nbgrader={"grade_id": "setup", "locked": true}
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import lrcourse
from lrcourse.checks import assert_close, assert_true

lrcourse.seed_everything(0)
device = lrcourse.pick_device()
print(f"PyTorch {torch.__version__}, training on: {device}")
if lrcourse.quick_mode():
    print("Quick mode: the experiments use fewer learning rates and seeds (grading or CI).")

# %% [markdown]
# ## 1. What each regime does to a loss curve
#
# Go back to the parabola of notebook 01. Along a direction of curvature $\lambda$, each
# update multiplies the distance to the minimum by $r = 1 - \eta\lambda$, and the loss, which
# is proportional to the squared distance, by $r^2$. A network is not a parabola, but near
# any point its loss behaves like one locally, so the same factor tells us what to look for.
#
# **Diverged.** If $\eta$ is above the stability limit for some direction, $|r| > 1$ there
# and that part of the error grows geometrically: the loss climbs, fast. Two endings are
# common. Either the numbers overflow, the loss becomes `inf`, and the next arithmetic on
# it (`inf - inf`, `0 * inf`) gives `NaN`; `lrcourse.train` then stops the run and the last
# entry of `History.loss` is that non-finite value. Or, as notebook 01 showed at `lr=0.5`,
# the huge updates kill the ReLUs, the network gives every input the same output, and the
# loss falls back to the loss of a constant guess: $\ln 10 \approx 2.30$ for ten balanced
# classes. We will call that second ending a *quietly dead* run. It never shows a `NaN`,
# and at the end its loss is about where it started. What both endings share is the way
# there: **the loss rose far above its starting value**. A run that learns does not do
# that. Its minibatch loss is noisy, but it starts at the loss of an untrained network and
# goes down; a few percent above the start is already a lot for a healthy run.
#
# **Stalled.** If $\eta$ is tiny, $r$ is just below 1 in every direction and after $T$
# updates the loss has shrunk by about $(1-\eta\lambda)^{2T} \approx e^{-2\eta\lambda T}$,
# which is close to 1 whenever $\eta\lambda T$ is small. Nothing is wrong with such a run
# except that it gets nowhere within its budget: **its loss at the end is still close to
# its loss at the start**.
#
# **Healthy** is everything else: no blow-up, and real progress.
#
# Turned into rules, for the list `losses` of minibatch losses of one run (update 0 first):
#
# 1. if any loss is not finite (`inf` or `NaN`): **diverged**;
# 2. if the largest loss is above `explode_factor` times the first loss: **diverged**;
# 3. if the *final loss*, the mean of the last `window` losses, is above `stall_fraction`
#    times the first loss: **stalled**;
# 4. otherwise: **healthy**.
#
# A few decisions hide in these lines; here is why each is made the way it is.
#
# * **The order of the rules matters.** A quietly dead run ends at about $\ln 10$, which is
#   also where it started, so rule 3 alone would call it stalled. That is the worst possible
#   diagnosis: the cure for a stall is a *larger* learning rate, and this run needs a smaller
#   one. Checking for the blow-up first classifies it correctly, as diverged, by its spike.
# * **Why compare with the first loss, and not with the best loss so far?** "The loss rose
#   far above its minimum" sounds like a better test of a blow-up, but the minibatch loss of
#   a healthy run that has fitted its training data jumps between, say, $10^{-5}$ and
#   $10^{-3}$ from one batch to the next: up to a couple of hundred times its running
#   minimum, further than many real blow-ups go. Section 4 measures it. The first loss is
#   the loss of the untrained network, a stable reference that a healthy run has no reason
#   to exceed.
# * **Why average the end of the run?** One minibatch loss is noisy; the mean of the last
#   `window` losses is not. We use 20, as `History.final_loss` does. If the run has fewer
#   than `window` losses, take the mean of all of them.
# * **"Above" means strictly above.** A loss exactly at a threshold is not flagged. (On a
#   real curve a loss never lands exactly on a threshold, so this convention only decides
#   hand-made examples; the thresholds themselves are what matter.)
#
# The thresholds are keyword arguments, so you can state them explicitly for your problem.
# The defaults, `explode_factor=1.5` and `stall_fraction=0.5`, are for what this course
# trains: a classifier trained from scratch, whose loss starts at the loss of a guess and,
# in a healthy run, falls by a large factor within the budget. A healthy run hardly ever
# rises above its first loss, and a run that has not even halved its loss has barely
# started. Section 4 measures the curves of a whole sweep on several seeds and places both
# thresholds in the middle of the gaps it finds. (Fine-tuning a trained model, whose loss
# starts low and should fall only a little, needs other values, for example a
# `stall_fraction` close to 1.)
#
# Fewer than two losses is not a curve: there is nothing to compare the first loss with.
# `classify_run` raises a `ValueError` for it.
#
# **Exercise (3 points).** Write `classify_run(losses, explode_factor=1.5, stall_fraction=0.5,
# window=20)`, which applies the four rules in order and returns the string `"diverged"`,
# `"stalled"` or `"healthy"`. `losses` may be a list, a tuple or a NumPy array of floats.
# Raise `ValueError` if it has fewer than 2 values.

# %% nbgrader={"grade_id": "classify_run", "solution": true}
def classify_run(losses, explode_factor=1.5, stall_fraction=0.5, window=20):
    """'diverged', 'stalled' or 'healthy' for a run's loss curve (update 0 first)."""
    ### BEGIN SOLUTION
    losses = np.asarray(losses, dtype=np.float64)
    if len(losses) < 2:
        raise ValueError(f"classify_run needs at least 2 losses, got {len(losses)}")
    if not np.isfinite(losses).all():
        return "diverged"
    first = losses[0]
    peak, explode_limit = losses.max(), explode_factor * first
    if peak > explode_limit:  # no-mutate: > or >=, the same on any real curve (the prose states the convention)
        return "diverged"
    final, stall_limit = losses[-window:].mean(), stall_fraction * first
    if final > stall_limit:  # no-mutate: > or >=, the same on any real curve (the prose states the convention)
        return "stalled"
    return "healthy"
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_classify_run", "grade": true, "points": 3}
import numpy as np

from lrcourse.checks import call, code, run_tests

tests = [
    code("classify_run([2.3 * 0.9**k for k in range(40)])", "classify_run(2.3 * 0.9**k for k = 0..39)").expect(
        "healthy",
        hint="the loss falls from 2.3 to about 0.04: no blow-up, and the final loss is far below half the first"),
    code("classify_run([2.3] * 50)", "classify_run([2.3] * 50)").expect(
        "stalled", hint="the mean of the last 20 losses is 2.3, above stall_fraction * first loss = 1.15"),
    call("classify_run", [2.3, 2.1, 5.0, float("nan")]).expect(
        "diverged", hint="any inf or NaN loss means the run diverged"),
    code("classify_run([2.3, 1.8, 9.0] + [2.3] * 30)", "classify_run([2.3, 1.8, 9.0, 2.3, 2.3, ...])").expect(
        "diverged",
        hint="the loss reached 9.0, above explode_factor * first loss = 3.45: a blow-up, even though the run "
             "ended where it started. Check for the blow-up before checking for a stall"),
    call("classify_run", [2.3]).raises(
        ValueError, hint="a single loss is not a curve: raise ValueError when there are fewer than 2 losses"),
]
### BEGIN HIDDEN TESTS
# Realistic curves of 300 minibatch losses, shaped like the digits runs of section 4.
rng = np.random.default_rng(6)
steps = np.arange(300)


def minibatch_noise(trend, size):
    """A minibatch loss around `trend`: a few percent of noise while the loss is high, up to a
    factor of tens once it is near zero (a batch at 1e-4 next to one at 1e-2)."""
    trend = np.asarray(trend, dtype=np.float64)
    spread = 0.03 + size * (1.0 - trend / trend[0]) ** 3
    noisy = trend * np.exp(spread * rng.standard_normal(len(trend)))
    noisy[0] = trend[0]
    return [float(v) for v in noisy]


healthy = minibatch_noise(2.3 * np.exp(-steps / 25.0) + 2e-3, 1.0)    # like lr = 0.1: down to about 1e-3
spike = minibatch_noise(2.3 * np.exp(-steps / 60.0) + 0.05, 0.4)      # like lr = 0.01 ...
spike[150:158] = [1.2, 3.0, 2.2, 1.1, 0.6, 0.3, 0.2, 0.12]            # ... with a spike it recovers from
slow = minibatch_noise(2.3 - 0.6 * steps / 300, 0.1)                  # like lr = 1e-3: falling, slowly
flat = minibatch_noise(np.full(300, 2.31), 0.0)                       # like lr = 1e-5
good_start = 2.3 * np.exp(-steps[:100] / 40.0)                        # trains well for 100 updates ...
blowup = good_start[-1] * 1.25 ** np.arange(1, 26)                    # ... then grows by 25% per update ...
dead = minibatch_noise(np.concatenate([good_start, blowup, np.full(175, 2.302)]), 0.0)  # ... and dies at ln 10
finetune = minibatch_noise(0.40 - 0.06 * (1 - np.exp(-steps / 80.0)), 0.0)  # fine-tuning: from 0.40 to 0.34
finetune_spike = finetune[:200] + [0.45, 0.55, 0.62, 0.5] + finetune[204:]  # ... rising 55% above its start
late = [2.3] * 290 + [0.1] * 10                                       # a long plateau, then a breakthrough
early_spike = [2.3, 3.3, 3.6, 3.0] + minibatch_noise(2.6 * np.exp(-steps[:296] / 40.0) + 0.02, 0.4)  # no warmup
tests += [
    call("classify_run", healthy).expect(
        "healthy", hint="near zero a minibatch loss jumps by large factors from one batch to the next; "
                        "that is noise, not a blow-up: compare with the first loss")
        .when_hidden("a noisy healthy run (its loss near zero jumps by large factors between batches) was not "
                     "called healthy: compare the largest loss with the first loss, not with the running minimum"),
    call("classify_run", np.array(spike)).expect(
        "healthy", hint="a spike that stays below explode_factor * first loss and recovers is not a blow-up")
        .when_hidden("a healthy run with a short spike it recovered from (still below explode_factor times the "
                     "first loss) was not called healthy; the losses came as a NumPy array"),
    call("classify_run", slow).expect(
        "stalled", hint="the loss is falling, but too slowly: the mean of the last 20 losses is still above half "
                        "the first loss")
        .when_hidden("a run whose loss falls slowly, ending at about three quarters of its first loss, was not "
                     "called stalled"),
    call("classify_run", tuple(flat)).expect("stalled", hint="a noisy flat curve made no progress")
        .when_hidden("a flat, noisy curve (given as a tuple) was not called stalled"),
    call("classify_run", healthy[:140] + [float("nan")]).expect(
        "diverged", hint="a run that trained well and then hit NaN diverged (lrcourse.train stops at the NaN)")
        .when_hidden("a run that trained well and then ended on a NaN was not called diverged"),
    call("classify_run", healthy[:90] + [float("inf")] + healthy[91:]).expect(
        "diverged", hint="an inf in the middle means the run blew up, whatever the log shows after it")
        .when_hidden("a curve with an inf in the middle, and finite losses after it, was not called diverged"),
    call("classify_run", dead).expect(
        "diverged", hint="it trained well, then blew up and ended quietly dead near ln 10: the spike gives it away, "
                         "even though the final loss alone looks like a stall")
        .when_hidden("a run that trained well, then blew up and ended quietly dead at ln 10, was not called "
                     "diverged: check for the blow-up before the stall"),
    call("classify_run", early_spike).expect(
        "diverged", hint="in its first updates the loss rose to 3.6, above 1.5 times the first loss 2.3: a blow-up "
                         "at the start (what warmup, notebook 04, prevents), even though the run recovered")
        .when_hidden("a run whose loss rose to more than 1.5 times its first loss in its first few updates, and "
                     "then recovered, was not called diverged: compare with the very first loss"),
    call("classify_run", [2.0, 1.5]).expect(
        "stalled", hint="with fewer losses than the window, the final loss is the mean of all of them: 1.75 > 1.0")
        .when_hidden("a curve shorter than the window: the final loss is the mean of all its losses"),
    call("classify_run", []).raises(ValueError, hint="an empty curve: raise ValueError")
        .when_hidden("an empty curve must raise ValueError"),
    # the thresholds are the caller's: fine-tuning a trained model
    call("classify_run", finetune).expect(
        "stalled", hint="with the default stall_fraction a fine-tuning curve (0.40 to 0.34) counts as stalled")
        .when_hidden("a fine-tuning curve that falls by 15% was not called stalled with the default thresholds"),
    call("classify_run", finetune, stall_fraction=0.9).expect(
        "healthy", hint="use the stall_fraction you are given: 0.34 is below 0.9 * 0.40")
        .when_hidden("with stall_fraction=0.9 a fine-tuning curve that falls by 15% is healthy: use the "
                     "stall_fraction you are given"),
    call("classify_run", finetune_spike, stall_fraction=0.9, explode_factor=1.25).expect(
        "diverged", hint="use the explode_factor you are given: 0.62 is above 1.25 * 0.40")
        .when_hidden("with explode_factor=1.25 a fine-tuning curve that rises 55% above its first loss diverged: "
                     "use the explode_factor you are given"),
    call("classify_run", finetune_spike, stall_fraction=0.9, explode_factor=2.0).expect(
        "healthy", hint="use the explode_factor you are given: 0.62 is below 2.0 * 0.40")
        .when_hidden("with explode_factor=2.0 a curve that rises 55% above its first loss is not a blow-up: use "
                     "the explode_factor you are given"),
    call("classify_run", late).expect(
        "stalled", hint="the last 20 losses are ten at 2.3 and ten at 0.1: their mean, 1.2, is above 1.15")
        .when_hidden("a long plateau that breaks through only in the last 10 updates: the default window of 20 "
                     "still averages ten plateau losses"),
    call("classify_run", late, window=10).expect(
        "healthy", hint="use the window you are given: the last 10 losses are all 0.1")
        .when_hidden("with window=10, a plateau that breaks through in the last 10 updates is healthy: use the "
                     "window you are given"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# ## 2. The learning rate range test
#
# A sweep answers "which learning rates work?" with one full run per learning rate. Smith
# (2017, arXiv:1506.01186, section 3.3) proposed a much cheaper probe: **one short run in
# which the learning rate grows at every update**, from far too small to far too large.
# Smith raised it *linearly* and read the *accuracy*; the version most people use today,
# fastai's `lr_find`, raises it geometrically and reads the loss, and so do we: record the
# loss. Early in that run each update is tiny and the loss barely
# moves: the stall regime. As the learning rate grows into the useful range the loss starts
# to fall, then falls fast. Once it passes the stability limit the loss turns around and
# explodes. Since the learning rate only grows, the update number is a learning rate axis,
# and one run sweeps through all three regimes of a sweep, in order.
#
# The interesting range spans several powers of ten (notebook 01's sweep: from `1e-4` to
# `3`), so the learning rate should grow **geometrically**: by the same factor every
# update, which gives every decade the same number of updates. For `num_steps` updates
# from `lr_start` to `lr_end`, make $\log \text{lr}$ a straight line in the update number $k$:
#
# $$ \log \text{lr}_k = \log \text{lr}_{\text{start}}
#    + \frac{k}{N - 1}\left(\log \text{lr}_{\text{end}} - \log \text{lr}_{\text{start}}\right)
# \quad\Longleftrightarrow\quad
# \text{lr}_k = \text{lr}_{\text{start}} \left(\frac{\text{lr}_{\text{end}}}{\text{lr}_{\text{start}}}\right)^{k/(N-1)},
# \qquad k = 0, 1, \dots, N - 1, $$
#
# where $N$ is `num_steps`. Update 0 uses exactly `lr_start`, the last update, $k = N - 1$,
# uses exactly `lr_end`, and each update multiplies the learning rate by
# $q = (\text{lr}_{\text{end}}/\text{lr}_{\text{start}})^{1/(N-1)}$. From `1e-5` to `10` in
# 300 updates, $q = 10^{6/299} \approx 1.047$: about 50 updates per decade.
#
# A range test needs at least two updates (a start and an end) and
# $0 < \text{lr}_{\text{start}} < \text{lr}_{\text{end}}$: the logarithm needs positive values,
# and a range that does not grow is not a range test.
#
# **Exercise (1 point).** Write `lr_range_test_lrs(lr_start, lr_end, num_steps)`, which
# returns the list of the `num_steps` learning rates above, update 0 first. Raise
# `ValueError` if `num_steps < 2`, or unless `0 < lr_start < lr_end`.

# %% nbgrader={"grade_id": "lr_range_test_lrs", "solution": true}
def lr_range_test_lrs(lr_start, lr_end, num_steps):
    """The learning rates of a range test: num_steps values growing geometrically from lr_start to lr_end."""
    ### BEGIN SOLUTION
    if num_steps < 2:
        raise ValueError(f"a range test needs at least 2 steps, got num_steps={num_steps}")
    if not 0 < lr_start < lr_end:
        raise ValueError(f"need 0 < lr_start < lr_end, got lr_start={lr_start}, lr_end={lr_end}")
    ratio = lr_end / lr_start
    return [lr_start * ratio ** (k / (num_steps - 1)) for k in range(num_steps)]
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_lr_range_test_lrs", "grade": true, "points": 1}
import numpy as np

from lrcourse.checks import assert_close, assert_true, call, run_tests


def n_values(expected, what, hint):
    """The result has len(expected) values, equal to expected."""
    def check(got):
        assert_true(got is not None and hasattr(got, "__len__") and len(got) == len(expected),
                    f"{what} returned {got!r}; expected {len(expected)} values")
        assert_close(got, expected, what, hint=hint)
    return check


tests = [
    call("lr_range_test_lrs", 1e-3, 1e-1, 3).check(
        n_values([1e-3, 1e-2, 1e-1], "lr_range_test_lrs(1e-3, 1e-1, 3)",
                 "update 0 uses lr_start, the last update lr_end, and each update multiplies by the same factor")),
    call("lr_range_test_lrs", 1e-4, 1.0, 5).expect(
        [1e-4, 1e-3, 1e-2, 1e-1, 1.0],
        hint="lr_start * (lr_end / lr_start) ** (k / (num_steps - 1)) for k = 0 .. num_steps - 1"),
    call("lr_range_test_lrs", 1e-3, 1e-1, 1).raises(
        ValueError, hint="a range test needs at least 2 updates: raise ValueError"),
]
### BEGIN HIDDEN TESTS
def check_300(got):
    """lr_range_test_lrs(1e-5, 10.0, 300): 300 values, each one the formula's, a constant ratio."""
    what = "lr_range_test_lrs(1e-5, 10.0, 300)"
    assert_true(hasattr(got, "__len__"), f"{what} returned {got!r}; expected 300 values")
    assert_true(len(got) == 300, f"{what} returned {len(got)} values; expected 300")
    assert_close(got, [1e-5 * 1e6 ** (k / 299) for k in range(300)], what,
                 hint="lr_start * (lr_end / lr_start) ** (k / (num_steps - 1))")
    ratios = np.asarray(got[1:], dtype=np.float64) / np.asarray(got[:-1], dtype=np.float64)
    assert_close(ratios, np.full(299, 1e6 ** (1 / 299)), f"the ratios lr[k + 1] / lr[k] of {what}",
                 hint="a geometric sequence: every update multiplies the LR by the same factor")


def per_decade(got):
    """From 1e-6 to 1 in 121 updates: 20 updates per decade, so update 20 * j uses exactly 10**(j - 6)."""
    what = "lr_range_test_lrs(1e-6, 1.0, 121)"
    assert_true(hasattr(got, "__len__") and len(got) == 121, f"{what} returned {got!r}; expected 121 values")
    assert_close([got[20 * j] for j in range(7)], [10.0 ** (j - 6) for j in range(7)],
                 f"updates 0, 20, ..., 120 of {what}",
                 hint="a geometric sweep gives every decade the same number of updates: here 20")


tests += [
    call("lr_range_test_lrs", 1e-5, 10.0, 300).check(check_300),
    call("lr_range_test_lrs", 0.5, 2.0, 2).expect([0.5, 2.0], hint="with 2 updates: lr_start, then lr_end"),
    # with integers
    call("lr_range_test_lrs", 1, 100, 3).expect(
        [1.0, 10.0, 100.0], hint="use true division: k / (num_steps - 1) must not be rounded"),
    call("lr_range_test_lrs", 0.02, 0.18, 3).expect(
        [0.02, 0.06, 0.18],
        hint="the middle value of a geometric sequence of 3 is the geometric mean sqrt(lr_start * lr_end)"),
    call("lr_range_test_lrs", 1e-6, 1.0, 121).check(per_decade),
    call("lr_range_test_lrs", 0.0, 1.0, 10).raises(
        ValueError, hint="lr_start must be > 0 (a geometric sequence cannot start at 0)"),
    call("lr_range_test_lrs", 0.1, 0.1, 10).raises(
        ValueError, hint="lr_end must be larger than lr_start: a constant LR is not a range test"),
    call("lr_range_test_lrs", 1.0, 1e-3, 10).raises(
        ValueError, hint="lr_end must be larger than lr_start: a range test grows the LR"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# ## 3. Reading a suggestion off the range test
#
# The range test gives a loss for every learning rate it tried. Which one should you train
# with? Two rules are common (both from the fastai library's `lr_find`, whose default
# suggestion has been a third one, `valley`, since 2021): the learning
# rate where the loss **falls fastest** (the steepest negative slope of the loss against
# $\log \text{lr}$), and the learning rate at the **minimum of the loss, divided by 10**. We
# use the second. A slope is a difference of two noisy numbers, and depends on how the
# difference is taken; a minimum is easy to define exactly and to check.
#
# Why the minimum, and why divide by 10? The minimum is where the growing learning rate
# stops helping: just before it the loss still fell, just after it the updates are too
# large and the loss turns up. So the minimum sits at the brink of divergence, and training
# there is training at the limit of a blow-up. Two more things push the true limit
# lower: the loss at update $k$ was produced by all the updates before it, so the curve
# lags behind the learning rate, and a short burst at a large learning rate can survive
# where a whole run at that learning rate would not. Backing off by a factor of 10 lands in
# the part of the curve where the loss was falling well. Section 5 checks this on a real
# network.
#
# Three details make the rule work on a real, noisy curve:
#
# * **Smooth first.** A single lucky minibatch can give a very low loss anywhere, so take
#   the minimum of a smoothed curve: the *trailing mean* of the last `smooth` losses,
#   `mean(losses[max(0, k - smooth + 1) : k + 1])` at update $k$ (fewer values at the start),
#   as in notebook 02.
# * **Trailing, not centred.** A centred mean at $k$ would average losses after $k$ too, and
#   the huge losses of the blow-up at the end of a range test would leak into the points
#   before the minimum. A trailing mean at $k$ only uses losses up to $k$, so
#   nothing that happens after the minimum can move it. The price is a lag: on a symmetric
#   valley, the minimum of the trailing mean comes $(\text{smooth} - 1)/2$ updates late.
# * **Stop at the blow-up.** Keep only the losses before the first non-finite one: at that
#   update the run is over (`lrcourse.train` stops there; a curve from elsewhere may go on,
#   but what comes after an `inf` means nothing).
#
# If several smoothed values tie for the minimum, take the first.
#
# **Exercise (2 points).** Write `suggest_lr(lrs, losses, smooth=10, divide_by=10.0)`.
# `lrs[k]` is the learning rate update `k` used and `losses[k]` its loss (as in
# `History.lr` and `History.loss`). Keep the losses before the first non-finite one, smooth
# them with the trailing mean of `smooth` values, find the first update $k$ with the
# smallest smoothed loss, and return `lrs[k] / divide_by` as a float. Raise `ValueError` if
# `lrs` and `losses` differ in length, if they are empty, or if the first loss is not finite.

# %% nbgrader={"grade_id": "suggest_lr", "solution": true}
def suggest_lr(lrs, losses, smooth=10, divide_by=10.0):
    """The LR at the minimum of the trailing-mean loss (before any inf/NaN), divided by divide_by."""
    ### BEGIN SOLUTION
    lrs = np.asarray(lrs, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    if len(lrs) != len(losses) or len(losses) == 0:
        raise ValueError(f"need as many LRs as losses, and at least one: got {len(lrs)} and {len(losses)}")
    finite = np.isfinite(losses)
    stop = len(losses) if finite.all() else int(np.argmin(finite))
    if stop == 0:
        raise ValueError("the first loss is not finite: the range test started too high")
    kept = losses[:stop]
    smoothed = np.array([kept[max(0, k - smooth + 1):k + 1].mean() for k in range(stop)])
    best = int(np.argmin(smoothed))
    return float(lrs[best] / divide_by)
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_suggest_lr", "grade": true, "points": 2}
import math

import numpy as np

from lrcourse.checks import assert_close, assert_true, call, run_tests

lrs5 = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
lrs8 = [0.001 * 2**k for k in range(8)]
dip = [3.0, 2.0, 0.1, 2.0, 1.0, 0.8, 0.9, 4.0]
tests = [
    call("suggest_lr", lrs5, [2.3, 2.0, 1.0, 0.5, 3.0], smooth=1).expect(
        0.01, hint="with smooth=1 there is no smoothing: the smallest loss, 0.5, is at lr=0.1, and 0.1 / 10 = 0.01"),
    # lrs = 0.001 * 2**k, losses with a dip
    call("suggest_lr", lrs8, dip, smooth=1).expect(
        lrs8[2] / 10, hint="without smoothing the single low loss 0.1 at update 2 wins"),
    call("suggest_lr", lrs8, dip, smooth=3).expect(
        lrs8[6] / 10,
        hint="the trailing means of 3 are 3, 2.5, 1.7, 1.37, 1.03, 1.27, 0.9, 1.9: the smallest is at update 6"),
    call("suggest_lr", lrs5, [2.3, 2.0, 0.5, float("nan"), 0.0], smooth=1).expect(
        0.001, hint="stop at the first non-finite loss: the 0.0 after the NaN does not count"),
]
### BEGIN HIDDEN TESTS
def reference_suggestion(lrs, losses, smooth=10, divide_by=10.0):
    kept = []
    for v in losses:
        if not math.isfinite(v):
            break
        kept.append(v)
    means = [float(np.mean(kept[max(0, k - smooth + 1):k + 1])) for k in range(len(kept))]
    return lrs[means.index(min(means))] / divide_by


# A realistic range test, shaped like the digits network's in section 5: 300 updates from 1e-5 to 10,
# minibatch noise of 5%; each update below lr = 0.15 removes a share 2 * lr of the loss above 0.05,
# above 0.15 the loss grows, until it overflows (NaN). The good learning rates lie between about
# 1e-3 (where the loss starts to move) and 0.15 (where it blows up).
rng = np.random.default_rng(11)
range_lrs = [1e-5 * 1e6 ** (k / 299) for k in range(300)]
range_losses, loss = [], 2.3
for lr in range_lrs:
    range_losses.append(loss * float(np.exp(0.05 * rng.standard_normal())))
    loss = 0.05 + (loss - 0.05) * (1.0 - 2.0 * lr) if lr < 0.15 else loss * (1.0 + 4.0 * (lr - 0.15))
    if loss > 1e4:
        loss = float("nan")
stop = next(k for k, v in enumerate(range_losses) if not math.isfinite(v))  # the first NaN
recorded = (range_lrs[:stop + 1], range_losses[:stop + 1])  # as lrcourse.train records it: it stops at the NaN
logged_on = range_losses[:stop] + [float("inf")] + [0.0] * (299 - stop)  # a log that went on after an inf
lucky = list(recorded[1])
lucky[stop - 8] = 1e-3  # one very lucky minibatch during the blow-up


def good_suggestion(lrs, losses, what, **kwargs):
    """Inside the range test's good range, and exactly the rule's value."""
    expected = reference_suggestion(lrs, losses, **kwargs)

    def check(got):
        assert_true(isinstance(got, float) and 1e-3 < got < 0.15,
                    f"{what} returned {got!r}: on this range test the loss starts to fall near lr = 1e-3 and blows "
                    "up above 0.15, so a tenth of the minimum of the smoothed loss lies between the two")
        assert_close(got, expected, what, hint="the LR at the first minimum of the trailing mean of `smooth` losses, "
                                               "before the first non-finite loss, divided by divide_by")
    return check


grid = [1e-4 * 10 ** (k / 10) for k in range(41)]  # 1e-4 .. 1, 10 values per decade
valley = [(math.log10(lr) + 1.5) ** 2 + 0.5 for lr in grid]  # smallest at lr = 10**-1.5 (k = 25)
tests += [
    call("suggest_lr", *recorded).check(good_suggestion(*recorded, "suggest_lr on a realistic range test"))
        .when_hidden("on a realistic range test (300 updates, noisy, ending on NaN) the suggestion was not a tenth "
                     "of the LR at the minimum of the trailing-mean loss"),
    call("suggest_lr", range_lrs, logged_on).check(
        good_suggestion(range_lrs, logged_on, "suggest_lr on a range test logged on after an inf"))
        .when_hidden("a range test whose log goes on after an inf (with losses of 0.0): only the losses before the "
                     "first non-finite one count"),
    call("suggest_lr", recorded[0], lucky).check(
        good_suggestion(recorded[0], lucky, "suggest_lr on a range test with one lucky minibatch"))
        .when_hidden("one very lucky minibatch during the blow-up moved the suggestion: smooth with the trailing "
                     "mean of `smooth` losses before taking the minimum"),
    call("suggest_lr", *recorded, smooth=20, divide_by=3.0).expect(
        reference_suggestion(*recorded, smooth=20, divide_by=3.0), hint="use the smooth and divide_by you are given")
        .when_hidden("with other values of smooth and divide_by the suggestion was wrong: use the ones you are given"),
    # a valley in log lr with its bottom at 10**-1.5
    call("suggest_lr", grid, valley, smooth=5).expect(
        10**-2.3, hint="a trailing mean of 5 lags (5 - 1) / 2 = 2 updates behind a symmetric valley: k = 27")
        .when_hidden("on a smooth valley the trailing mean of 5 losses should lag 2 updates behind the bottom"),
    call("suggest_lr", np.array(lrs5), np.array([2.3, 2.0, 1.5, 0.5, 1e30]), smooth=3).expect(
        0.01, hint="trailing means are 2.3, 2.15, 1.93, 1.33, 3e29: a loss after the minimum must not move it")
        .when_hidden("a huge loss right after the minimum moved the suggestion (the inputs were NumPy arrays): "
                     "the mean must be trailing, not centred"),
    # a range test that ended before the loss turned up
    call("suggest_lr", lrs5, [2.3, 2.0, 1.5, 1.0, 0.7], smooth=3).expect(
        0.1, hint="the minimum can be at the last update: include it")
        .when_hidden("a range test whose loss only falls: the minimum is at its last update"),
    call("suggest_lr", [0.05], [2.3]).expect(
        0.005, hint="a single update is a (very short) range test: its LR divided by 10"),
    call("suggest_lr", [1e-3, 1e-2], [2.0, float("nan")]).expect(
        1e-4, hint="one finite loss before the NaN is enough: the suggestion is its LR divided by 10"),
    call("suggest_lr", [1e-3, 1e-2, 1e-1], [2.3, 2.0]).raises(
        ValueError, hint="lrs and losses must have the same length")
        .when_hidden("lrs and losses of different lengths must raise ValueError"),
    call("suggest_lr", [], []).raises(ValueError, hint="nothing to suggest from: raise ValueError")
        .when_hidden("empty lrs and losses must raise ValueError"),
    call("suggest_lr", [1e-3, 1e-2], [float("nan"), 2.0]).raises(
        ValueError, hint="no finite loss before the first non-finite one: raise ValueError")
        .when_hidden("a range test whose first loss is NaN must raise ValueError"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# ## 4. A wide sweep: the three regimes at once
#
# Now the real network: the 64-128-128-10 digits MLP of notebook 01, SGD with momentum 0.9,
# minibatches of 64, 300 updates. The sweep covers six decades of constant learning rates,
# from `1e-5` to `10`, half a decade apart, and we train it on several seeds (a seed fixes
# the initial weights and the order of the minibatches). Your `classify_run` labels every
# run. For a diagnosis to be worth anything it must not depend on luck: the same learning
# rate should get the same label on every seed.
#
# All the runs of the sweep train at once: `lrcourse.batched.train_batched` stacks the
# copies of the network into one batched network, which gives each run exactly the losses
# `lrcourse.train` would give it, several times faster than one run after the other.

# %% nbgrader={"grade_id": "experiment_settings", "locked": true}
TOTAL_STEPS = 300
SEEDS = [0, 1, 2, 3, 4]
SWEEP_LRS = [10.0 ** (e / 2) for e in range(-10, 3)]  # 1e-5, 3.2e-5, 1e-4, ..., 3.2, 10: 13 LRs
RANGE_START, RANGE_END, RANGE_STEPS = 1e-5, 10.0, 300
if lrcourse.quick_mode():
    SEEDS = [0, 1, 2]
    SWEEP_LRS = [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]

# %%
from lrcourse.batched import train_batched

data = lrcourse.load_digits(device)
start = time.perf_counter()
runs = [(seed, lr) for seed in SEEDS for lr in SWEEP_LRS]
histories = train_batched([lr for seed, lr in runs], TOTAL_STEPS, seeds=[seed for seed, lr in runs], data=data,
                          device=device, progress=False)
sweeps = {seed: {} for seed in SEEDS}
for (seed, lr), history in zip(runs, histories):
    sweeps[seed][lr] = history
print(f"{len(runs)} runs of {TOTAL_STEPS} updates in {time.perf_counter() - start:.1f} s")

verdicts = {seed: {lr: classify_run(history.loss) for lr, history in sweep.items()} for seed, sweep in sweeps.items()}
print(f"\n{'lr':>8} | " + " ".join(f"{'seed ' + str(seed):<14}" for seed in SEEDS) + "| final loss, seed "
      f"{SEEDS[0]}")
for lr in SWEEP_LRS:
    cells = []
    for seed in SEEDS:
        history = sweeps[seed][lr]
        cells.append(f"{verdicts[seed][lr] + (' (NaN)' if history.diverged else ''):<14}")
    history = sweeps[SEEDS[0]][lr]
    final = "inf/NaN" if history.diverged else f"{history.final_loss():.3g}"
    print(f"{lr:>8.2g} | " + " ".join(cells) + f"| {final}")
print("\n(NaN): the run stopped on a non-finite loss; the other diverged runs ended quietly dead.")

# %% nbgrader={"grade_id": "check_seeds_agree", "locked": true}
rank = {"stalled": 0, "healthy": 1, "diverged": 2}
disagree = [lr for lr in SWEEP_LRS if len({verdicts[seed][lr] for seed in SEEDS}) > 1]
assert_true(not disagree, "the seeds disagree at lr = " + ", ".join(f"{lr:g}" for lr in disagree)
            + ": a diagnosis that depends on the seed is not yet reliable (check classify_run against its tests)")
ranks = [rank[verdicts[SEEDS[0]][lr]] for lr in SWEEP_LRS]
assert_true(ranks == sorted(ranks) and set(ranks) == {0, 1, 2},
            "expected the sweep to go from stalled to healthy to diverged as the LR grows, got "
            + ", ".join(verdicts[SEEDS[0]][lr] for lr in SWEEP_LRS))
by_verdict = {v: [lr for lr in SWEEP_LRS if verdicts[SEEDS[0]][lr] == v] for v in rank}
print(f"All {len(SEEDS)} seeds agree on all {len(SWEEP_LRS)} learning rates: "
      + "; ".join(f"{v} {min(lrs):.2g} to {max(lrs):.2g}" for v, lrs in by_verdict.items()))

# %% [markdown]
# The plot shows every run of the first seed, coloured by your verdict (shades of grey:
# stalled; green: healthy; red: diverged), with the losses averaged over 10 updates so that
# the lines can be told apart, and clipped at $10^3$. On the right, the final loss (mean
# of the last 20 updates) of every run on every seed; the runs that ended on `inf` or `NaN`
# have no final loss and are drawn as crosses at the top.

# %%
from lrcourse.plots import trailing_mean

COLORS = {"stalled": plt.cm.Greys, "healthy": plt.cm.Greens, "diverged": plt.cm.Reds}
CLIP = 1e3


def smoothed(values):
    """The mean of the last 10 losses; NaN from where a run blows up, so its line stops."""
    return trailing_mean(values, 10, skip_nonfinite=False)


def verdict_color(verdict, lr):
    """A shade of the verdict's colour map: darker for a larger LR within the verdict."""
    group = by_verdict[verdict]
    position = group.index(lr) / max(1, len(group) - 1)
    return COLORS[verdict](0.4 + 0.5 * position)


fig, (ax_curves, ax_final) = plt.subplots(1, 2, figsize=(14, 5))
for lr, history in sweeps[SEEDS[0]].items():
    verdict = verdicts[SEEDS[0]][lr]
    curve = np.minimum(smoothed(history.loss), CLIP)
    label = f"lr={lr:.2g}: {verdict}" + (" (NaN)" if history.diverged else "")
    ax_curves.plot(curve, color=verdict_color(verdict, lr), linewidth=1.6, label=label)
    if history.diverged:
        last = np.flatnonzero(np.isfinite(curve))
        if last.size:
            ax_curves.plot(last[-1], curve[last[-1]], "x", color=COLORS["diverged"](0.9), markersize=9, mew=2)
ax_curves.set_yscale("log")
ax_curves.set_ylim(top=CLIP * 2)
ax_curves.axhline(math.log(10), color="gray", linestyle="--", linewidth=1)
ax_curves.set(xlabel="update (step)", ylabel="training loss (mean of last 10, clipped at 1e3)",
              title=f"digits MLP, SGD momentum 0.9, seed {SEEDS[0]}")
ax_curves.legend(fontsize="x-small", ncol=2, loc="lower left")
ax_curves.grid(True, alpha=0.3)

finals = {seed: {lr: h.final_loss() for lr, h in sweep.items()} for seed, sweep in sweeps.items()}
finite = [f for per_seed in finals.values() for f in per_seed.values() if math.isfinite(f)]
top = 5 * max(finite)
for seed in SEEDS:
    for lr in SWEEP_LRS:
        verdict, final = verdicts[seed][lr], finals[seed][lr]
        marker = "o" if math.isfinite(final) else "x"
        ax_final.plot(lr, final if math.isfinite(final) else top, marker, color=COLORS[verdict](0.75),
                      markersize=7, mew=2, alpha=0.8)
for verdict in rank:
    ax_final.plot([], [], "o", color=COLORS[verdict](0.75), label=verdict)
ax_final.plot([], [], "x", color=COLORS["diverged"](0.75), mew=2, label="diverged, ended on inf/NaN")
ax_final.axhline(math.log(10), color="gray", linestyle="--", linewidth=1, label="chance, ln 10")
ax_final.set(xscale="log", yscale="log", xlabel="learning rate", ylabel="final training loss (mean of last 20)",
             title=f"every run, {len(SEEDS)} seeds, coloured by classify_run")
ax_final.legend(fontsize="small", loc="lower left")
ax_final.grid(True, alpha=0.3)
fig.tight_layout()

# %% [markdown]
# Do the thresholds sit where section 1 claimed? The cell below measures, over every run of
# every seed, the two numbers the rules compare: the largest loss and the final loss, each
# divided by the run's first loss. It also shows the number we decided *not* to use, the
# largest jump of the loss above its running minimum.

# %%
def describe(verdict, ratio):
    values = [ratio(sweeps[seed][lr].loss) for seed in SEEDS for lr in SWEEP_LRS if verdicts[seed][lr] == verdict]
    values = [v for v in values if math.isfinite(v)]
    return f"{min(values):9.3g} to {max(values):<9.3g}" if values else f"{'(none finite)':^22}"


def peak_over_first(losses):
    finite = [v for v in losses if math.isfinite(v)]
    return max(finite) / losses[0]


def final_over_first(losses):
    return float(np.mean(losses[-20:])) / losses[0]


def jump_over_running_min(losses):
    losses = np.asarray([v for v in losses if math.isfinite(v)])
    return float(np.max(losses[1:] / np.minimum.accumulate(losses)[:-1]))


print(f"{'':>9} | {'largest / first loss':^22} | {'final / first loss':^22} | {'largest jump over running min':^30}")
for verdict in rank:
    print(f"{verdict:>9} | {describe(verdict, peak_over_first):^22} | {describe(verdict, final_over_first):^22} "
          f"| {describe(verdict, jump_over_running_min):^30}")
print("\nthresholds: diverged if largest / first > 1.5 (or any inf/NaN); stalled if final / first > 0.5")

# %% [markdown]
# What the sweep shows (the exact numbers move a little with the seed and the device; in our
# runs on a CPU the verdicts were the same for every seed, the assertion cell above checks
# it):
#
# * **Stalled up to `1e-3`.** After 300 updates the loss is still 76% or more of where it
#   started (at `1e-5`, within 1%). The factor $1 - \eta\lambda$ is close to 1 in every
#   direction; as in notebook 01, these runs would need about 10 to 1,000 times more
#   updates to get where `1e-2` got.
# * **Healthy from `3.2e-3` to `0.1`.** The loss ends between about 20% of its start and,
#   at `0.1`, below a thousandth of it, and never rises more than a few percent above its
#   first value.
# * **Diverged from `0.32` on.** At `0.32` and `1` the runs end *quietly dead*: their loss
#   spikes to between 2.3 and 60 times its start, then falls back towards $\ln 10$, the
#   dashed line, where a stalled run sits. Their final loss alone would call them (nearly)
#   stalled; the spike gives them away. At `3.2` and `10` the loss overflows to
#   `inf`/`NaN` on most seeds, and the other runs there end quietly dead too.
#
# The table of ratios backs both thresholds. Between the healthy runs (at most about 1.02
# times their first loss) and the diverged ones (at least about 2.3 times: the mildest
# blow-up, at `0.32` on one seed) there is a gap, and 1.5 sits in its middle, a factor of
# about 1.5 from either end. The same holds for the final loss (healthy at most about 0.2,
# stalled at least about 0.76, threshold 0.5). The last column is why the blow-up rule does
# not use the running minimum: healthy runs at `0.1` jump to up to about 200 times their
# running minimum, more than many runs that blew up (from about 13 times), because once a
# minibatch loss is $10^{-5}$ the next one at $10^{-3}$ is a jump of 100.
#
# What to do with a verdict: **diverged**, lower the learning rate (by 3 to 10 times), or
# keep the peak and add warmup (notebook 04) or gradient clipping; **stalled**, raise the
# learning rate, or train longer; and in both cases check that the learning rate the
# optimizer actually used is the one you meant (a `scheduler.step()` called before
# `optimizer.step()`, notebook 05, or a cosine whose `T_max` counts epochs while you step it
# per batch, notebook 03, trains at learning rates you never chose).
#
# ## 5. The range test on the same network
#
# The sweep took 13 runs per seed. The range test takes one: the same network, the same
# 300 updates, but update $k$ uses the $k$-th learning rate of your `lr_range_test_lrs(1e-5,
# 10, 300)`. `lrcourse.train` and `train_batched` accept any schedule `lr(step)`, so the
# range test is just a schedule that reads your list (the seeds' range tests train batched,
# like the sweep). Your `suggest_lr` then reads the suggestion off each seed's curve, and
# we check it against the sweep in three ways: does it land between the learning rates
# that stalled and those that blew up, does a full run at the suggested learning rate come
# out healthy, and how does that run compare with the sweep's best?

# %%
range_lrs = lr_range_test_lrs(RANGE_START, RANGE_END, RANGE_STEPS)
start = time.perf_counter()
range_test = lambda step: range_lrs[step]  # update `step` uses the step-th LR of your list
range_runs = dict(zip(SEEDS, train_batched([range_test] * len(SEEDS), RANGE_STEPS, seeds=SEEDS, data=data,
                                           device=device, progress=False)))  # one range test per seed, batched
suggested = {seed: suggest_lr(h.lr, h.loss) for seed, h in range_runs.items()}
at_minimum = {seed: suggest_lr(h.lr, h.loss, divide_by=1.0) for seed, h in range_runs.items()}
histories = train_batched([suggested[seed] for seed in SEEDS], TOTAL_STEPS, seeds=SEEDS, data=data, device=device,
                          progress=False)
checks = dict(zip(SEEDS, histories))
print(f"{2 * len(SEEDS)} runs in {time.perf_counter() - start:.1f} s\n")

largest_stalled, smallest_diverged = max(by_verdict["stalled"]), min(by_verdict["diverged"])
healthy_lo, healthy_hi = min(by_verdict["healthy"]), max(by_verdict["healthy"])
print(f"sweep: stalled up to {largest_stalled:.2g}, healthy {healthy_lo:.2g} to {healthy_hi:.2g}, "
      f"diverged from {smallest_diverged:.2g}\n")
print(f"{'seed':>4} | {'range test':^26} | {'suggested':>9} | {'a run at the suggestion':^26} | {'best of the sweep':^22}")
print(f"{'':>4} | {'updates  lr at min loss':^26} | {'lr':>9} | {'verdict    final loss':^26} | {'lr     final loss':^22}")
for seed in SEEDS:
    h = range_runs[seed]
    ran = f"{len(h.loss)}" + (" (NaN)" if h.diverged else "")
    best_lr = min(SWEEP_LRS, key=lambda lr: finals[seed][lr])
    print(f"{seed:>4} | {ran:>10}  {at_minimum[seed]:13.3g} | {suggested[seed]:9.3g} | "
          f"{classify_run(checks[seed].loss):>8}  {checks[seed].final_loss():12.3g} | "
          f"{best_lr:6.2g}  {finals[seed][best_lr]:12.3g}")

# %% nbgrader={"grade_id": "check_range_test", "locked": true}
for seed in SEEDS:
    assert_true(largest_stalled < suggested[seed] < smallest_diverged,
                f"seed {seed}: the suggestion {suggested[seed]:.3g} is outside the sweep's good region "
                f"({largest_stalled:.2g}, {smallest_diverged:.2g})")
    assert_true(classify_run(checks[seed].loss) == "healthy",
                f"seed {seed}: a run at the suggested lr {suggested[seed]:.3g} was not healthy")
print(f"For all {len(SEEDS)} seeds the suggestion ({min(suggested.values()):.3g} to {max(suggested.values()):.3g}) "
      f"lies between the largest LR that stalled ({largest_stalled:.2g}) and the smallest that blew up "
      f"({smallest_diverged:.2g}), and a run at it is healthy.")

# %% [markdown]
# The picture of the range test: loss against learning rate, one colour per seed (thin: the
# raw minibatch losses; thick: their trailing mean of 10). The background repeats the
# sweep's verdicts: grey where it stalled, green where it was healthy, red where it blew up.
# A dotted line marks each seed's minimum, a dashed line its suggestion.

# %% tags=["illustration"]
fig, ax = plt.subplots(figsize=(10, 5))
spans = {verdict: (min(lrs), max(lrs)) for verdict, lrs in by_verdict.items()}
for verdict, (lo, hi) in spans.items():
    ax.axvspan(lo, hi, color=COLORS[verdict](0.55), alpha=0.15, label=f"sweep: {verdict}")
for i, (seed, h) in enumerate(range_runs.items()):
    color = plt.cm.tab10(i)
    losses = np.asarray(h.loss, dtype=np.float64)
    ax.plot(h.lr, np.where(np.isfinite(losses), losses, np.nan), color=color, linewidth=0.6, alpha=0.35)
    ax.plot(h.lr, smoothed(losses), color=color, linewidth=2, label=f"seed {seed}")
    ax.axvline(at_minimum[seed], color=color, linestyle=":", linewidth=1.2)
    ax.axvline(suggested[seed], color=color, linestyle="--", linewidth=1.2)
ax.axhline(math.log(10), color="gray", linestyle="--", linewidth=1)
ax.set(xscale="log", yscale="log", ylim=(0.05, 30), xlabel="learning rate (grows every update)",
       ylabel="training loss", title="LR range test, digits MLP: dotted = minimum, dashed = suggestion (minimum / 10)")
ax.legend(fontsize="small", loc="upper left", ncol=2)
ax.grid(True, alpha=0.3)
fig.tight_layout()

# %% [markdown]
# What the range test found (again, the numbers are from our CPU runs and move a little
# with the seed; the checks above hold for every seed we ran):
#
# * Its curve shows the sweep's three regimes, in one run each: nearly flat up to about
#   `1e-2`, falling fast between `1e-2` and `0.1`, then turning up and exploding. (The
#   loss starts to fall later than in the sweep, where `3.2e-3` was already healthy: at
#   update $k$ the range test has spent only a few dozen updates at learning rates
#   anywhere near $\text{lr}_k$. This is the lag of section 3.)
# * **Its minimum is the sweep's divergence threshold.** The smoothed loss is lowest at
#   about `0.14` to `0.25`; the sweep found `0.1` healthy and `0.32` diverged. One run
#   located the threshold that took the sweep 13 runs per seed.
# * **Its suggestion is safe.** A tenth of the minimum, `0.014` to `0.025`, lies inside the
#   sweep's healthy range, more than 13 times above the last learning rate that stalled and
#   13 to 23 times below the first that blew up, and a full run at it is healthy on every
#   seed.
# * **It is not the best learning rate.** In 300 updates the sweep's best is `0.1`, the
#   largest stable one, as on the parabola of notebook 01: it ends below `0.001`, the run at
#   the suggestion at about `0.02` to `0.05`. The rule "minimum / 10" buys a wide safety
#   margin with speed. A range test gives the *scale* of a good learning rate from one
#   cheap run; a few runs between the suggestion and the minimum find the best one, and the
#   capstone (notebook 12) starts its schedule design from a range test.
#
# ## Summary
#
# * Each regime leaves its mark on the loss curve. Diverged: an `inf`/`NaN`, or a loss far
#   above the first one, even if the run later settles at the loss of a guess ("quietly
#   dead"). Stalled: the final loss is still close to the first one. Healthy: neither.
# * Check for the blow-up before the stall: a quietly dead run ends where it started, and
#   calling it stalled would prescribe the opposite of the cure.
# * Compare with the first loss, not the running minimum: a healthy minibatch loss near zero
#   jumps by up to hundreds of times its minimum. State the thresholds, and choose them from
#   measurements (here 1.5 times the first loss and half of it, each in the middle of the
#   gap measured over every seed).
# * The LR range test (Smith, 2017; here in fastai's form) grows the learning rate geometrically,
#   $\text{lr}_k = \text{lr}_{\text{start}}(\text{lr}_{\text{end}}/\text{lr}_{\text{start}})^{k/(N-1)}$,
#   in one short run. The minimum of its trailing-mean loss marks the brink of divergence; a
#   tenth of it is a safe learning rate. On the digits network the minimum matched the
#   sweep's threshold and the suggestion trained well on every seed, in one run instead of 13.
#
# Next: **08 · Warmup-stable-decay, cooldowns and decay to zero**: the schedules large
# models are trained with now, trained and compared on the small transformer.
