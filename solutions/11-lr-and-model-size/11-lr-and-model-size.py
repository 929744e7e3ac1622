# %% [markdown]
# # 11 · The learning rate and model size
#
# Every learning rate in this course so far was tuned for one network. Real projects
# rarely stay at one size: an idea is tried on a small model, and then a bigger one is
# trained, once, at a cost where a sweep of learning rates is out of the question. So the
# question of this notebook matters in practice: **when a network gets wider, does its
# best learning rate stay where it was?** With PyTorch's defaults it does not. We measure
# how far it moves, find the reason in a single Adam update, and build the fix: the
# *Maximal Update Parametrization* (muP) of Yang et al. (2022, arXiv:2203.03466, "Tensor
# Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer").
#
# **You will**
# 1. sweep the learning rate of the digits network at four widths, and watch the best
#    learning rate move;
# 2. work out how far one Adam update moves a layer's output, and why that grows with the
#    number of inputs the layer sums over;
# 3. derive muP's three changes for Adam (a learning rate per tensor, a multiplier on the
#    readout, the initial scale of some tensors) and build them for any MLP;
# 4. check that with your muP the narrow network's best learning rate is the best one at
#    every width;
# 5. sort what an experiment this small can show from what it cannot.
#
# Exercises: `adam_first_step_change` (2 points), `readout_multiplier` (1), `mup_init_` (2),
# `mup_param_groups` (3).

# %% nbgrader={"grade_id": "setup", "locked": true}
import math

import matplotlib.pyplot as plt
import numpy as np
import torch

import lrcourse
from lrcourse.mup import WidthMLP, best_lr, lr_multipliers, train_width_batched

lrcourse.seed_everything(0)
device = lrcourse.pick_device()
print(f"PyTorch {torch.__version__}, training on: {device}")
if lrcourse.quick_mode():
    print("Quick mode: the sweeps use two widths, fewer learning rates and one seed (grading or CI).")

# %% [markdown]
# ## 1. One sweep, four widths
#
# `WidthMLP(width)` (in `lrcourse/mup.py`) is the digits network with its width as a
# parameter: 64 inputs, two hidden layers of `width` ReLU units, 10 outputs. At width 128 it
# is the network of the earlier notebooks. Its linear layers come in three kinds, and the
# kinds will matter:
#
# * the **input layer**, `model.layers[0]` (width x 64): it sums over the 64 pixels,
#   whatever the width;
# * the **hidden layer**, `model.layers[1]` (width x width): it sums over `width` inputs;
# * the **readout**, `model.layers[-1]` (10 x width): it also sums over `width` inputs.
#
# The number of inputs a layer sums over is its *fan-in*. PyTorch initialises the weights
# and the bias of `nn.Linear` uniformly in $\pm 1/\sqrt{\text{fan-in}}$, so that every
# layer's outputs start at about the same size, however many inputs it has: a wider layer
# starts with smaller weights. These initial scales, with one learning rate for every
# tensor, are the **standard parametrization** (SP).
#
# The experiment: AdamW without weight decay (betas 0.9 and 0.999, batch 64) for 60
# updates, at 15 learning rates a factor $\sqrt 2$ apart from 6e-4 to 0.077, at widths 32,
# 64, 128 and 256, with three seeds. A run's score is its final training loss (the mean
# over its last 20 updates, as in notebooks 01 and 07; Yang et al. also compare learning
# rates on the training loss). Why so short a run? A few hundred Adam updates drive the
# training loss of every good learning rate close to zero on our 1,437 images, and the
# curve of loss against learning rate gets a long flat bottom with no clear best point.
#
# Since the grid is coarse, `best_lr` fits a parabola to $\log(\text{loss})$ against
# $\log(\text{lr})$ through the lowest point and two neighbours on each side, and returns
# the learning rate at its bottom. All copies of one width train at once with
# `train_width_batched` (stacked weights; the results of a plain `torch.optim.AdamW` loop,
# to float rounding).

# %% nbgrader={"grade_id": "experiment_settings", "locked": true}
BASE_WIDTH = 32  # the narrow model we tune on
WIDTHS = [32, 64, 128, 256]
STEPS = 60
SEEDS = [0, 1, 2]
LRS = [3e-4 * 2 ** (k / 2) for k in range(2, 17)]  # 6e-4 .. 0.077, a factor sqrt(2) apart
if lrcourse.quick_mode():
    WIDTHS, SEEDS, LRS = [32, 128], [0], LRS[2:]

# %% tags=["illustration"]
digits = lrcourse.load_digits(device)


def standard(width):
    """SP: PyTorch's initial scales and one learning rate (model_fn, LR multipliers by name, init)."""
    return (lambda: WidthMLP(width)), {}, None


def sweep(parametrization):
    """Final loss (last 20 updates; inf if diverged) of every width, seed and LR: widths x seeds x LRs."""
    finals = np.empty((len(WIDTHS), len(SEEDS), len(LRS)))
    for i, width in enumerate(WIDTHS):
        model_fn, lr_mults, init = parametrization(width)
        runs = train_width_batched(model_fn, [lr for _ in SEEDS for lr in LRS], STEPS,
                                   seeds=[seed for seed in SEEDS for _ in LRS], lr_mults=lr_mults, init=init,
                                   data=digits, device=device)
        finals[i] = np.reshape([run.final_loss(20) for run in runs], (len(SEEDS), len(LRS)))
    return finals


def best_lrs(finals):
    """best_lr of every width and seed: widths x seeds."""
    return np.array([[best_lr(LRS, losses) for losses in per_seed] for per_seed in finals])


def slope(best):
    """Per seed, the exponent a of best LR ~ width**a (a least-squares line through log-log points)."""
    return np.polyfit(np.log(WIDTHS), np.log(best), 1)[0]


def report(name, best):
    """Print the best LRs, and how far they move over the widths."""
    print(f"{name}: best learning rate (rows: widths; columns: seeds {SEEDS})")
    for width, row in zip(WIDTHS, best):
        print(f"  width {width:5d}: " + "  ".join(f"{lr:.4f}" for lr in row))
    print("  widest / narrowest: " + "  ".join(f"{r:.2f}" for r in best[-1] / best[0])
          + ";   largest / smallest: " + "  ".join(f"{r:.2f}" for r in best.max(0) / best.min(0))
          + ";   best LR ~ width^a, a = " + "  ".join(f"{a:+.2f}" for a in slope(best)))


