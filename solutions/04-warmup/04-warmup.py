# %% [markdown]
# # 04 · Warmup
#
# Nearly every transformer is trained with a schedule that does something odd at the start:
# instead of using its peak learning rate from the first update, it climbs to it, linearly,
# over the first few hundred or thousand updates. This notebook works out why a freshly
# initialised network should not take full-size steps, writes the three schedules that
# large models are trained with, and shows on a small transformer what happens without the
# climb.
#
# **You will**
# 1. derive why Adam's first updates are larger than its later ones at the same learning rate;
# 2. fix exactly where a linear warmup starts, and compare with Hugging Face and nanoGPT;
# 3. implement linear warmup, warmup + cosine and warmup-stable-decay, checked against
#    PyTorch's `SequentialLR`;
# 4. train a small transformer at a high peak learning rate with and without warmup, on
#    several seeds.
#
# Exercises: `linear_warmup` (2 points), `zero_lr_updates` (1), `warmup_cosine` (2),
# `warmup_stable_decay` (2).

# %% nbgrader={"grade_id": "setup", "locked": true}
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

import lrcourse
from lrcourse.batched import per_schedule_and_seed, train_lm_batched
from lrcourse.transformer import TinyTransformer, lm_loss, load_corpus, sample_batch

lrcourse.seed_everything(0)
device = lrcourse.pick_device()
print(f"PyTorch {torch.__version__}, training on: {device}")
if lrcourse.quick_mode():
    print("Quick mode: the experiment at the end is shorter and uses one seed (grading or CI).")

# %% [markdown]
# ## 1. Why not start at full speed?
#
# Notebook 01 found that a learning rate is stable only below a limit set by the sharpest
# curvature the optimizer meets, and that for a network this limit has to be found by
# experiment. The very first updates are special in two ways.
#
# **The starting point is unusual.** A random initialisation is a point that training leaves
# quickly: the loss is far above anything it will see later (here $\ln 94 \approx 4.5$ nats
# for 94 possible characters), and the stable limit there need not be the one in the middle
# of the run, where the peak learning rate was chosen.
#
# **Adam normalises by an estimate it does not have yet.** Transformers are trained with
# Adam or AdamW. For every weight, Adam keeps running averages of the gradient $g_t$ and of
# its square (update $t$ counted from 1 here, as in the Adam paper),
#
# $$ m_t = \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2, \qquad m_0 = v_0 = 0, $$
#
# divides each by $1-\beta^t$ to undo the start at zero, $\hat m_t = m_t / (1-\beta_1^t)$ and
# $\hat v_t = v_t/(1-\beta_2^t)$, and moves the weight by
#
# $$ \Delta w_t = -\eta\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} . $$
#
# Look at the first update: $\hat m_1 = g_1$ and $\hat v_1 = g_1^2$, so
#
# $$ \Delta w_1 = -\eta\, \frac{g_1}{|g_1| + \epsilon} \approx -\eta\, \operatorname{sign}(g_1) . $$
#
# **Every weight with a nonzero gradient moves by the full learning rate**, whether its
# gradient is large or tiny, signal or noise. Later this changes. Take a weight whose
# gradient is pure noise, independent from update to update with mean 0 and standard
# deviation $\sigma$. Once the averages are full, $v_t \approx \sigma^2$, while $m_t$, a sum
# of noise terms with weights $(1-\beta_1)\beta_1^k$, has variance
# $\sigma^2 (1-\beta_1)^2 \sum_k \beta_1^{2k} = \sigma^2 \frac{1-\beta_1}{1+\beta_1}$. With
# $\beta_1 = 0.9$ its typical size is $\sqrt{0.1/1.9}\,\sigma \approx 0.23\,\sigma$: a
# noisy weight then moves by about $0.23\,\eta$ per update, and the very first update moved
# it by $\eta$, more than four times as far. Over the first few updates $\hat v_t$ is an average
# of a handful of squared gradients, and the normalised steps stay large and erratic.
#
# Ma & Yarats (2019, arXiv:1910.04209) work this out for the second-moment estimate and
# recommend, as a default that needs no tuning, a linear warmup over about
# $2/(1-\beta_2)$ updates: 2,000 for the usual $\beta_2 = 0.999$. Warmup keeps the first,
# unreliable steps small while Adam's statistics fill up.
#
# The cell below checks the first-step claim on the small transformer we train at the end
# of this notebook (weights drawn from $\mathcal{N}(0, 0.02^2)$): one AdamW update at
# $\eta = 0.01$, from a fresh model, on one batch.

# %% tags=["illustration"]
corpus = load_corpus(device)
lrcourse.seed_everything(0)
model = TinyTransformer(corpus.vocab_size).to(device)
x, y = sample_batch(corpus.train, 32, model.context, torch.Generator().manual_seed(0))
before = {name: p.detach().clone() for name, p in model.named_parameters()}
first_step_lr = 0.01
optimizer = torch.optim.AdamW(model.parameters(), lr=first_step_lr, weight_decay=0.0)
lm_loss(model, x, y).backward()
optimizer.step()

moved = torch.cat([(p.detach() - before[name]).abs().flatten() for name, p in model.named_parameters()
                   if p.grad is not None and p.grad.abs().max() > 0])
with_grad = torch.cat([p.grad.flatten() != 0 for p in model.parameters()])
print(f"weights with a nonzero gradient: {with_grad.float().mean():.0%}")
print(f"of those, moved by more than 0.99 * lr: {(moved[moved > 0] > 0.99 * first_step_lr).float().mean():.1%}")
for name in ("blocks.0.attn.qkv.weight", "blocks.1.mlp.0.weight", "head.weight"):
    w0 = before[name]
    change = (dict(model.named_parameters())[name].detach() - w0).norm() / w0.norm()
    print(f"{name:<26} |change| / |weights| after one update: {change:.2f}")

