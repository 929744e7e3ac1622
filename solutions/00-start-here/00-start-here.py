# %% [markdown]
# # 00 · Start here
#
# Welcome to **LR Schedules**, a short course on the one hyperparameter that decides
# whether a network trains at all: the learning rate, and how it should change during a run.
#
# | notebook | what you will derive and build |
# |---|---|
# | 01 · Why the learning rate matters | gradient descent on a quadratic by hand; the largest stable step; a real model that falls, stalls or blows up |
# | 02 · Constant and step schedules | step, multistep and exponential decay, checked against PyTorch |
# | 03 · Cosine annealing | a decay that starts and ends flat; warm restarts |
# | 04 · Warmup | linear warmup, warmup + cosine, warmup-stable-decay |
# | 05 · Schedules inside PyTorch | your schedules as `LambdaLR`s that keep each group's base LR; checkpoints that resume a schedule exactly |
# | 06 · Batch size and the learning rate | the linear and square-root scaling rules, and where they break |
# | 07 · Diagnosing training | telling diverged, stalled and healthy runs apart; the LR range test |
# | 08 · Warmup-stable-decay, cooldowns and decay to zero | one run, several finished models: cooldown shapes and lengths; decaying to zero; the inverse square root |
# | 09 · One-cycle, plateaus, AdamW's weight decay and schedule-free | `OneCycleLR` and `ReduceLROnPlateau` rebuilt; how the LR schedules the weight decay; averaging instead of decaying |
# | 10 · Why warmup works | the sharpness by power iteration on Hessian-vector products; the edge of stability at `2 / lr`; warmup letting the sharpness fall; Adam's own threshold |
# | 11 · The learning rate and model size | why the best LR drifts with width under the standard parametrization; muP's per-layer LRs, readout multiplier and initial scales, built and checked |
# | 12 · Capstone | design a schedule that reaches a target loss on a fixed budget |
#
# Each notebook derives an idea on paper, turns it into a small function that **you** write,
# and then shows the idea on a real model you train in seconds.
#
# ## How the exercises work
#
# * A cell that says `# YOUR CODE HERE` and `raise NotImplementedError()` is yours: replace
#   both lines with your code.
# * The cell after it holds **tests**. Run it: silence means it passed; an `AssertionError`
#   tells you what was expected and what your code returned. When your work is graded,
#   more tests you cannot see (*hidden tests*) are added. They try other values and the
#   edge cases, so code that only matches the visible examples will not pass them.
# * Only your answer cells are graded: everything else, the test cells included, comes
#   from the course when your notebook is graded. Keep your whole answer, helper
#   functions and imports included, inside the answer cell; code in cells you add yourself
#   does not run at grading time.
# * Before you hand in, restart the kernel and run everything (*Kernel → Restart Kernel and
#   Run All Cells*), so the notebook works top to bottom and not only in the order you ran it.
# * *Run All* stops at the first cell that raises an error. In a notebook you have not
#   finished, that is the test cell of the first exercise you have not done yet: its
#   `NotImplementedError` (or a failed test) is an error like any other. To read and run the
#   rest of the notebook anyway, click the cell after it and use *Run → Run Selected Cell
#   and All Below*. A later cell that uses an exercise you have not done stops it again.
#
# ## Checking your work
#
# From a terminal at the root of the course repository:
#
# ```bash
# bin/check course/00-start-here/00-start-here.ipynb
# ```
#
# It grades the notebook exactly as your instructor's autograder would (hidden tests
# included, when the course's `solutions/` folder is present), prints a line per test with
# the reason for each failure, and writes an HTML feedback page. Save the notebook first:
# `check` reads what is on disk.

# %% [markdown]
# ## Your machine
#
# The course picks the fastest device it finds: an NVIDIA GPU (`cuda`), then Apple's
# GPU (`mps`), then the CPU. Every experiment is small enough for a laptop CPU; a GPU makes
# the larger sweeps faster but changes no conclusion. Set the environment variable
# `LRCOURSE_DEVICE=cpu` before starting JupyterLab to force the CPU.

# %% nbgrader={"grade_id": "setup", "locked": true}
import numpy as np
import torch

import lrcourse

device = lrcourse.pick_device()
print(f"PyTorch {torch.__version__}, training on: {device}")
if lrcourse.quick_mode():
    print("Quick mode: experiments are shortened (grading or CI).")

# %% [markdown]
# ## A one-point warm-up
#
# Every method in this course is a variation of one idea. Training changes the parameters
# $w$ of a model to make a loss $L(w)$ smaller, one small update at a time. At the current
# parameters, the gradient $g = \nabla L(w)$ points in the direction in which the loss
# *rises* fastest, and its size says how steep the rise is. So to make the loss smaller,
# gradient descent moves every parameter in the opposite direction to its gradient, by a
# step proportional to the gradient: the constant of proportionality is the **learning
# rate** $\eta_t$ of update $t$. A parameter whose gradient is large moves a lot, one
# whose gradient is zero does not move, and the sign of the gradient decides which way it
# goes. A *schedule* is nothing more than the rule that picks $\eta_t$ for each $t$.
#
# **Exercise (1 point).** Write `sgd_update(w, grad, lr)`: one update of gradient descent
# as just described, from the parameters `w`, their gradient `grad` and the learning rate
# `lr`. Return the new parameters. It must work for plain floats and for NumPy arrays, and
# must not modify `w` in place.

# %% nbgrader={"grade_id": "sgd_update", "solution": true}
def sgd_update(w, grad, lr):
    """One step of gradient descent from w, with gradient grad and learning rate lr (w is unchanged)."""
    ### BEGIN SOLUTION
    return w - lr * grad
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_sgd_update", "grade": true, "points": 1}
import numpy as np
from lrcourse.checks import call, code, run_tests

tests = [
    call("sgd_update", 1.0, 2.0, 0.1).expect(
        0.8,
        hint="a positive gradient means the loss rises as w grows, so w must get smaller, by lr times the gradient"),
    call("sgd_update", np.array([1.0, -1.0]), np.array([0.5, 0.5]), 0.2).expect(
        [0.9, -1.1], hint="every entry moves against its own gradient entry, by the same learning rate"),
    code("w = np.array([1.0, -1.0])\nsgd_update(w, np.array([0.5, 0.5]), 0.2)\nw",
         "w after sgd_update(w, np.array([0.5, 0.5]), 0.2)").expect(
        [1.0, -1.0], hint="sgd_update changed w in place; return a new array instead"),
]
### BEGIN HIDDEN TESTS
tests += [
    call("sgd_update", 3.0, -4.0, 0.5).expect(5.0, hint="a negative gradient means the step goes up"),
    call("sgd_update", 2.5, 7.0, 0.0).expect(2.5, hint="with lr = 0 nothing moves"),
    call("sgd_update", np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0]), 0.01).expect([-0.01, 0.98, 1.97]),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# In symbols, the update you just wrote is
#
# $$ w_{t+1} = w_t - \eta_t \, g_t , $$
#
# the line every later notebook starts from.
#
# Run the test cell. If it printed nothing, you have your first point. Now save the
# notebook and try `bin/check` on it from a terminal to see what a graded report looks like.
#
# Next: **01 · Why the learning rate matters**.