def draw_sweep(ax, finals, title):
    """Median final loss over the seeds against the LR, one line per width; diverged runs drawn at 3."""
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(WIDTHS)))
    for width, per_seed, color in zip(WIDTHS, finals, colors):
        ax.plot(LRS, np.median(np.minimum(per_seed, 3.0), axis=0), "o-", color=color, markersize=3,
                label=f"width {width}")
        for lr in (best_lr(LRS, losses) for losses in per_seed):  # each seed's best LR, as a tick
            ax.axvline(lr, ymin=0, ymax=0.05, color=color, linewidth=2)
    ax.axhline(math.log(10), color="gray", linestyle="--", linewidth=1, label="chance (ln 10)")
    ax.set(xscale="log", yscale="log", xlabel="learning rate", ylim=(0.02, 3.5), title=title,
           ylabel=f"final training loss after {STEPS} updates")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")


sp_finals = sweep(standard)
sp_best = best_lrs(sp_finals)
report("SP", sp_best)
fig, ax = plt.subplots(figsize=(7, 4.5))
draw_sweep(ax, sp_finals, "standard parametrization (ticks: each seed's best LR)")
fig.tight_layout()

# %% [markdown]
# On every seed the best learning rate falls as the width grows: from 0.014-0.015 at width
# 32 to 0.004-0.006 at width 256, 2.2 to 3.9 times lower (seeds 3, 4 and 5, run the same way
# while this notebook was written, gave 3.6 to 4.3 times). Fitted as a power of the width,
# the best learning rate goes like $\text{width}^{a}$ with $a$ between $-0.65$ and $-0.40$.
# The ticks at the bottom of the plot, one per seed, show how little the seeds disagree
# compared with how far the widths move apart. Yang et al. saw the same in their SP
# experiments, at much larger widths: the best learning rate of an MLP trained with SGD on
# CIFAR-10 moved by roughly an order of magnitude as the width grew from 256 to 8,192
# (arXiv:2203.03466, Section 3), and that of transformers trained with Adam moved too (their
# Figure 1). Tuning the narrow network and training the wide one at the same learning rate
# is a guess that gets worse the further you scale.
#
# ## 2. One Adam update on a wide layer
#
# Take one linear layer, $y = Wx$, inside a network: $x$ is its input, a vector of $n$
# numbers ($n$ is the fan-in), and backpropagation hands it $\delta = \partial L / \partial
# y$, the gradient of the loss with respect to its output (one number per output). The
# gradient with respect to the weights is an outer product,
#
# $$ \frac{\partial L}{\partial W_{ij}} = \delta_i\, x_j . $$
#
# Now Adam. Its update is $-\eta\, \hat m / (\sqrt{\hat v} + \epsilon)$, entry by entry,
# where $\hat m$ and $\hat v$ are the bias-corrected running means of the gradient and of
# its square (notebook 04 met them, and their noisy start). After the very first gradient
# $g$ the bias correction makes them exact: $\hat m = g$ and $\hat v = g^2$.
#
# **Exercise (2 points).** Work out what Adam's first update does to each weight $W_{ij}$
# (take $\epsilon = 0$; a weight whose gradient is exactly 0 does not move), and then how
# far it moves the layer's output on the same input, $\Delta y = \Delta W\, x$. Write
# `adam_first_step_change(x, delta, lr)`: `x` (length $n$) and `delta` (length fan-out) are
# lists or arrays; return $\Delta y$ as a NumPy array of length fan-out.

# %% nbgrader={"grade_id": "adam_first_step_change", "solution": true}
def adam_first_step_change(x, delta, lr):
    """How far Adam's first update moves y = W x, when dL/dy = delta: a NumPy array like delta."""
    ### BEGIN SOLUTION
    x, delta = np.asarray(x, dtype=np.float64), np.asarray(delta, dtype=np.float64)
    step = -lr * np.sign(np.outer(delta, x))  # every weight moves by lr, against its gradient's sign
    return step @ x
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_adam_first_step_change", "grade": true, "points": 2}
import numpy as np
import torch
from lrcourse.checks import assert_close, code, call, probe, run_tests


@probe
def against_torch_adam(x, delta, lr):
    """One step of torch.optim.Adam on y = W x with dL/dy = delta (W drawn at random): how far W x moved,
    and what adam_first_step_change says."""
    x_t, delta_t = torch.tensor(x, dtype=torch.float64), torch.tensor(delta, dtype=torch.float64)
    torch.manual_seed(0)
    layer = torch.nn.Linear(len(x), len(delta), bias=False).double()
    before = layer(x_t).detach()
    optimizer = torch.optim.Adam(layer.parameters(), lr=lr)
    (layer(x_t) * delta_t).sum().backward()  # makes dL/dy equal to delta
    optimizer.step()
    return {"adam": (layer(x_t).detach() - before).tolist(), "yours": adam_first_step_change(x, delta, lr)}


def matches_adam(what):
    """A check: the student's answer equals what torch.optim.Adam did (its eps = 1e-8 barely counts here)."""
    def check(result):
        assert_close(result["yours"], result["adam"], what, rtol=1e-5, atol=1e-9,
                     hint="Adam's first update divides the gradient by the square root of its square")
    return check