# %% [markdown]
# Almost every weight moved by the full learning rate (the ones without a gradient are the
# embeddings of characters that did not occur in the batch), and since the weights started
# with a typical size of 0.02, a single update at $\eta = 0.01$ changed the weight matrices
# by about half of their size, all in one go. With a warmup of 100 updates the first
# update uses $\eta/100$ and changes them by half a percent.
#
# ## 2. The three phases of a modern schedule
#
# Large language models are trained with a schedule in three phases:
#
# 1. **Warmup**: linear, from near 0 to the peak learning rate. In large runs it is short,
#    roughly 0.1-2% of the updates (a few hundred to a few thousand updates); short runs,
#    like the ones in this course, often use a larger share.
# 2. **Peak**: the learning rate stays at its maximum, or starts decaying right away.
# 3. **Decay**: either a cosine down to about a tenth of the peak over the rest of the run
#    (notebook 03), or, in the **warmup-stable-decay** (WSD) schedule, a constant peak for
#    most of the run followed by a short cooldown at the end. The cooldown makes up for the
#    missing cosine (WSD matched cosine in the experiments of the papers below), and because
#    the stable phase does not depend on the length of the run, one long run can be branched
#    into cooldowns at several budgets. Hu et al. (2024, arXiv:2404.06395), who named WSD,
#    decayed exponentially over about the last 10% of training; Hägele et al. (2024,
#    arXiv:2405.18392) found that a `1 - sqrt` cooldown beats a linear one, with cooldowns of
#    about 10-20% of the run. We implement the simplest shape, linear.
#
# ## 3. Where exactly does the warmup start?
#
# A linear warmup over $W$ updates goes from (near) 0 to the peak. "Linear" leaves one
# question open: which update gets which value? Three answers are in common use. Two of them
# are written in their libraries as
#
# * **Hugging Face** (`transformers.get_linear_schedule_with_warmup` and its relatives):
#   `lr_max * step / W` while `step < W`;
# * **nanoGPT** (Karpathy's `train.py`): `lr_max * (step + 1) / (W + 1)` while `step < W`;
#
# and both hold the peak (then decay) after the warmup. This course asks for three things
# of its warmup over the $W$ updates `0 .. W-1`:
#
# 1. the learning rate climbs in **equal increments**, one per update;
# 2. **no update is wasted**: the first update already moves the weights, by one increment;
# 3. the warmup **ends at the peak**: update $W-1$, the last of the warmup, uses `lr_max`.
#
# For $W = 4$ and a peak of 1:
#
# | update `step` | 0 | 1 | 2 | 3 | 4 | 5 |
# |---|---|---|---|---|---|---|
# | **this course** | ? | ? | ? | **1** | 1 | 1 |
# | Hugging Face | **0** | 0.25 | 0.5 | 0.75 | 1 | 1 |
# | nanoGPT | 0.2 | 0.4 | 0.6 | 0.8 | 1 | 1 |
#
# Hugging Face breaks the second wish: its first update uses a learning rate of exactly 0,
# so the gradient is computed and thrown away, and the weights do not move. (With Adam that
# update is not entirely lost: it still feeds $m$ and $v$ one gradient.) nanoGPT breaks the
# third: the peak is never reached during the warmup; it arrives with the first update of
# the decay.
#
# The differences are one update; what matters is knowing which convention a codebase
# uses, for example when a test compares it with another implementation, or when a warmup
# of 1 or 2 updates is set on purpose. Here `warmup_steps = 1` means that update 0 already
# uses the peak (no warmup at all), and `warmup_steps = 0` means no warmup too.
#
# **Exercise (2 points).** Fill in the table's first row for yourself: how large is one
# increment, if $W$ of them must add up to the peak? Then write
# `linear_warmup(step, lr_max, warmup_steps)`, which gives update `step` its learning rate
# under the three wishes while `step < warmup_steps`, and `lr_max` from then on (the peak is
# held; the decays come later). With `warmup_steps = 0` every update uses `lr_max`.

# %% nbgrader={"grade_id": "linear_warmup", "solution": true}
def linear_warmup(step, lr_max, warmup_steps):
    """The LR of update `step`: a linear climb to lr_max over warmup_steps updates, then lr_max."""
    ### BEGIN SOLUTION
    if step < warmup_steps:
        return lr_max * (step + 1) / warmup_steps
    return lr_max
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_linear_warmup", "grade": true, "points": 2}
from lrcourse.checks import call, code, run_tests
from lrcourse.reference import torch_lrs
from torch.optim.lr_scheduler import LinearLR

tests = [
    call("linear_warmup", 0, 1.0, 4).expect(0.25, hint="the first update moves the weights by one increment, not 0"),
    call("linear_warmup", 3, 1.0, 4).expect(
        1.0, hint="update warmup_steps - 1, the last of the warmup, uses lr_max"),
    code("[linear_warmup(s, 1.0, 4) for s in range(7)]", "[linear_warmup(s, 1.0, 4) for s in range(7)]").expect(
        [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0], hint="after the warmup the LR stays at lr_max"),
    code("[linear_warmup(s, 0.1, 5) for s in range(12)]",
         "[linear_warmup(s, 0.1, 5) for s in range(12)] compared with LinearLR(start_factor=1/5, total_iters=4)").expect(
        torch_lrs(lambda opt: LinearLR(opt, start_factor=1 / 5, end_factor=1.0, total_iters=4), 0.1, 12),
        hint="equal increments, the first update one increment above 0, update warmup_steps - 1 at lr_max"),
]
### BEGIN HIDDEN TESTS
for lr_max, warmup, total in ((3e-2, 7, 20), (0.5, 2, 6), (6e-3, 100, 250)):
    tests.append(code(f"[linear_warmup(s, {lr_max!r}, {warmup}) for s in range({total})]",
                      f"linear_warmup(s, {lr_max}, {warmup}) for s = 0..{total - 1}, compared with LinearLR").expect(
        torch_lrs(lambda opt: LinearLR(opt, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1),
                  lr_max, total),
        hint="W increments of lr_max / W: update step uses step + 1 of them while step < warmup_steps"))
tests += [
    call("linear_warmup", 1999, 0.03, 2000).expect(0.03, hint="the last warmup update uses the peak"),
    call("linear_warmup", 999, 0.03, 2000).expect(
        0.015, hint="halfway through the warmup: update 999 is the 1,000th of 2,000"),
    call("linear_warmup", 10**6, 0.03, 2000).expect(0.03, hint="long after the warmup the LR stays at lr_max"),
    code("[linear_warmup(s, 0.2, 1) for s in range(4)]", "linear_warmup(s, 0.2, warmup_steps=1)").expect(
        [0.2] * 4, hint="a warmup of 1 update: update 0 already uses lr_max"),
    # A ZeroDivisionError here is reported as "raised ZeroDivisionError: division by zero".
    code("[linear_warmup(s, 0.2, 0) for s in range(4)]", "linear_warmup(s, 0.2, warmup_steps=0)").expect(
        [0.2] * 4, hint="warmup_steps = 0 means no warmup: every update uses lr_max; only divide while "
                        "step < warmup_steps"),
    code("linear_warmup(2, 3, 4)", "linear_warmup(2, 3, 4) with an integer lr_max").expect(
        2.25, hint="update 2 uses 3 increments of lr_max / 4: divide with /, not //"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# One increment is $\text{lr}_{\max}/W$, and update `step` has climbed `step + 1` of them:
# `lr_max * (step + 1) / warmup_steps`. The first update uses $\frac{1}{W}$ of the peak,
# update $W-1$ all of it. The three conventions side by side, for a warmup of 10 updates. Hugging Face's and
# nanoGPT's are written here as one-line lambdas, following their code (their warmup part
# only; both continue with a decay after it).

# %% tags=["illustration"]
W, peak = 10, 1.0
hf_warmup = lambda step: peak * step / W if step < W else peak  # Hugging Face's, warmup part
nanogpt_warmup = lambda step: peak * (step + 1) / (W + 1) if step < W else peak  # nanoGPT's, warmup part
conventions = {"this course (yours)": lambda step: linear_warmup(step, peak, W),
               "Hugging Face: step / W": hf_warmup, "nanoGPT: (step + 1) / (W + 1)": nanogpt_warmup}
steps_axis = np.arange(14)
fig, ax = plt.subplots(figsize=(8, 3.8))
for (label, fn), marker in zip(conventions.items(), ("o", "s", "^")):
    ax.plot(steps_axis, [fn(s) for s in steps_axis], marker=marker, linewidth=1, label=label)
ax.axvline(W - 0.5, color="gray", linestyle=":", linewidth=1)
ax.set(xlabel="update (step)", ylabel="learning rate / peak", title=f"three linear warmups, W = {W}")
ax.grid(True, alpha=0.3)
ax.legend(fontsize="small")
fig.tight_layout()
for label, fn in conventions.items():
    print(f"{label:<32} first update {fn(0):.3f}, update W-1 {fn(W - 1):.3f}, "
          f"mean over the warmup {np.mean([fn(s) for s in range(W)]):.3f}")

# %% [markdown]
# Over the warmup, Hugging Face's updates travel exactly one full-size update less than
# ours: its mean is $(W-1)/2W$ of the peak against our $(W+1)/2W$. For $W = 1$ the
# difference is stark: a "warmup of 1 update" in the Hugging Face convention is one update
# at learning rate 0.
#
# A learning rate of 0 anywhere inside a run is an update that costs a forward and a
# backward pass and does nothing. It can hide at the start (a warmup from 0) or at the end
# (a decay that reaches 0 on the last update instead of just after it, like
# `lr_max * (1 - step / (total_steps - 1))`). A quick audit catches both.
#
# **Exercise (1 point).** Write `zero_lr_updates(schedule, total_steps)`, which returns the
# list of the updates `step` in `0 .. total_steps - 1` whose learning rate `schedule(step)` is
# 0 or below (a negative learning rate, from a sign error, is worse than wasted), in
# increasing order. `schedule` is a function of the step alone.

# %% nbgrader={"grade_id": "zero_lr_updates", "solution": true}
def zero_lr_updates(schedule, total_steps):
    """The updates 0 .. total_steps - 1 whose learning rate schedule(step) is <= 0."""
    ### BEGIN SOLUTION
    return [step for step in range(total_steps) if schedule(step) <= 0]
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_zero_lr_updates", "grade": true, "points": 1}
from lrcourse.checks import assert_close, assert_true, code, run_tests


def is_list_of(expected, what, hint):
    """A check: the result is a list, equal to `expected`."""
    def check(got):
        assert_true(isinstance(got, list), f"zero_lr_updates(...) returned {got!r}; expected a list of update numbers")
        assert_close(got, expected, what, hint=hint)
    return check


tests = [
    code("zero_lr_updates(lambda step: 0.1 * step / 4 if step < 4 else 0.1, 10)",
         "zero_lr_updates(Hugging Face-style warmup over 4 updates, total_steps=10)").check(
        is_list_of([0], "zero_lr_updates(Hugging Face-style warmup over 4 updates, total_steps=10)",
                   hint="step / W is 0 at update 0, and only there")),
    code("len(zero_lr_updates(lambda step: 0.1 * (step + 1) / 4 if step < 4 else 0.1, 10))",
         "len(zero_lr_updates(this course's warmup over 4 updates, total_steps=10))").expect(
        0, hint="(step + 1) / W is never 0, so the list should be empty"),
]
### BEGIN HIDDEN TESTS
tests += [
    code("zero_lr_updates(lambda step: 0.1 * (1 - step / 9), 10)",
         "zero_lr_updates(lambda step: 0.1 * (1 - step / 9), total_steps=10)").expect(
        [9], hint="a linear decay that reaches 0 on the last update wastes update 9"),
    code("zero_lr_updates(lambda step: 0.1 * (1 - step / 5), 8)",
         "zero_lr_updates(lambda step: 0.1 * (1 - step / 5), total_steps=8)").expect(
        [5, 6, 7], hint="count updates with a learning rate of 0 or below, in increasing order"),
    code("zero_lr_updates(lambda step: 0.5 * (step / 3 if step < 3 else max(0.0, (12 - step) / 9)), 12)",
         "zero_lr_updates(Hugging Face's warmup + linear decay, 12)").expect(  # HF's full linear schedule
        [0], hint="only updates 0 .. total_steps - 1 are part of the run: the value at step total_steps is not"),
    code("zero_lr_updates(lambda step: 0.0, 4)", "zero_lr_updates(lambda step: 0.0, total_steps=4)").expect(
        [0, 1, 2, 3], hint="every update of a zero schedule is wasted"),
    code("len(zero_lr_updates(lambda step: 0.0, 0))", "len(zero_lr_updates(lambda step: 0.0, total_steps=0))").expect(
        0, hint="a run of 0 updates has no wasted update"),
    code("zero_lr_updates(lambda step: 1e-12 if step else 0.3, 3)", "zero_lr_updates with tiny positive LRs").expect(
        [], hint="a tiny learning rate is small, not zero"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# ## 4. Warmup + cosine
#
# The most common schedule for transformers: a linear warmup over the first $W$ updates,
# then a cosine from `lr_max` down to `lr_min` over the rest of the run. Notebook 03's cosine
# runs over progress $t/T$; here it runs over the part after the warmup, progress
# $(t - W)/(T - W)$:
#
# $$
# \text{lr}(t) = \begin{cases}
#   \text{lr}_{\max}\,\dfrac{t+1}{W} & 0 \le t < W \\[1.5ex]
#   \text{lr}_{\min} + \tfrac{1}{2}\,(\text{lr}_{\max} - \text{lr}_{\min})\left(1 + \cos\left(\pi\,\dfrac{t - W}{T - W}\right)\right) & W \le t \le T \\[1.5ex]
#   \text{lr}_{\min} & t > T
# \end{cases}
# $$
#
# Two details follow from the conventions. Update $W$ starts the cosine at progress 0, which
# is `lr_max` again: the peak is used twice, by the last warmup update and the first decay
# update. And the cosine reaches `lr_min` at $t = T$, the first step past the end of the run,
# so the last update $T-1$ still uses a little more than `lr_min`; past the end the schedule
# holds `lr_min`. The warmup climbs to `lr_max` from `lr_max / W`, whatever `lr_min` is.
#
# PyTorch builds the same schedule from two schedulers chained by `SequentialLR`:
#
# ```python
# SequentialLR(optimizer, [LinearLR(optimizer, start_factor=1 / W, end_factor=1.0, total_iters=W - 1),
#                          CosineAnnealingLR(optimizer, T_max=T - W, eta_min=lr_min)], milestones=[W])
# ```
#
# `LinearLR` multiplies the base learning rate by a factor that goes linearly from
# `start_factor` to `end_factor` over `total_iters` steps: at update $k < W$ that is
# $\frac{1}{W} + \left(1 - \frac{1}{W}\right)\frac{k}{W-1} = \frac{k+1}{W}$, our warmup. At
# the milestone $W$ `SequentialLR` hands over to `CosineAnnealingLR`, which starts counting
# again from 0: update $W + j$ uses the cosine at $j/(T-W)$. The one difference is past the
# end: `CosineAnnealingLR` is periodic and climbs back towards the peak after `T_max` steps,
# where our schedule holds `lr_min`. The tests compare the two up to $t = T$ and check past
# the end separately.
#
# **Exercise (2 points).** Write `warmup_cosine(step, lr_max, total_steps, warmup_steps,
# lr_min=0.0)` following the formula above, for `1 <= warmup_steps < total_steps`.

# %% nbgrader={"grade_id": "warmup_cosine", "solution": true}
def warmup_cosine(step, lr_max, total_steps, warmup_steps, lr_min=0.0):
    """Linear warmup over warmup_steps updates, then a cosine from lr_max to lr_min at total_steps."""
    ### BEGIN SOLUTION
    if step < warmup_steps:
        return lr_max * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))  # held at 1 past the end
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * progress))
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_warmup_cosine", "grade": true, "points": 2}
import math
import warnings