tests = [
    call("adam_first_step_change", [1.0, -2.0, 0.5], [0.3, -0.1], 0.01).expect(
        [-0.035, 0.035], hint="work out the update of one weight W_ij from m = g and v = g**2 first, then sum "
                              "the n terms of (delta_W x)_i"),
    code("against_torch_adam([0.5, -1.5, 2.0, 0.25], [1.0, -3.0, 0.02], 0.1)",
         "adam_first_step_change against one step of torch.optim.Adam (x of length 4, delta of length 3, "
         "lr 0.1)").check(matches_adam("adam_first_step_change([0.5, -1.5, 2.0, 0.25], [1.0, -3.0, 0.02], 0.1)")),
]
### BEGIN HIDDEN TESTS
rng = np.random.default_rng(11)
x_h, delta_h = rng.standard_normal(40), rng.standard_normal(5)
tests += [
    call("adam_first_step_change", x_h, delta_h, 0.002).expect(
        -0.002 * np.sign(delta_h) * np.abs(x_h).sum(), hint="each output moves by lr times the sum of |x_j|"),
    call("adam_first_step_change", [0.0, 1.0, -1.0], [0.0, 2.0], 0.1).expect(
        [0.0, -0.2], hint="a weight whose gradient is exactly 0 does not move"),
    call("adam_first_step_change", [1, 2], [1], 1).expect([-3.0], hint="integer inputs; return floats"),
    call("adam_first_step_change", np.ones(1000), [-1.0], 0.001).expect(
        [1.0], hint="the change adds up over all n inputs"),
    code("against_torch_adam(list(np.linspace(-2, 3, 17)), [0.7, -0.2], 0.003)",
         "adam_first_step_change against torch.optim.Adam (17 inputs, 2 outputs)").check(
        matches_adam("adam_first_step_change against torch.optim.Adam (17 inputs, 2 outputs)")),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# With $\hat m = g$ and $\hat v = g^2$ the update is $-\eta\, g/|g|$: every weight moves by
# exactly $\eta$, against the sign of its gradient, $\Delta W_{ij} = -\eta\,
# \operatorname{sign}(\delta_i)\operatorname{sign}(x_j)$. Then
#
# $$ \Delta y_i = \sum_{j=1}^{n} \Delta W_{ij}\, x_j = -\eta\, \operatorname{sign}(\delta_i)
#    \sum_{j=1}^{n} |x_j| . $$
#
# All $n$ terms push $y_i$ the same way, because the update was built from $x$ itself.
# If the inputs have entries of a typical size (which is what the initial scales are for),
# the sum is about $n$ times that size: **the change grows in proportion to the fan-in**.
# The weights at initialisation behave differently: $Wx$ sums $n$ terms of random signs,
# which partly cancel, and with entries of $W$ of size $1/\sqrt n$ the sum keeps the same
# size at every width (the central limit theorem). Yang et al. (arXiv:2203.03466, Appendix
# J, Table 14) put the two cases side by side: for a vector $x$ with entries of size 1 and
# a matrix $A$ with entries of size 1 that is correlated with it, the entries of $Ax$ have
# size $\sqrt n$ if $A$ is a random Gaussian matrix, and $n$ if $A$ is built from outer
# products (an SGD update) or from a function of them applied entry by entry (an Adam
# update). The first update is the clearest case, but the same holds later: each update
# stays built from the inputs the layer sees.
#
# The cell below calls your function at fan-ins from 32 to 1,024, with inputs like a ReLU
# layer's outputs, and compares the change with the size of the output at initialisation.

# %% tags=["illustration"]
rng = np.random.default_rng(0)
print(f"{'fan-in n':>9} {'|W x| at init':>14} {'|change| after one update':>26} {'change / n':>11}")
for n in (32, 64, 128, 256, 512, 1024):
    at_init, change = [], []
    for _ in range(20):  # average over 20 draws of inputs, weights and output gradients
        x = np.maximum(rng.standard_normal(n), 0.0)  # a ReLU layer's outputs
        w = rng.uniform(-1, 1, (8, n)) / math.sqrt(n)  # PyTorch's initial scale for a fan-in of n
        at_init.append(np.abs(w @ x).mean())
        change.append(np.abs(adam_first_step_change(x, rng.standard_normal(8), 0.001)).mean())
    print(f"{n:>9} {np.mean(at_init):>14.3f} {np.mean(change):>26.4f} {np.mean(change) / n:>11.2e}")


# %% [markdown]
# The output at initialisation stays at the same size, and the change made by one update
# doubles with every doubling of the fan-in. So, with one learning rate for every tensor,
# a hidden layer of width 256 moves its outputs 8 times as far per update as one of width
# 32. The learning rate that suits the narrow network's hidden layer is 8 times too large
# for the wide one's. (Section 1's best learning rate fell less than 8 times: it is one
# learning rate for every layer, and the input layer's updates do not grow with the width.
# Yang et al.'s words: under SP some layers update too fast and others too slow.)
#
# The cure for a tensor whose updates act on a wide input is to make its learning rate
# fall as the fan-in grows, so that $\eta \sum_j |x_j|$ stays what it was at the base
# width. But not every tensor has a wide input. Before you write anything, sort the
# tensors of `WidthMLP` by which of their dimensions grow with the width: the input
# layer's weights map 64 pixels to `width` units, the hidden weights `width` units to
# `width` units, the readout's weights `width` units to 10 outputs; and a bias is a weight
# on an input that is always 1. Yang et al. call a tensor with two dimensions that grow
# *matrix-like* and one with a single such dimension *vector-like*.
#
# ## 3. The readout: a multiplier instead of a learning rate
#
# The readout sums over `width` inputs, so by section 2 its updates move the logits further
# and further as the width grows. Scaling its learning rate would cure that, but muP's
# implementations do something else: they keep the readout's learning rate and put a fixed
# **multiplier** $c$ in the forward pass,
#
# $$ \text{logits} = W_{\text{out}}\,(c\,h) + b_{\text{out}} , $$
#
# where $h$ is the last hidden layer's output (`WidthMLP(width, output_mult=c)` does this).
# Two facts decide $c$:
#
# * **Adam does not see the multiplier.** The gradient of $W_{\text{out}}$ gets a factor
#   $c$, so $\hat m$ gets a factor $c$ and $\sqrt{\hat v}$ a factor $|c|$: the update of
#   $W_{\text{out}}$ is exactly what it was without the multiplier (up to $\epsilon$). Each
#   entry still moves by about $\eta$ per update.
# * **The logits do.** The change of the logits is $c\,\Delta W_{\text{out}}\, h$: section
#   2's change, multiplied by $c$.
#
# **Exercise (1 point).** Write `readout_multiplier(width, base_width)`: the multiplier $c$
# that is 1 at the base width and keeps the logits' change per update at every width what
# it is at the base width.

# %% nbgrader={"grade_id": "readout_multiplier", "solution": true}
def readout_multiplier(width, base_width):
    """The readout's multiplier c: 1 at base_width, and a width-independent change of the logits per update."""
    ### BEGIN SOLUTION
    return base_width / width
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_readout_multiplier", "grade": true, "points": 1}
from lrcourse.checks import call, run_tests

tests = [
    call("readout_multiplier", 64, 64).expect(1.0, hint="at the base width nothing changes"),
    call("readout_multiplier", 256, 64).expect(
        0.25, hint="section 2: how much further does an update move the logits at 4 times the fan-in?"),
]
### BEGIN HIDDEN TESTS
tests += [
    call("readout_multiplier", 32, 128).expect(4.0, hint="a model narrower than the base gets a multiplier above 1"),
    call("readout_multiplier", 1000, 10).expect(0.01, hint="the change grows in proportion to the fan-in"),
    call("readout_multiplier", 96, 32).expect(1 / 3, hint="the ratio need not be a power of two"),
    call("readout_multiplier", 3, 2).expect(2 / 3, hint="use true division, not //"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# The change of the logits grows in proportion to the width, so $c$ must shrink in
# proportion: $c = \text{base\_width} / \text{width}$, the width multiplier's inverse. (We
# write $m = \text{width} / \text{base\_width}$ from now on, so $c = 1/m$.) Yang et al. put
# it as a rule: a multiplier of order 1/fan-in accompanies any weight that maps a dimension
# that grows with the width to one that does not (arXiv:2203.03466, Appendix B). In a
# transformer, the attention logits $q^\top k$ are such a map too, which is why muP scales
# them by $1/d$ rather than the usual $1/\sqrt d$ (their Definition 4.1).
#
# The multiplier also scales the gradient that flows back into the network by $c$. Adam
# does not mind, for the same reason as above, as long as the gradients stay well above its
# $\epsilon$ of 1e-8. In large models they need not: Everett et al. (2024,
# arXiv:2407.05872) show that $\epsilon$ must be scaled correctly too, to avoid gradient
# underflow.
#
# ## 4. Where the tensors start
#
# The learning rates and the multiplier fix how far each update moves things. What about
# where the tensors start? Take the two kinds in turn.
#
# * A **matrix-like** tensor (a hidden weight) needs the initial scale PyTorch gives it,
#   $1/\sqrt{\text{fan-in}}$: that is what keeps $Wx$ at the same size at every width, by
#   the central limit theorem of section 2.
# * A **vector-like** tensor moves by about $\eta$ per entry per update at every width (the
#   input layer and the biases with the learning rate $\eta$; the readout also, its effect
#   scaled by $c$). If its initial entries shrank with the width while its updates did not,
#   training would carry a wide model's vector-like tensors relatively further from where
#   they started than a narrow model's: the balance between what a tensor starts with and
#   what it learns would depend on the width. So a vector-like tensor's initial distribution
#   must not depend on the width at all.
#
# PyTorch draws both the weight and the bias of an `nn.Linear` uniformly in
# $\pm 1/\sqrt{\text{fan-in}}$, with the fan-in *of the layer*; for a bias, Yang et al.
# count a fan-in of 1 (the constant input it multiplies).
#
# **Exercise (2 points).** Write `mup_init_(model, width, base_width)`. It takes a fresh
# `WidthMLP` of that width, initialised by PyTorch, with any number of layers (2 or more),
# with or without biases, and rescales in place every tensor whose initial scale depends on
# the width but should not, so that it is drawn from the distribution it has at the base
# width. Leave every other tensor alone. (Change the tensors' values under
# `torch.no_grad()`, for example with `tensor.mul_(factor)`; the trailing underscore of the
# name says "in place", as in PyTorch.)

# %% nbgrader={"grade_id": "mup_init_", "solution": true}
def mup_init_(model, width, base_width):
    """Rescale, in place, the tensors of a fresh WidthMLP whose muP initial scale must not depend on the width."""
    ### BEGIN SOLUTION
    factor = math.sqrt(width / base_width)  # PyTorch drew them in +-1/sqrt(width); the base in +-1/sqrt(base)
    with torch.no_grad():
        model.layers[-1].weight.mul_(factor)  # the readout's weights: vector-like, fan-in = width
        for layer in model.layers[1:]:  # every bias whose layer sums over `width` inputs
            if layer.bias is not None:
                layer.bias.mul_(factor)
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_mup_init_", "grade": true, "points": 2}
import math

import torch
from lrcourse.checks import assert_close, assert_true, code, probe, run_tests
from lrcourse.mup import WidthMLP


@probe
def init_factors(width, base_width, n_layers=3, bias=True, n_in=64):
    """Build a WidthMLP (seed 0), run mup_init_ on it, and return for every tensor the factor it was multiplied
    by (a least-squares fit of new = factor * old) and how far it is from that factor times the old tensor."""
    torch.manual_seed(0)
    model = WidthMLP(width, n_layers, n_in=n_in, bias=bias)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    mup_init_(model, width, base_width)
    out = {}
    for name, p in model.named_parameters():
        old, new = before[name], p.detach()
        factor = float((new * old).sum() / (old * old).sum())
        out[name] = [factor, float((new - factor * old).abs().max())]
    return out


def role(name, n_layers):
    """What a tensor of a WidthMLP is, in words."""
    index, kind = int(name.split(".")[1]), name.split(".")[2]
    layer = "the input layer" if index == 0 else "the readout" if index == n_layers - 1 else f"hidden layer {index}"
    return f"{name} ({kind} of {layer})"


def rescaled_by(expected, n_layers, what):
    """A check of init_factors' record: each tensor multiplied by its expected factor, as a whole."""
    def check(got):
        assert_true(sorted(got) == sorted(expected), f"{what}: the model's tensors changed names: {sorted(got)}")
        for name, factor in expected.items():
            got_factor, off = got[name]
            assert_close(got_factor, factor, f"{what}: the factor on {role(name, n_layers)}", rtol=1e-5,
                         hint="which tensors are vector-like, and which of them does PyTorch draw with a scale "
                              "that depends on the width? Draw them as at base_width")
            assert_true(off <= 1e-6 * max(1.0, factor), f"{what}: {role(name, n_layers)} was not multiplied by one "
                                                        "number; rescale the tensor PyTorch drew, do not redraw it")
    return check


tests = [
    code("init_factors(128, 32)", "mup_init_ on WidthMLP(128) with base_width 32").check(rescaled_by(
        {"layers.0.weight": 1.0, "layers.0.bias": 1.0, "layers.1.weight": 1.0, "layers.1.bias": 2.0,
         "layers.2.weight": 2.0, "layers.2.bias": 2.0}, 3, "mup_init_(WidthMLP(128), 128, 32)")),
    code("init_factors(32, 32)", "mup_init_ on WidthMLP(32) with base_width 32").check(rescaled_by(
        {f"layers.{i}.{k}": 1.0 for i in range(3) for k in ("weight", "bias")}, 3,
        "mup_init_(WidthMLP(32), 32, 32): at the base width")),
]
### BEGIN HIDDEN TESTS
def mup_factors(width, base_width, n_layers, bias=True):
    """The reference: the readout's weights and every bias after the input layer, times sqrt(width / base)."""
    factor = math.sqrt(width / base_width)
    out = {}
    for i in range(n_layers):
        out[f"layers.{i}.weight"] = factor if i == n_layers - 1 else 1.0
        if bias:
            out[f"layers.{i}.bias"] = factor if i > 0 else 1.0
    return out


for width, base, n_layers, bias, n_in in ((48, 96, 3, True, 64), (1000, 10, 4, True, 64), (256, 16, 2, True, 64),
                                          (100, 25, 5, False, 64), (64, 16, 3, True, 64), (40, 8, 3, True, 40)):
    what = f"mup_init_ on WidthMLP({width}, n_layers={n_layers}, n_in={n_in}, bias={bias}) with base_width {base}"
    tests.append(code(f"init_factors({width}, {base}, n_layers={n_layers}, bias={bias}, n_in={n_in})", what).check(
        rescaled_by(mup_factors(width, base, n_layers, bias), n_layers, what)))
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# The hidden weights keep PyTorch's scale, and so does the input layer: its fan-in is the 64
# pixels, whatever the width. Every other bias, and the readout's weights, were drawn in
# $\pm 1/\sqrt{\text{width}}$ and should be drawn in $\pm 1/\sqrt{\text{base width}}$:
# multiply them by $\sqrt m$. This is also what `mup.set_base_shapes` of Microsoft's `mup`
# package does to a model PyTorch has just initialised (the readout's weights and bias,
# and the bias of every layer whose fan-in grows with the width, times $\sqrt m$).
#
# Together with the multiplier, the readout's effective weights $c\,W_{\text{out}}$ now
# start with entries of size about $\sqrt m / m = 1/\sqrt m$ times those of the base
# model, and the logits start smaller at a wider width. That is intended: muP lets the
# output start near zero, and it asks only that the output be of size 1 once training has
# moved it (Yang et al., Appendix J.2; the `mup` package even offers to start the readout
# at exactly zero).
#
# ## 5. The parameter groups
#
# Now the learning rates. PyTorch optimizers take a list of *parameter groups*, each a
# dictionary with a list of tensors under `"params"` and that group's settings, such as
# `"lr"`; a setting a group does not give comes from the optimizer's arguments:
#
# ```python
# optimizer = torch.optim.AdamW([{"params": [w1, w2], "lr": 1e-3}, {"params": [b1], "lr": 3e-3}])
# ```
#
# **Exercise (3 points).** Write `mup_param_groups(model, width, base_width, lr)`. `model`
# is a `WidthMLP` of that width with any number of layers (2 or more), with or without
# biases, whose readout multiplier and initial scales are those of sections 3 and 4. Return
# a list of parameter groups for `torch.optim.AdamW` that puts every parameter of the model
# in exactly one group, with learning rates such that every tensor's updates move what it
# computes as far as at `base_width`, where every learning rate is `lr`. Use the layers'
# positions in `model.layers`, not their shapes: a shape does not tell a layer's kind when,
# say, the width happens to equal the number of inputs.

# %% nbgrader={"grade_id": "mup_param_groups", "solution": true}
def mup_param_groups(model, width, base_width, lr):
    """AdamW parameter groups for muP: every tensor's updates act as they do at base_width, where all use lr."""
    ### BEGIN SOLUTION
    layers = list(model.layers)
    hidden = [layer.weight for layer in layers[1:-1]]  # matrix-like: fan-in = width
    vector_like = [layers[0].weight, layers[-1].weight]  # fan-in 64 pixels; the readout has its multiplier
    vector_like += [layer.bias for layer in layers if layer.bias is not None]  # fan-in 1
    groups = [{"params": vector_like, "lr": lr}]
    if hidden:
        groups.append({"params": hidden, "lr": lr * base_width / width})
    return groups
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_mup_param_groups", "grade": true, "points": 3}
import torch
from lrcourse.checks import assert_close, assert_true, code, probe, run_tests
from lrcourse.mup import WidthMLP, train_with_groups


@probe
def group_lrs(width, base_width, lr, n_layers=3, bias=True, n_in=64, n_out=10):
    """Build a WidthMLP, call mup_param_groups on it, and describe the groups as plain data: each
    parameter's learning rate by name, tensors that are not the model's or that come twice, and whether
    torch.optim.AdamW accepts the groups."""
    torch.manual_seed(0)
    model = WidthMLP(width, n_layers, n_in=n_in, n_out=n_out, bias=bias)
    names = {id(p): name for name, p in model.named_parameters()}
    record = {"names": list(names.values()), "lrs": {}, "foreign": 0, "repeated": [], "error": None}
    groups = mup_param_groups(model, width, base_width, lr)
    try:
        groups = list(groups)
        for group in groups:
            group_lr = float(group["lr"])
            for p in group["params"]:
                name = names.get(id(p))
                if name is None:
                    record["foreign"] += 1
                elif name in record["lrs"]:
                    record["repeated"].append(name)
                else:
                    record["lrs"][name] = group_lr
        torch.optim.AdamW(groups, lr=123.0)  # PyTorch must accept them as they are
    except Exception as error:
        record["error"] = f"{type(error).__name__}: {error}"
    return record


def groups_with(expected, n_layers, what):
    """A check of group_lrs' record: well-formed groups, every parameter once, each at its expected LR."""
    def check(got):
        assert_true(got["error"] is None, f"{what} failed: {got['error']}. Return a list of dicts, each with "
                                          "'params' (a list of the model's parameters) and 'lr' (a number)")
        assert_true(got["foreign"] == 0, f"{what}: {got['foreign']} tensor(s) in the groups are not parameters of "
                                         "the model; put the model's own parameter tensors in the groups")
        assert_true(not got["repeated"], f"{what}: {', '.join(got['repeated'])} is in more than one group")
        missing = [name for name in got["names"] if name not in got["lrs"]]
        assert_true(not missing, f"{what}: no group holds {', '.join(missing)}; every parameter needs a group")
        for name, lr in expected.items():
            assert_close(got["lrs"][name], lr, f"{what}: the learning rate of {role(name, n_layers)}", rtol=1e-9,
                         hint="sort the tensors: which of them act on an input that grows with the width, "
                              "and which of those have no multiplier to take care of it?")
    return check


def role(name, n_layers):
    """What a tensor of a WidthMLP is, in words."""
    index, kind = int(name.split(".")[1]), name.split(".")[2]
    layer = "the input layer" if index == 0 else "the readout" if index == n_layers - 1 else f"hidden layer {index}"
    return f"{name} ({kind} of {layer})"


tests = [
    code("group_lrs(32, 32, 0.01)", "mup_param_groups(WidthMLP(32), 32, 32, 0.01)").check(groups_with(
        {f"layers.{i}.{k}": 0.01 for i in range(3) for k in ("weight", "bias")}, 3,
        "mup_param_groups(WidthMLP(32), 32, 32, 0.01): at the base width, where muP is SP")),
    code("group_lrs(128, 32, 0.01)", "mup_param_groups(WidthMLP(128), 128, 32, 0.01)").check(groups_with(
        {"layers.0.weight": 0.01, "layers.0.bias": 0.01, "layers.1.weight": 0.0025, "layers.1.bias": 0.01,
         "layers.2.weight": 0.01, "layers.2.bias": 0.01}, 3, "mup_param_groups(WidthMLP(128), 128, 32, 0.01)")),
]
### BEGIN HIDDEN TESTS
def mup_lrs(width, base_width, lr, n_layers, bias=True):
    """The reference: hidden weights at lr * base / width, everything else at lr."""
    out = {}
    for i in range(n_layers):
        out[f"layers.{i}.weight"] = lr * base_width / width if 0 < i < n_layers - 1 else lr
        if bias:
            out[f"layers.{i}.bias"] = lr
    return out


def reference_groups(model, width, base_width, lr):
    """The reference's groups: one per tensor."""
    names = dict(model.named_parameters())
    lrs = mup_lrs(width, base_width, lr, len(model.layers), model.layers[0].bias is not None)
    return [{"params": [names[name]], "lr": group_lr} for name, group_lr in lrs.items()]


@probe
def transfer_losses(lr, groups_fn=None, widths=(32, 128), base_width=32, steps=30):
    """Train muP WidthMLPs (multiplier and initial scales made here) of each width for a few updates, with
    mup_param_groups at one learning rate; the mean loss of the last 10 updates at each width."""
    groups_fn = groups_fn or mup_param_groups
    losses = []
    for width in widths:
        m = width / base_width

        def model_fn():
            model = WidthMLP(width, output_mult=1 / m)
            with torch.no_grad():
                model.layers[-1].weight.mul_(m ** 0.5)
                for layer in model.layers[1:]:
                    layer.bias.mul_(m ** 0.5)
            return model

        history = train_with_groups(model_fn, lambda model: groups_fn(model, width, base_width, lr), steps, seed=0,
                                    device="cpu")
        losses.append(history.final_loss(10))
    return losses


for width, base, lr, n_layers, bias, n_in, n_out in (
        (96, 32, 0.003, 5, True, 64, 10), (16, 64, 0.02, 3, True, 64, 10), (200, 50, 0.001, 4, False, 64, 10),
        (512, 16, 0.1, 2, True, 64, 10), (64, 32, 0.004, 3, True, 64, 10), (10, 5, 0.01, 4, True, 10, 10),
        (77, 77, 0.5, 3, False, 64, 10)):
    what = (f"mup_param_groups on WidthMLP({width}, n_layers={n_layers}, n_in={n_in}, n_out={n_out}, bias={bias}), "
            f"base_width {base}, lr {lr}")
    tests.append(code(f"group_lrs({width}, {base}, {lr}, n_layers={n_layers}, bias={bias}, n_in={n_in}, "
                      f"n_out={n_out})", what).check(groups_with(mup_lrs(width, base, lr, n_layers, bias),
                                                                 n_layers, what)))
tests.append(code("transfer_losses(0.015)", "a short muP run at widths 32 and 128 with your groups").expect(
    transfer_losses(0.015, groups_fn=reference_groups), rtol=1e-4,
    hint="train with your groups: the losses differ from muP's").when_hidden(
    "a short training run at two widths with your groups did not give muP's losses: check that every tensor is "
    "in a group with its learning rate, and that the groups hold the model's own tensors"))
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# Only the hidden weights change: they sum over `width` inputs and have no multiplier, so
# their learning rate is $\eta\, \text{base\_width}/\text{width} = \eta/m$. The input layer
# sums over the 64 pixels and a bias over a constant 1, so neither feels the width; the
# readout sums over `width` inputs, but its multiplier $c = 1/m$ already takes care of
# that, and Adam does not see the multiplier. At the base width all four changes vanish:
# muP *is* SP there, so the base model is exactly the network we know.
#
# What you built is the formulation in Table 8 of Yang et al. (arXiv:2203.03466), the one
# they call easier to implement, written with $m$ relative to a base width, as they do for
# their MLP (their Eq. 4, there for SGD). In their table, for Adam:
#
# | | input weights and all biases | readout (output) weights | hidden weights |
# |---|---|---|---|
# | initial variance | 1/fan-in | 1 | 1/fan-in |
# | multiplier | 1 | 1/fan-in | 1 |
# | Adam learning rate | 1 | 1 | 1/fan-in |
#
# where the fan-in of a bias is 1, and "1" means "does not change with the width". Their
# main table, Table 3, writes the same parametrization without multipliers: readout
# initial variance $1/\text{fan-in}^2$ and readout Adam learning rate $1/\text{fan-in}$.
# The two are the same training run. For Adam, a multiplier $c$ on a tensor drawn with
# standard deviation $\sigma$ and trained with learning rate $\eta$ can be moved into the
# tensor: draw it with standard deviation $c\sigma$ and train it with learning rate $c\eta$
# (Adam's update does not depend on the gradient's scale, so the tensor times $c$ moves
# exactly as before). With $c = 1/m$ that is Table 3's readout.
#
# Microsoft's `mup` package implements Table 8: its `MuReadout` layer multiplies its input
# by `output_mult / width_mult`, and its `MuAdam` divides the learning rate of every
# matrix-like tensor by `width_mult` and leaves the others alone. It also multiplies those
# tensors' weight decay by `width_mult`, so that AdamW's decay per update, which is the
# product of the two (notebook 09), stays what it was.
#
# ## 6. muP, measured
#
# First a direct look at the mechanism, the "coordinate check" that the `mup` package
# recommends for testing an implementation: train a model of each width from 32 to 1,024
# for 5 updates at one learning rate, and measure how far the hidden layer's outputs and
# the logits moved, on a fixed batch of 256 training images. Under SP they should move
# further at every width; under a correct muP the same distance at every width.

# %% tags=["illustration"]
def mup(width):
    """Your muP: the readout multiplier, the initial scales and the learning rate of each tensor."""
    model_fn = lambda: WidthMLP(width, output_mult=readout_multiplier(width, BASE_WIDTH))
    model = model_fn()
    lr_mults = lr_multipliers(model, mup_param_groups(model, width, BASE_WIDTH, 1.0), 1.0)
    return model_fn, lr_mults, (lambda model: mup_init_(model, width, BASE_WIDTH))


def movement(setup, width, lr=0.01, steps=5, seed=0):
    """How far 5 AdamW updates move the hidden layer's outputs and the logits: mean |change| per entry."""
    model_fn, lr_mults, init = setup(width)
    lrcourse.seed_everything(seed)
    model = model_fn().to(device)
    if init is not None:
        init(model)
    optimizer = torch.optim.AdamW([{"params": [p], "lr": lr * lr_mults.get(name, 1.0)}
                                   for name, p in model.named_parameters()], weight_decay=0.0)
    x, y = digits.x_train[:256], digits.y_train[:256]

    def outputs():
        with torch.no_grad():
            hidden = model.layers[1](torch.relu(model.layers[0](x)))
            return hidden, model(x)

    hidden0, logits0 = outputs()
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    hidden, logits = outputs()
    return float((hidden - hidden0).abs().mean()), float((logits - logits0).abs().mean())


CHECK_WIDTHS = [32, 64, 128, 256, 512, 1024] if not lrcourse.quick_mode() else [32, 128, 512]
fig, ax = plt.subplots(figsize=(7, 4.5))
for name, setup, style in (("SP", standard, "--"), ("muP (yours)", mup, "-")):
    moved = np.array([movement(setup, width) for width in CHECK_WIDTHS])
    for column, what, color in ((0, "hidden layer", "tab:blue"), (1, "logits", "tab:orange")):
        ax.plot(CHECK_WIDTHS, moved[:, column], style, marker="o", color=color, label=f"{what}, {name}")
    print(f"{name:>12}, at widths {CHECK_WIDTHS}: the hidden layer moved "
          + ", ".join(f"{v:.2f}" for v in moved[:, 0]) + "; the logits " + ", ".join(f"{v:.2f}" for v in moved[:, 1]))
ax.set(xscale="log", yscale="log", xlabel="width", ylabel="mean |change| after 5 updates (lr 0.01)",
       title="how far 5 updates move a layer's outputs")
ax.set_xticks(CHECK_WIDTHS, [str(w) for w in CHECK_WIDTHS])
ax.minorticks_off()
ax.grid(True, which="major", alpha=0.3)
ax.legend(fontsize="small")
fig.tight_layout()

# %% [markdown]
# Under SP everything moves further as the width grows: the logits 0.27 at width 32, 3.9 at
# 256 and 6.9 at 512, about twice as far per doubling, as section 2 predicts; the hidden
# layer's outputs from 0.31 to 2.0 at 1,024, 1.2 to 1.7 times per doubling (its input
# layer, whose updates do not grow, moves them too). At 1,024 the logits moved less than at
# 512, 4.9: updates this large soon carry a network far from where it started, where the
# count of section 2, made for a first step, no longer holds.
# Under your muP the hidden layer moved 0.31-0.37 and the logits 0.26-0.35 at every width
# from 32 to 1,024. Yang et al.'s Figure 5 does this for a transformer over four Adam
# updates, with the same picture: the logits blow up with the width under SP and do not
# under muP (arXiv:2203.03466, Section 5).
#
# Now the sweep of section 1 again, with your muP: the same widths, seeds, learning rates
# and updates, and `BASE_WIDTH = 32`.

# %% tags=["illustration"]
mup_finals = sweep(mup)
mup_best = best_lrs(mup_finals)
report("SP", sp_best)
report("muP", mup_best)
fig, (ax_sp, ax_mup) = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
draw_sweep(ax_sp, sp_finals, "standard parametrization")
draw_sweep(ax_mup, mup_finals, f"muP (yours), base width {BASE_WIDTH}")
fig.tight_layout()

drift = sp_best[0] / sp_best[-1]  # per seed: how many times smaller the widest model's best LR is
spread = mup_best.max(0) / mup_best.min(0)  # per seed: muP's largest best LR over its smallest
for i, seed in enumerate(SEEDS):
    print(f"seed {seed}: SP's best LR falls {drift[i]:.1f}x from width {WIDTHS[0]} to {WIDTHS[-1]}; "
          f"muP's best LRs stay within a factor {spread[i]:.2f} of each other")
    # Tune small, train wide: the widest model at the narrowest one's best LR (the nearest grid point).
    for name, finals, best in (("SP", sp_finals, sp_best), ("muP", mup_finals, mup_best)):
        k = int(np.argmin(np.abs(np.log(LRS) - np.log(best[0, i]))))
        print(f"    {name:>3}, width {WIDTHS[-1]} at width {WIDTHS[0]}'s best LR ({LRS[k]:.4f}): loss "
              f"{finals[-1, i, k]:.3f}; at its own best LR of the grid: {finals[-1, i].min():.3f}; "
              f"width {WIDTHS[0]} at that LR: {finals[0, i, k]:.3f}")

# %% [markdown]
# With your muP the best learning rate stays in place: on every seed, the best learning
# rates of the four widths lie within a factor of 1.41 (one step of the grid) of each other,
# all between 0.013 and 0.020, and the fitted exponent $a$ is between $-0.01$ and $+0.20$;
# seeds 3, 4 and 5 gave factors of 1.07 to 1.33. Over the same widths SP's fell 2.2 to 3.9
# times. At the base width the two parametrizations are the same network, so their first
# rows agree exactly.
#
# The lines printed under each seed show what that buys. Tune at width 32 and train width
# 256 at the learning rate found there: under muP that is the wide network's best learning
# rate of the grid (seeds 1 and 2) or within 13% of its loss (seed 0), and the wide
# network ends below the narrow one, 0.072-0.087 against 0.100-0.122. Under SP the same
# learning rate leaves the wide network at 0.108-0.114: 1.9 to 2.2 times the loss at its
# own best learning rate, and about where the narrow network ends.
#
# One thing the experiment does *not* show. Tuned at its own width, the SP network of width
# 256 ends *lower* than the muP one, 0.052-0.060 against 0.070-0.087. Yang et al. report the
# opposite for their transformers: the muP models beat the SP models of the same width even
# after the SP learning rate was tuned (arXiv:2203.03466, Figure 1 and Section 5). At our
# widths and after 60 updates, muP saved us a sweep at the large width; it did not give a
# better network.
#
# We also ran widths 512 and 1,024 once, on all six seeds (on the CPU, a few minutes per
# parametrization: too long for this notebook). SP's best learning rate kept falling, to
# 0.0012-0.0024 at width 1,024, 5.9 to 14 times below width 32's. muP held through width 512,
# within a factor 1.5 on every seed. At 1,024 the right side of its valley flattened: the
# losses from 0.014 to 0.077 (the top of the grid) lay close together and bumpy, and on
# three of the six seeds the lowest of them sat at 2.0 to 5.1 times width 32's best
# learning rate. Width 32's best learning rate still ended within 0-22% of the lowest loss
# of the grid. Whether that upward drift is real, or an effect of runs of 60 updates where
# Yang et al. needed thousands, this experiment cannot tell.
#
# ## 7. What this experiment can show, and what it cannot
#
# It shows the mechanism (one Adam update moves a layer's output in proportion to its
# fan-in) and its consequence on every seed we ran: under SP the best learning rate falls as
# the network widens, and under muP it stays put across an 8-fold change of width. It
# cannot show the rest, for reasons of scale:
#
# * **Width is small and the range short.** Our widths run from 32 to 256 (and once to
#   1,024, where muP's optimum began to slide); Yang et al.'s MLP runs from 256 to 8,192, and in their SP experiment with SGD on
#   CIFAR-10 the best learning rate moved by roughly an order of magnitude over that range
#   (arXiv:2203.03466, Section 3). muP is a statement about how things scale as the width
#   grows without bound; eight-fold is a glimpse of the trend, not the limit.
# * **Our runs are below the sizes where transfer was shown to work.** For transformers on
#   language modelling, Yang et al. found that hyperparameters generally transfer once
#   some minimum width (e.g. 256), depth (e.g. 4), batch size (e.g. 32), sequence length
#   (e.g. 128) and number of training steps (e.g. 5,000) are reached (arXiv:2203.03466,
#   Section 6.1).
#   Sixty updates of a two-hidden-layer MLP are far below that; that muP still works here
#   is pleasant, not guaranteed.
# * **Only the learning rate, only the width.** muP also transfers the initial scale, the
#   multipliers and the schedule across width; across depth, batch size and training time,
#   Yang et al. verified transfer empirically, on transformers only; regularization
#   (dropout, weight decay) does not transfer (arXiv:2203.03466, Table 1). We tested none
#   of that.
# * **Training loss on a tiny data set.** We score runs on the training loss, as Yang et
#   al. do; with 1,437 images a wide model memorises quickly, which is why the runs are
#   short. Whether a wider model then *generalises* better is another question.
# * **Is muP the only way?** No. Everett et al. (2024, arXiv:2407.05872, "Scaling
#   Exponents Across Parameterizations and Optimizers") trained tens of thousands of models,
#   with three optimizers, four parametrizations and fourteen model sizes up to 26.8B
#   parameters. They found that all four parametrizations, not just muP, can achieve
#   hyperparameter transfer, and that their new per-layer learning-rate prescription for SP
#   did better than muP; and that Adam's $\epsilon$ must be scaled correctly to avoid
#   gradient underflow (they propose Adam-atan2, a version of Adam without $\epsilon$).
#
# ## Summary
#
# * Under the standard parametrization (PyTorch's initial scales, one learning rate), the
#   best learning rate falls as a network gets wider: on the digits MLP with Adam, 2.2 to
#   4.3 times from width 32 to 256 (six seeds), and further beyond.
# * The reason fits in one update: Adam moves every weight by about $\eta$, and an update
#   built from a layer's own inputs moves its output by $\eta \sum_j |x_j|$, which grows in
#   proportion to the fan-in, while the initial weights' contribution does not grow.
# * muP for Adam (Yang et al., 2022), relative to a base width ($m$ = width / base width):
#   hidden weights at learning rate $\eta/m$; a multiplier $1/m$ on the readout's input;
#   the readout's weights and the biases of wide layers drawn as at the base width
#   (times $\sqrt m$); everything else as in SP. At the base width muP is SP.
# * With muP the narrow model's best learning rate was the best at every width we trained,
#   within a factor 1.41 on every seed: tune small, then train wide. At this scale it did
#   not make the wide network better than SP tuned at full width.
#
# Next: **12 · Capstone**: design a schedule (peak, warmup, decay and batch size) that
# reaches a target loss on a fixed budget of examples, graded on the result and on your
# written justification.