from lrcourse.checks import call, code, run_tests
from lrcourse.reference import torch_lrs
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR


def torch_warmup_cosine(lr_max, total_steps, warmup_steps, lr_min, n_steps):
    """PyTorch's warmup + cosine: the LR of updates 0 .. n_steps - 1."""
    def make(opt):
        return SequentialLR(opt, [LinearLR(opt, start_factor=1 / warmup_steps, end_factor=1.0,
                                           total_iters=warmup_steps - 1),
                                  CosineAnnealingLR(opt, T_max=total_steps - warmup_steps, eta_min=lr_min)],
                            milestones=[warmup_steps])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch_lrs(make, lr_max, n_steps)


def warmup_cosine_cases(lr_max, total, warmup, lr_min, why=""):
    """Every step 0 .. total against PyTorch, then past the end against lr_min."""
    args = f"{lr_max!r}, {total}, {warmup}, {lr_min!r}"
    shown = f"warmup_cosine(s, {lr_max}, total_steps={total}, warmup_steps={warmup}, lr_min={lr_min})"
    # Past the end CosineAnnealingLR climbs back up (it is periodic); our schedules hold lr_min.
    past = [total + 1, total + 2, 2 * total, 10 * total + 3]
    return [
        code(f"[warmup_cosine(s, {args}) for s in range({total + 1})]",
             f"{shown} for s = 0..{total}, compared with SequentialLR(LinearLR, CosineAnnealingLR){why}").expect(
            torch_warmup_cosine(lr_max, total, warmup, lr_min, total + 1),  # steps 0 .. total
            hint="warmup lr_max * (step + 1) / W for step < W; then the cosine over (step - W) / (T - W)"),
        code(f"[warmup_cosine(s, {args}) for s in {past}]", f"{shown} for s = {past} (past the end)").expect(
            [lr_min] * len(past),
            hint="after total_steps the schedule holds lr_min (unlike CosineAnnealingLR, which climbs back)"),
    ]


tests = [
    call("warmup_cosine", 0, 1.0, 10, 2).expect(0.5, hint="the first update uses lr_max / warmup_steps"),
    call("warmup_cosine", 1, 1.0, 10, 2).expect(1.0, hint="update warmup_steps - 1 uses lr_max"),
    call("warmup_cosine", 2, 1.0, 10, 2).expect(1.0, hint="the cosine starts at progress 0, which is lr_max again"),
    call("warmup_cosine", 6, 1.0, 10, 2).expect(
        0.5, hint="update 6 is halfway through the decay: progress (6 - 2) / (10 - 2) = 0.5, cos(pi / 2) = 0"),
    call("warmup_cosine", 10, 1.0, 10, 2).expect(0.0, hint="the cosine reaches lr_min at step total_steps"),
    call("warmup_cosine", 6, 1.0, 10, 2, lr_min=0.2).expect(
        0.6, hint="halfway through the decay the LR is the mean of lr_max and lr_min"),
    *warmup_cosine_cases(0.1, 20, 5, 0.01),
]
### BEGIN HIDDEN TESTS
for lr_max, total, warmup, lr_min, why in ((0.3, 50, 10, 0.0, ""), (6e-3, 1000, 30, 6e-4, " (a longer run)"),
                                           (0.5, 12, 1, 0.05, " (a warmup of 1 update)"),
                                           (0.2, 16, 4, 0.2, " (lr_min = lr_max)"),
                                           (1.0, 8, 7, 0.1, " (one decay step)"),
                                           (2.0, 30, 2, 0.0, "")):
    tests += warmup_cosine_cases(lr_max, total, warmup, lr_min, why)
tests += [
    call("warmup_cosine", 0, 0.5, 12, 1, 0.05).expect(
        0.5, hint="with a warmup of 1 update, update 0 already uses lr_max"),
    call("warmup_cosine", 0, 0.3, 50, 10, 0.1).expect(
        0.03, hint="the warmup starts from lr_max / warmup_steps, not from lr_min"),
    call("warmup_cosine", 99, 1.0, 100, 20, 0.05).expect(
        0.05 + 0.5 * (1.0 - 0.05) * (1 + math.cos(math.pi * 79 / 80)),
        hint="the last update, total_steps - 1, is at progress 79 / 80: a little above lr_min"),
    call("warmup_cosine", 100, 1.0, 100, 20, 0.05).expect(
        0.05, hint="at step total_steps the cosine has reached lr_min"),
    call("warmup_cosine", 10**7, 1.0, 100, 20, 0.05).expect(0.05, hint="far past the end the schedule holds lr_min"),
    call("warmup_cosine", 51, 2.0, 101, 1).expect(
        1.0, hint="progress (51 - 1) / (101 - 1) = 0.5 is the midpoint of the cosine"),
    code("warmup_cosine(7, 2, 10, 4, 0)", "warmup_cosine(7, 2, 10, 4, 0) with integer arguments").expect(
        1.0, hint="progress (7 - 4) / (10 - 4) = 0.5: divide with /, not //"),
    call("warmup_cosine", 4, 1.0, 8, 2).expect(0.5 * (1 + math.cos(math.pi * 2 / 6)), hint="progress (4 - 2) / (8 - 2)"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# ## 5. Warmup-stable-decay
#
# WSD holds the peak after the warmup and saves all of the decay for a cooldown over the
# last `decay_steps` updates ($D$); ours is linear, the simplest of the shapes in use. Where exactly does the cooldown start and end? We use
# the same convention as the cosine: the decay runs over progress
# $p = (t - (T - D))/D$, from $p = 0$ at update $T - D$ (still `lr_max`) to $p = 1$ at
# $t = T$, the first step past the end (`lr_min`). With $W$ warmup updates:
#
# $$
# \text{lr}(t) = \begin{cases}
#   \text{lr}_{\max}\,\dfrac{t+1}{W} & 0 \le t < W \quad\text{(warmup)}\\[1.5ex]
#   \text{lr}_{\max} & W \le t < T - D \quad\text{(stable)}\\[1.5ex]
#   \text{lr}_{\min} + (\text{lr}_{\max} - \text{lr}_{\min})\,\dfrac{T - t}{D} & T - D \le t < T \quad\text{(decay)}\\[1.5ex]
#   \text{lr}_{\min} & t \ge T
# \end{cases}
# $$
#
# ($\text{lr}_{\max} - (\text{lr}_{\max} - \text{lr}_{\min})\,p$ is the same line as the
# decay case.) The cooldown is the warmup played backwards: its $D$ updates use
# $\frac{D}{D}, \frac{D-1}{D}, \dots, \frac{1}{D}$ of the way from `lr_min` to `lr_max`,
# so the last update of the run uses $\text{lr}_{\min} + (\text{lr}_{\max} - \text{lr}_{\min})/D$.
# With `lr_min = 0` no update is wasted at either end. For $T = 10$, $W = 2$, $D = 4$,
# `lr_max = 1`, `lr_min = 0`:
#
# | update `step` | 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 (past the end) |
# |---|---|---|---|---|---|---|---|---|---|---|---|
# | phase | warmup | warmup | stable | stable | stable | stable | decay | decay | decay | decay | |
# | `lr` | 0.5 | 1 | 1 | 1 | 1 | 1 | 1 | 0.75 | 0.5 | 0.25 | 0 |
#
# The edge cases follow: `decay_steps = 0` means no decay (`lr_max` up to update $T-1$,
# `lr_min` from $T$ on, like every schedule here past its end); `decay_steps = T - W` leaves
# no stable phase, and the decay starts right after the warmup. We assume
# `1 <= warmup_steps` and `warmup_steps + decay_steps <= total_steps`. Watch the order of
# your cases: with `decay_steps = 0` there is nothing to divide by.
#
# PyTorch can build this one too: `SequentialLR` over `LinearLR` (warmup), `ConstantLR` with
# `factor=1.0` (stable) and a second `LinearLR` from factor 1 to `lr_min / lr_max` over $D$
# steps (decay), with milestones at $W$ and $T - D$. `LinearLR` holds its final factor, so
# here PyTorch agrees with us past the end as well.
#
# **Exercise (2 points).** Write `warmup_stable_decay(step, lr_max, total_steps,
# warmup_steps, decay_steps, lr_min=0.0)`.

# %% nbgrader={"grade_id": "warmup_stable_decay", "solution": true}
def warmup_stable_decay(step, lr_max, total_steps, warmup_steps, decay_steps, lr_min=0.0):
    """Linear warmup, constant lr_max, then a linear decay to lr_min over the last decay_steps updates."""
    ### BEGIN SOLUTION
    if step < warmup_steps:
        return lr_max * (step + 1) / warmup_steps
    if step >= total_steps:
        return lr_min
    decay_start = total_steps - decay_steps
    if step >= decay_start:  # no-mutate (`>` is equivalent: at decay_start the decay gives lr_max too)
        return lr_min + (lr_max - lr_min) * (total_steps - step) / decay_steps
    return lr_max
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_warmup_stable_decay", "grade": true, "points": 2}
import warnings

from lrcourse.checks import assert_close, call, code, run_tests
from lrcourse.reference import torch_lrs
from torch.optim.lr_scheduler import ConstantLR, LinearLR, SequentialLR


def torch_wsd(lr_max, total_steps, warmup_steps, decay_steps, lr_min, n_steps):
    """PyTorch's warmup-stable-decay (decay_steps >= 1): the LR of updates 0 .. n_steps - 1."""
    def make(opt):
        return SequentialLR(opt, [LinearLR(opt, start_factor=1 / warmup_steps, end_factor=1.0,
                                           total_iters=warmup_steps - 1),
                                  ConstantLR(opt, factor=1.0, total_iters=0),
                                  LinearLR(opt, start_factor=1.0, end_factor=lr_min / lr_max,
                                           total_iters=decay_steps)],
                            milestones=[warmup_steps, total_steps - decay_steps])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch_lrs(make, lr_max, n_steps)


def first_matches_second(what, hint):
    """A check: the two lists of a (first, second) result agree."""
    def check(got):
        first, second = got
        assert_close(first, second, what, hint=hint)
    return check


def wsd_case(lr_max, total, warmup, decay, lr_min, why=""):
    shown = (f"warmup_stable_decay(s, {lr_max}, total_steps={total}, warmup_steps={warmup}, "
             f"decay_steps={decay}, lr_min={lr_min})")
    n = total + 5
    return code(f"[warmup_stable_decay(s, {lr_max!r}, {total}, {warmup}, {decay}, {lr_min!r}) for s in range({n})]",
                f"{shown} for s = 0..{n - 1}, compared with SequentialLR(LinearLR, ConstantLR, LinearLR){why}").expect(
        torch_wsd(lr_max, total, warmup, decay, lr_min, n),
        hint="the decay covers updates total_steps - decay_steps .. total_steps - 1 and uses "
             "lr_min + (lr_max - lr_min) * (total_steps - step) / decay_steps")


tests = [
    code("[warmup_stable_decay(s, 1.0, 10, 2, 4) for s in range(11)]",
         "[warmup_stable_decay(s, 1.0, total_steps=10, warmup_steps=2, decay_steps=4) for s in range(11)]").expect(
        [0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0],
        hint="the table above: updates 6..9 decay, 1, 0.75, 0.5, 0.25; step 10 (past the end) gives lr_min"),
    call("warmup_stable_decay", 9, 1.0, 10, 2, 4, lr_min=0.2).expect(
        0.4, hint="the last update is 1/D of the way from lr_min to lr_max: 0.2 + 0.8 / 4"),
    wsd_case(0.1, 20, 5, 4, 0.01),
]
### BEGIN HIDDEN TESTS
for lr_max, total, warmup, decay, lr_min, why in ((0.3, 50, 10, 10, 0.0, ""),
                                                  (6e-3, 1000, 20, 200, 6e-4, " (a longer run)"),
                                                  (0.5, 12, 1, 3, 0.05, " (a warmup of 1 update)"),
                                                  (0.2, 16, 4, 12, 0.0, " (decay_steps = total_steps - warmup_steps)"),
                                                  (0.2, 16, 4, 5, 0.2, " (lr_min = lr_max)"),
                                                  (1.0, 9, 3, 1, 0.1, " (a decay of 1 update)")):
    tests.append(wsd_case(lr_max, total, warmup, decay, lr_min, why))
tests += [
    # A ZeroDivisionError here is reported as "raised ZeroDivisionError: division by zero".
    code("[warmup_stable_decay(s, 0.4, 8, 2, 0, 0.1) for s in range(11)]",
         "[warmup_stable_decay(s, 0.4, total_steps=8, warmup_steps=2, decay_steps=0, lr_min=0.1) "
         "for s in range(11)]").expect(
        [0.2, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.1, 0.1, 0.1],
        hint="decay_steps = 0: no decay inside the run, lr_min from total_steps on (and nothing to divide by: "
             "handle step >= total_steps before the decay case)"),
    code("[warmup_stable_decay(s, 1.0, 6, 2, 4) for s in range(7)]",
         "[warmup_stable_decay(s, 1.0, total_steps=6, warmup_steps=2, decay_steps=4) for s in range(7)]").expect(
        [0.5, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0], hint="no stable phase: the decay starts at update warmup_steps, "
                                                    "still at lr_max"),
    call("warmup_stable_decay", 0, 0.3, 100, 10, 20, 0.1).expect(
        0.03, hint="the warmup starts from lr_max / warmup_steps, not from lr_min"),
    call("warmup_stable_decay", 79, 0.3, 100, 10, 20, 0.1).expect(
        0.3, hint="update total_steps - decay_steps - 1 is the last of the stable phase"),
    call("warmup_stable_decay", 81, 0.3, 100, 10, 20, 0.1).expect(
        0.29, hint="update 81 is the second of the decay: 0.1 + 0.2 * 19 / 20"),
    call("warmup_stable_decay", 10**7, 0.3, 100, 10, 20, 0.1).expect(
        0.1, hint="far past the end the schedule holds lr_min"),
    code("warmup_stable_decay(7, 2, 10, 2, 4, 0)", "warmup_stable_decay(7, 2, 10, 2, 4, 0) with integer arguments").expect(
        1.5, hint="2 * (10 - 7) / 4: check your divisions with integers"),
    code("([warmup_stable_decay(s, 0.4, 8, 2, 1, 0.1) for s in range(8)],\n"
         " [warmup_stable_decay(s, 0.4, 8, 2, 0, 0.1) for s in range(8)])",
         "warmup_stable_decay with decay_steps = 1 against decay_steps = 0, over updates 0..7").check(
        first_matches_second("warmup_stable_decay with decay_steps = 1 against decay_steps = 0, over updates 0..7",
                             hint="a decay of 1 update uses lr_max for that update, like a warmup of 1 update: "
                                  "the two agree inside the run")),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# Your three schedules over a run of 1,000 updates, with the same peak and a warmup of 100
# updates; the WSD cools down over the last 200. On the right, the two decays at the end of
# the run and a few steps past it (the dotted line is `total_steps`): the last update of the
# WSD still uses 1/200 of the peak, not 0, and after the end both hold `lr_min`.

# %% tags=["illustration"]
total, warmup, peak = 1000, 100, 1.0
curves = {
    "linear_warmup": [linear_warmup(s, peak, warmup) for s in range(total)],
    "warmup_cosine (lr_min = 0.1)": [warmup_cosine(s, peak, total, warmup, 0.1) for s in range(total)],
    "warmup_stable_decay (D = 200)": [warmup_stable_decay(s, peak, total, warmup, 200) for s in range(total)],
}
end_steps = np.arange(total - 8, total + 5)
ends = {"warmup_cosine (lr_min = 0.1)": [warmup_cosine(s, peak, total, warmup, 0.1) for s in end_steps],
        "warmup_stable_decay (D = 200)": [warmup_stable_decay(s, peak, total, warmup, 200) for s in end_steps]}
fig, (ax_all, ax_end) = plt.subplots(1, 2, figsize=(13, 4))
for (label, values), color in zip(curves.items(), ("tab:blue", "tab:orange", "tab:green")):
    ax_all.plot(values, label=label, linewidth=1.5, color=color)
    if label in ends:
        ax_end.plot(end_steps, ends[label], marker="o", label=label, linewidth=1, color=color)
ax_end.axvline(total - 0.5, color="gray", linestyle=":", linewidth=1)
ax_all.set(xlabel="update (step)", ylabel="learning rate / peak", title="three schedules, T = 1000, W = 100")
ax_end.set(xlabel="update (step)", ylim=(-0.005, 0.12), title="the end of the run (dotted), and past it")
for ax in (ax_all, ax_end):
    ax.grid(True, alpha=0.3)
ax_all.legend(fontsize="small")
fig.tight_layout()
print("mean LR over the run (a rough measure of how far it travels): "
      + ", ".join(f"{label.split(' ')[0]} {np.mean(values):.3f}" for label, values in curves.items()))

# %% [markdown]
# ## 6. Explore
#
# Pick a schedule and move its sliders (not graded; it needs a running notebook). It calls
# your functions. Try a long warmup with the cosine and see how much of the run is left for
# the decay; set `decay_steps` to 0 and to `total_steps - warmup_steps`; and tick *show past
# the end* to check that all three hold their last value.

# %% tags=["illustration"]
from lrcourse.explorer import Param, schedule_explorer

schedule_explorer(
    {"warmup + cosine": warmup_cosine, "warmup-stable-decay": warmup_stable_decay, "linear warmup": linear_warmup},
    total_steps=1000,
    specs={"warmup-stable-decay": {"decay_steps": Param("int", 200, 0, 500, 10)}},
)

# %% [markdown]
# ## 7. Warmup on a small transformer
#
# Time to see the effect. The model is a small character-level transformer from `lrcourse`
# (2 layers, width 48, 4 heads, 67k parameters, weights from $\mathcal{N}(0, 0.02^2)$) that
# learns to predict the next character of Python's documentation, trained with AdamW
# ($\beta_1 = 0.9$, $\beta_2 = 0.999$) on batches of 32 windows of 32 characters.
#
# We use a peak learning rate of 0.01, high for this model. Two schedules, which differ only
# in the warmup:
#
# * **no warmup**: 0.01 from the first update;
# * **warmup**: your `linear_warmup` over the first 100 updates, then 0.01.
#
# Why 100 and not the $2/(1-\beta_2) = 2{,}000$ updates of Ma & Yarats? Their rule is a
# default for long runs, where 2,000 updates are a small share; here it would be longer than
# the whole run of 300 updates, and the peak would never be reached. What the warmup has to
# cover is the time Adam's $\hat v$ needs to become a fair estimate. Early in a run the bias
# correction makes $\hat v_t$ close to the plain mean of the $t$ squared gradients seen so
# far (the weights $\beta_2^{t-k}$ are all near 1 while $t \ll 1/(1-\beta_2)$), so after 100
# updates it already averages 100 of them. The experiment below shows that 100 updates are
# enough here.
#
# Each pair of runs starts from the same initial weights and sees the same batches, and
# we repeat it for several seeds. Two reference lines help read the loss: the entropy of
# the characters' frequencies (3.25 nats, the loss of a model that ignores the context and
# always predicts how common each character is), and the entropy of the next character
# given the previous one (2.48 nats, the best a model can do that only looks one character
# back). On two CPU cores this takes about half a minute.

# %% nbgrader={"grade_id": "experiment_settings", "locked": true}
PEAK_LR, WARMUP_STEPS, TOTAL_STEPS = 0.01, 100, 300
SPIKE_LR, SPIKE_WARMUP, SPIKE_STEPS = 0.3, 30, 40
SEEDS = [0, 1, 2]
if lrcourse.quick_mode():
    WARMUP_STEPS, TOTAL_STEPS, SEEDS = 50, 150, [0]

# %% tags=["illustration"]
def char_entropies(tokens, vocab_size):
    """Entropy (nats) of the character frequencies, and of the next character given the previous one."""
    tokens = tokens.cpu()
    unigram = torch.bincount(tokens, minlength=vocab_size).double()
    p = unigram[unigram > 0] / unigram.sum()
    pairs = torch.bincount(tokens[:-1] * vocab_size + tokens[1:], minlength=vocab_size**2).double()
    joint = pairs.view(vocab_size, vocab_size) / pairs.sum()
    conditional = joint / joint.sum(dim=1, keepdim=True).clamp_min(1e-300)
    mask = joint > 0
    return float(-(p * p.log()).sum()), float(-(joint[mask] * conditional[mask].log()).sum())


UNIGRAM, BIGRAM = char_entropies(corpus.train, corpus.vocab_size)
schedules = {
    "no warmup": lambda step: PEAK_LR,
    f"warmup ({WARMUP_STEPS} updates)": lambda step: linear_warmup(step, PEAK_LR, WARMUP_STEPS),
}


def train_pairs(schedules, total_steps, **kwargs):
    """Each schedule on every seed, as {name: [History per seed]}: all runs trained at once, on two cores."""
    return per_schedule_and_seed(train_lm_batched, schedules, SEEDS, total_steps, corpus=corpus, device=device,
                                 workers=1 if lrcourse.quick_mode() else 2, **kwargs)


runs = train_pairs(schedules, TOTAL_STEPS, eval_every=TOTAL_STEPS)


from lrcourse.plots import trailing_mean

fig, (ax_lr, ax_loss) = plt.subplots(2, 1, sharex=True, figsize=(9, 7), gridspec_kw={"height_ratios": [1, 2.5]})
for (name, histories), color in zip(runs.items(), ("tab:red", "tab:blue")):
    ax_lr.plot(histories[0].lr, color=color, linewidth=2, label=name)
    for i, history in enumerate(histories):
        ax_loss.plot(trailing_mean(history.loss, 10), color=color, linewidth=1.2, alpha=0.8,
                     label=f"{name} ({len(SEEDS)} seed{'s' if len(SEEDS) > 1 else ''})" if i == 0 else None)
ax_loss.axhline(UNIGRAM, color="gray", linestyle="--", linewidth=1)
ax_loss.text(TOTAL_STEPS * 0.99, UNIGRAM + 0.02, f"character frequencies only: {UNIGRAM:.2f}", ha="right",
             va="bottom", fontsize="small", color="dimgray")
ax_loss.axhline(BIGRAM, color="gray", linestyle="--", linewidth=1)
ax_loss.text(TOTAL_STEPS * 0.01, BIGRAM - 0.02, f"previous character only: {BIGRAM:.2f}", ha="left",
             va="top", fontsize="small", color="dimgray")
ax_lr.set(ylabel="learning rate", title=f"tiny transformer, AdamW, peak LR {PEAK_LR}")
ax_lr.legend(fontsize="small", loc="lower right")
ax_loss.set(xlabel="update (step)", ylabel="training loss, nats/char\n(mean of last 10 updates)", ylim=(1.8, 4.8))
ax_loss.legend(fontsize="small")
for ax in (ax_lr, ax_loss):
    ax.grid(True, alpha=0.3)
fig.tight_layout()

# %% [markdown]
# The numbers behind the plot: for each seed, the mean training loss over the last 20
# updates and the validation loss (on text the model never saw) after the last update.

# %% tags=["illustration"]
no_warm, warm = runs.values()
print(f"{'seed':>4} | {'no warmup':^15} | {'warmup':^15} | warmup lower by")
print(f"{'':>4} | {'train    val':^15} | {'train    val':^15} | (validation)")
for seed, h0, h1 in zip(SEEDS, no_warm, warm):
    print(f"{seed:>4} | {h0.final_loss():6.3f}  {h0.val_loss[-1]:6.3f} | "
          f"{h1.final_loss():6.3f}  {h1.val_loss[-1]:6.3f} | {h0.val_loss[-1] - h1.val_loss[-1]:6.3f}")
wins = sum(h1.val_loss[-1] < h0.val_loss[-1] for h0, h1 in zip(no_warm, warm))
print(f"\nWith warmup the validation loss ended lower for {wins} of {len(SEEDS)} seeds.")
print(f"Diverged (inf/NaN): {sum(h.diverged for h in no_warm)} without warmup, "
      f"{sum(h.diverged for h in warm)} with it.")

# %% [markdown]
# What the plot and the table show, for every seed above (the exact numbers change with the
# seed and the device):
#
# * **Without warmup the start looks better.** Full-size steps bring the loss from 4.5
#   down to the character-frequency line, 3.25, within about fifteen updates, long before
#   the warmup run gets there.
# * **Then it stalls.** The run without warmup sits on that line for dozens of updates,
#   and ends close to the "previous character only" line (about 2.5): it has learned which
#   character tends to follow which, and little more. The warmup run passes the first line
#   with at most a short pause and ends well below the second, around 2.1-2.3: it makes use
#   of more of the context.
# * **Nothing diverged.** The damage of the first full-size updates is quiet here: no
#   spike, no NaN, just a network that ends up in a worse place and does not recover within
#   the budget.
#
# A spike needs a higher peak. The cell below repeats the comparison for only 40 updates
# at a peak of 0.3, thirty times higher, with and without a warmup of 30 updates, and plots
# the raw loss of every update.

# %% tags=["illustration"]
spike_schedules = {
    "no warmup": lambda step: SPIKE_LR,
    f"warmup ({SPIKE_WARMUP} updates)": lambda step: linear_warmup(step, SPIKE_LR, SPIKE_WARMUP),
}
spike_runs = train_pairs(spike_schedules, SPIKE_STEPS)
fig, ax = plt.subplots(figsize=(9, 4))
for (name, histories), color in zip(spike_runs.items(), ("tab:red", "tab:blue")):
    for i, history in enumerate(histories):
        ax.plot(history.loss, color=color, linewidth=1.2, marker=".", alpha=0.8, label=name if i == 0 else None)
ax.axhline(UNIGRAM, color="gray", linestyle="--", linewidth=1)
ax.set(xlabel="update (step)", ylabel="training loss, nats/char",
       title=f"peak LR {SPIKE_LR}: the first {SPIKE_STEPS} updates")
ax.grid(True, alpha=0.3)
ax.legend(fontsize="small")
fig.tight_layout()
for name, histories in spike_runs.items():
    print(f"{name:<22} " + "   ".join(f"seed {seed}: first loss {h.loss[0]:.2f}, highest {max(h.loss):5.2f}"
                                       for seed, h in zip(SEEDS, histories)))

# %% [markdown]
# Without warmup the loss jumps to about twice its starting value or more within the first
# few updates (the highest losses are printed above), for every seed: Adam's first steps,
# each moving every weight by 0.3 when the weights themselves are about 0.02, throw the
# network far off. With the warmup the loss does not rise above where it started. But look
# at the end of the warmup runs too: they get no further than the character-frequency line.
# A peak of 0.3 is simply too high for this model. Warmup lets a run *reach* a high peak
# without wrecking the network on the way; it does not make every peak a good one.
#
# **Try it** (not graded): in a new cell run `PEAK_LR = 0.003`, then run the training cell
# and the table of section 7 again. Does the warmup still matter at a third of the peak?
#
# The lesson holds beyond this toy: at a high peak learning rate, training without warmup
# can fail in ways that do not look like failure, so compare against a run with warmup
# before concluding that a learning rate is "too high".
#
# ## Summary
#
# * Adam's first update moves every weight by the full learning rate
#   ($\hat m_1/\sqrt{\hat v_1} = \operatorname{sign}(g_1)$), and its early steps stay large
#   while its averages fill up. Warmup keeps them small: a linear warmup over about
#   $2/(1-\beta_2)$ updates is a good default for long runs (Ma & Yarats, 2019); a short run
#   needs only enough updates for $\hat v$ to average a fair number of gradients.
# * The standard large-model schedule has three phases: a linear warmup (0.1-2% of a large
#   run), the peak, and a decay (cosine, or the short cooldown of WSD: exponential in Hu et
#   al., `1 - sqrt` best in Hägele et al., linear here).
# * This course's warmup uses `lr_max * (step + 1) / W` for update `step < W`: no update at
#   learning rate 0, and the peak at update `W - 1`. Hugging Face starts at 0 (one wasted
#   update); nanoGPT uses `(step + 1) / (W + 1)`.
# * Warmup + cosine equals PyTorch's `SequentialLR(LinearLR, CosineAnnealingLR)` up to the
#   end of the run (then `CosineAnnealingLR` climbs back up); WSD equals
#   `SequentialLR(LinearLR, ConstantLR, LinearLR)`.
# * On a small transformer at a high peak learning rate, skipping the warmup gave a faster
#   start and a worse model, for every seed; at a far higher peak it made the loss spike.
#
# Next: **05 · Schedules inside PyTorch**: how a PyTorch scheduler drives the optimizer,
# your schedules as `LambdaLR`s, and checkpoints that resume them exactly.
