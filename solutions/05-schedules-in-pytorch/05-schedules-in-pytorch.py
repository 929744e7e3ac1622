# %% [markdown]
# # 05 · Schedules inside PyTorch
#
# Notebooks 02-04 wrote every schedule as a pure function of the step. A PyTorch training
# loop does not call such a function: it steps a *scheduler object*, which keeps its own
# counter and writes learning rates into the optimizer. This notebook looks at that machinery
# closely enough to trust it: where the learning rate lives, how any of our schedules becomes
# a PyTorch scheduler without disturbing parameter groups that train at different learning
# rates, and how a run that stops and restarts keeps its schedule.
#
# **You will**
# 1. see where a PyTorch scheduler keeps its counter and the learning rate;
# 2. find and fix the most common scheduler bug in training loops;
# 3. turn any schedule into a `LambdaLR` that keeps each parameter group's own base learning
#    rate;
# 4. resume a run from a checkpoint without changing its learning rates.
#
# Exercises: `lrs_used_by_updates` (2 points), `as_torch_scheduler` (2), `resume_lrs` (2).

# %% nbgrader={"grade_id": "setup", "locked": true}
import warnings

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, ExponentialLR, LambdaLR, LinearLR, SequentialLR, StepLR

import lrcourse
from lrcourse.reference import torch_lrs

lrcourse.seed_everything(0)
print(f"PyTorch {torch.__version__}")

# %% [markdown]
# ## 1. Where the learning rate lives
#
# An optimizer keeps its hyperparameters in `optimizer.param_groups`, a list of
# dictionaries, one per *parameter group*: a set of tensors that share a learning rate (and
# a weight decay, momentum, ...). `optimizer.step()` reads `group["lr"]` at the moment it
# runs. A scheduler is an object attached to the optimizer that writes into those
# dictionaries:
#
# * when it is built, it records each group's **base** learning rate as
#   `group["initial_lr"]` (unless one is there already) and writes the learning rate of
#   update 0 into `group["lr"]`;
# * each `scheduler.step()` adds one to its counter, `scheduler.last_epoch`, and writes the
#   learning rate of the next update.
#
# So the learning rate of update `k` is whatever `group["lr"]` holds when the `k`-th
# `optimizer.step()` runs. The cell below builds a warmup +
# cosine from PyTorch's own schedulers (notebook 04) on an optimizer with two groups, a
# "backbone" at a tenth of the learning rate of a "head", and prints what the scheduler
# keeps where.

# %% tags=["illustration"]
backbone, head = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(3))
optimizer = torch.optim.SGD([{"params": [backbone], "lr": 0.01}, {"params": [head], "lr": 0.1}])
scheduler = SequentialLR(optimizer, [LinearLR(optimizer, start_factor=1 / 4, end_factor=1.0, total_iters=3),
                                     CosineAnnealingLR(optimizer, T_max=6)], milestones=[4])
print("update  last_epoch  backbone: initial_lr   lr      head: initial_lr   lr")
for k in range(10):
    b, h = optimizer.param_groups
    print(f"{k:>6}  {scheduler.last_epoch:>10}  {b['initial_lr']:>20} {b['lr']:8.5f}  {h['initial_lr']:>16} {h['lr']:8.5f}")
    optimizer.step()  # update k uses the lr printed on its line
    scheduler.step()

# %% [markdown]
# The counter and the learning rate move together, and the two groups keep their ratio of
# 1 to 10 at every update: PyTorch's schedulers scale each group's own base learning rate.
# `initial_lr` never changes; it is the anchor that every later value is computed from.
# Keep that in mind for the exercises: a scheduler we build must keep the ratio too, and a
# restarted run must restore both the counter and the values in the groups.
#
# ## 2. The bug everyone writes once: `scheduler.step()` before `optimizer.step()`
#
# Whatever value is in `param_groups[...]["lr"]` when `optimizer.step()` runs is the
# learning rate of that update. So the order of the two calls *is* the schedule:
#
# ```python
# for batch in loader:
#     loss = ...
#     loss.backward()
#     optimizer.step()      # update k uses lr(k)
#     scheduler.step()      # now the optimizer holds lr(k + 1), for the next update
#     optimizer.zero_grad()
# ```
#
# Swap the two lines and every update uses the *next* value: update 0 runs at `lr(1)`, the
# value `lr(0)` is never used, every cut comes one update early, and the last update runs at
# `lr(total_steps)`, a value meant for after the run. PyTorch notices when the very first
# `scheduler.step()` comes before any `optimizer.step()` and warns, but a warning is easy to
# miss in a long log. The loop below makes the mistake. (It has no loss: a parameter without
# a gradient is not moved by `optimizer.step()`, which is all we need to see which learning
# rate each call would use. The warning is caught and printed here, so that you can read it.)

# %% tags=["illustration"]
def buggy_lrs_used_by_updates(make_scheduler, lr_max, total_steps):
    """The LR of each update in a loop that steps the scheduler too early. Do not copy!"""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=lr_max)
    scheduler = make_scheduler(optimizer)
    used = []
    for step in range(total_steps):
        scheduler.step()                              # BUG: the schedule moves on first ...
        used.append(optimizer.param_groups[0]["lr"])  # ... so this update sees lr(step + 1)
        optimizer.step()
    return used


with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    buggy_step = buggy_lrs_used_by_updates(lambda opt: StepLR(opt, step_size=3, gamma=0.5), 1.0, 8)
    buggy_exp = buggy_lrs_used_by_updates(lambda opt: ExponentialLR(opt, gamma=0.5), 1.0, 6)
print("StepLR(step_size=3, gamma=0.5)")
print("  intended:", torch_lrs(lambda opt: StepLR(opt, step_size=3, gamma=0.5), 1.0, 8))
print("  buggy:   ", buggy_step)
print("ExponentialLR(gamma=0.5)")
print("  intended:", torch_lrs(lambda opt: ExponentialLR(opt, gamma=0.5), 1.0, 6))
print("  buggy:   ", buggy_exp)
for w in caught[:1]:
    print(f"\nPyTorch warned ({w.category.__name__}): {w.message}")

# %% [markdown]
# With step decay each cut comes one update early; with exponential decay the first update
# runs at half the intended learning rate, and `lr(0) = 1.0` is never used at all. For a
# schedule of thousands of updates a shift by one looks harmless, and for step decay it
# nearly is. It is not harmless when the first value matters: with a warmup (notebook 04)
# `lr(0)` is the gentle first step the schedule was built to take, and it is skipped. The
# same misunderstanding on a larger scale is to step a scheduler whose settings count epochs
# once per batch: `StepLR(optimizer, step_size=30)` (with its default `gamma=0.1`), written
# for "every 30 epochs", then cuts every 30 batches, and after 300 batches the learning rate
# is $10^{-10}$ of what it was.
#
# **Exercise (2 points).** Write `lrs_used_by_updates(make_scheduler, lr_max, total_steps)`,
# the fixed version of the loop above: it returns the list of learning rates used by the
# `total_steps` updates, in order, with each update using the value the schedule meant for it.
# Build the optimizer with `lr=lr_max` and the scheduler with `make_scheduler(optimizer)`,
# call `optimizer.step()` once per update and `scheduler.step()` once per update, in the right
# order, and record the learning rate that each `optimizer.step()` call uses. The tests
# watch the optimizer itself, so they know which learning rate each call really used, and
# they fail if PyTorch warns about the order.

# %% nbgrader={"grade_id": "lrs_used_by_updates", "solution": true}
def lrs_used_by_updates(make_scheduler, lr_max, total_steps):
    """The LR used by each of total_steps updates, with optimizer.step() before scheduler.step()."""
    ### BEGIN SOLUTION
    param = torch.nn.Parameter(torch.zeros(1))  # no-mutate (its shape does not matter)
    optimizer = torch.optim.SGD([param], lr=lr_max)
    scheduler = make_scheduler(optimizer)
    used = []
    for step in range(total_steps):
        used.append(optimizer.param_groups[0]["lr"])  # no-mutate (one group: [0] is [-1])
        optimizer.step()
        scheduler.step()
    return used
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_lrs_used_by_updates", "grade": true, "points": 2}
import warnings

from torch.optim.lr_scheduler import ExponentialLR, LambdaLR, MultiStepLR, StepLR  # noqa: F401 (the cases name them)

from lrcourse.checks import assert_close, assert_true, code, probe, run_tests


@probe
def lrs_quietly(make, lr_max, total):
    """lrs_used_by_updates(make, lr_max, total), with PyTorch's warnings kept out of the output."""
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        return lrs_used_by_updates(make, lr_max, total)


@probe
def watch_lrs_used(make, lr_max, total):
    """Run lrs_used_by_updates with a scheduler factory that records the LR the optimizer holds at each
    optimizer.step(); return what it returned, those LRs and the text of every warning raised."""
    seen = []

    def factory(optimizer):
        optimizer.register_step_pre_hook(lambda opt, args, kwargs: seen.append(opt.param_groups[0]["lr"]))
        return make(optimizer)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = lrs_used_by_updates(factory, lr_max, total)
    return {"returned": got, "seen": seen, "warnings": [str(w.message) for w in caught]}


def used_as_scheduled(total, expected, what):
    """A check of watch_lrs_used's record: no order warning, one optimizer.step() per update, right LRs."""

    def check(record):
        got, seen = record["returned"], record["seen"]
        order = [m.split(". ")[0] for m in record["warnings"] if "lr_scheduler.step()" in m]
        assert_true(not order, f"{what}: PyTorch warned \"{order[0] if order else ''}\": the scheduler was stepped "
                               "before the optimizer, so each update used the next LR and lr(0) was skipped. "
                               "Call optimizer.step() first, then scheduler.step().")
        assert_true(len(seen) == total, f"{what}: optimizer.step() was called {len(seen)} times; "
                                        f"expected once per update, {total} times")
        assert_close(seen, expected, f"{what}: the LRs that optimizer.step() actually used",
                     hint="each update must use the LR the schedule meant for it; the first one uses lr(0)")
        assert_close(got, expected, f"{what}: the list your function returned",
                     hint="record optimizer.param_groups[0]['lr'] right before each optimizer.step()")

    return check


def starts_at_lr_max(got):
    assert_true(isinstance(got, (list, tuple)) and len(got) == 8,
                f"lrs_used_by_updates(StepLR(step_size=3, gamma=0.5), 1.0, 8) returned {got!r}; "
                "expected a list of 8 LRs")
    assert_close(got[0], 1.0, "the first LR returned for StepLR(step_size=3, gamma=0.5) with lr_max=1.0",
                 hint="the first update must use lr(0) = lr_max; stepping the scheduler first skips it")


def is_empty(got):
    assert_true(hasattr(got, "__len__") and len(got) == 0,
                f"lrs_used_by_updates(..., total_steps=0) returned {got!r}; expected an empty list")


tests = [
    code("lrs_quietly(lambda opt: StepLR(opt, step_size=3, gamma=0.5), 1.0, 8)",
         "lrs_used_by_updates(StepLR(step_size=3, gamma=0.5), 1.0, 8)").check(starts_at_lr_max),
    code("watch_lrs_used(lambda opt: StepLR(opt, step_size=3, gamma=0.5), 1.0, 8)",
         "lrs_used_by_updates(StepLR(step_size=3, gamma=0.5), lr_max=1.0, total_steps=8)").check(
        used_as_scheduled(8, [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25],
                          "lrs_used_by_updates(StepLR(step_size=3, gamma=0.5), lr_max=1.0, total_steps=8)")),
]
### BEGIN HIDDEN TESTS
for make, lr_max, total, expected, what in (
        ("lambda opt: LambdaLR(opt, lambda s: 1.0 / (1 + s))", 0.3, 6, [0.3 / (1 + s) for s in range(6)],
         "lrs_used_by_updates(LambdaLR(lr_lambda=1 / (1 + s)), lr_max=0.3, total_steps=6)"),
        ("lambda opt: MultiStepLR(opt, milestones=[0, 3], gamma=0.1)", 2.0, 5, [0.2, 0.2, 0.2, 0.02, 0.02],
         "lrs_used_by_updates(MultiStepLR(milestones=[0, 3], gamma=0.1), lr_max=2.0, total_steps=5)"),
        ("lambda opt: ExponentialLR(opt, gamma=0.5)", 0.8, 1, [0.8],
         "lrs_used_by_updates(ExponentialLR(gamma=0.5), lr_max=0.8, total_steps=1)"),
        ("lambda opt: ExponentialLR(opt, gamma=0.9)", 0.1, 25, [0.1 * 0.9**s for s in range(25)],
         "lrs_used_by_updates(ExponentialLR(gamma=0.9), lr_max=0.1, total_steps=25)")):
    tests.append(code(f"watch_lrs_used({make}, {lr_max!r}, {total!r})", what).check(
        used_as_scheduled(total, expected, what)))
tests.append(code("lrs_used_by_updates(lambda opt: ExponentialLR(opt, gamma=0.5), 0.8, 0)",
                  "lrs_used_by_updates(ExponentialLR(gamma=0.5), 0.8, total_steps=0)").check(is_empty))
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# ## 3. Any schedule as a `LambdaLR`
#
# `torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)` turns a function of the step
# into a scheduler, with one catch: it does not set the learning rate to `lr_lambda(k)`, it
# sets it to
#
# $$ \text{lr}_i(k) = \text{initial\_lr}_i \times \texttt{lr\_lambda}(k) $$
#
# for each parameter group $i$. PyTorch writes `initial_lr` with
# `group.setdefault("initial_lr", group["lr"])`, so one that is already there, from an
# earlier scheduler or a checkpoint, is kept. `lr_lambda` is meant to return a *factor*. Hand it a schedule that returns learning rates, on an optimizer built
# with `lr=3e-4`, and every learning rate comes out 3,333 times too small.
#
# Groups with different base learning rates are common practice: a smaller learning rate
# for a pretrained backbone than for a new head when fine-tuning, layer-wise learning rates,
# no weight decay and another LR for the norms and biases. The schedule must keep their
# ratios. A group built at a tenth of the peak should follow the schedule at a tenth of its
# height, through the warmup and the decay alike.
#
# **Exercise (2 points).** Write `as_torch_scheduler(optimizer, schedule, lr_max)`.
# `schedule` is one of our functions of the step (`lambda step: warmup_cosine(step, lr_max,
# 10_000, 200)`, say), whose peak is `lr_max`. Return a `LambdaLR` under which, stepped the
# right way (`optimizer.step()`, then `scheduler.step()`), update `k` of a group with base
# learning rate `base` uses `base * schedule(k) / lr_max`. A group built with `lr=lr_max`
# then follows `schedule` exactly. Work out what `lr_lambda` must return; do not change the
# groups' learning rates yourself.

# %% nbgrader={"grade_id": "as_torch_scheduler", "solution": true}
def as_torch_scheduler(optimizer, schedule, lr_max):
    """A LambdaLR under which update k of a group with base LR `base` uses base * schedule(k) / lr_max."""
    ### BEGIN SOLUTION
    return LambdaLR(optimizer, lr_lambda=lambda step: schedule(step) / lr_max)
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_as_torch_scheduler", "grade": true, "points": 2}
import warnings

import torch
from lrcourse.checks import assert_close, assert_true, code, probe, run_tests


@probe
def lrs_under(schedule, lr_max, group_lrs, n_updates, optimizer_cls=torch.optim.SGD, initial_lrs=None):
    """Build an optimizer with one group per entry of group_lrs (and, if given, an initial_lr already set in
    each group, as an earlier scheduler leaves it), wrap it with as_torch_scheduler, and record the learning
    rate of every group at each optimizer.step() (which is what each update really uses), and the warnings
    PyTorch gave meanwhile."""
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in group_lrs]
    optimizer = optimizer_cls([{"params": [p], "lr": lr} for p, lr in zip(params, group_lrs)], lr=group_lrs[0])
    for group, initial in zip(optimizer.param_groups, initial_lrs or []):
        group["initial_lr"] = initial
    seen = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: seen.append([g["lr"] for g in opt.param_groups]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scheduler = as_torch_scheduler(optimizer, schedule, lr_max)
        is_scheduler = isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler)
        if is_scheduler:
            for _ in range(n_updates):
                optimizer.step()
                scheduler.step()
    return {"is_scheduler": is_scheduler, "returned": repr(scheduler)[:200], "seen": seen,
            "warnings": [str(w.message) for w in caught]}


def follows(schedule, lr_max, bases, n_updates, what, hint, rtol=1e-6, atol=1e-12):
    """A check of lrs_under's record: a scheduler came back, PyTorch did not warn, and the group with base
    learning rate bases[i] used bases[i] * schedule(k) / lr_max at update k."""
    def check(got):
        assert_true(got["is_scheduler"],
                    f"as_torch_scheduler returned {got['returned']}; expected a PyTorch scheduler such as LambdaLR")
        assert_true(not got["warnings"],
                    f"PyTorch warned while the scheduler was used: {got['warnings'][0] if got['warnings'] else ''}")
        for i, base in enumerate(bases):
            expected = [base * schedule(k) / lr_max for k in range(n_updates)]
            assert_close([s[i] for s in got["seen"]], expected,
                         f"{what}: the LRs of group {i} (base LR {base}) over updates 0..{n_updates - 1}",
                         rtol=rtol, atol=atol, hint=hint)
    return check


def case(schedule, lr_max, group_lrs, n_updates, what, hint, optimizer="SGD", initial_lrs=None):
    """`schedule` is source text: the kernel builds it from the text, the grader (eval of this cell's own
    constants) computes the expected learning rates from it."""
    extra = f", optimizer_cls=torch.optim.{optimizer}" + (f", initial_lrs={initial_lrs!r}" if initial_lrs else "")
    return code(f"lrs_under({schedule}, {lr_max!r}, {group_lrs!r}, {n_updates}{extra})", what).check(
        follows(eval(schedule), lr_max, initial_lrs or group_lrs, n_updates, what, hint))


WARM = "lambda step: 0.1 * (step + 1) / 4 if step < 4 else 0.1 * 0.5 ** (step - 4)"
FACTOR = "LambdaLR multiplies each group's base LR by what lr_lambda returns: a factor, not a learning rate"
tests = [
    case(WARM, 0.1, [0.1], 8, "as_torch_scheduler(SGD(lr=0.1), schedule, lr_max=0.1)",
         hint=FACTOR + "; a group built at lr_max then follows the schedule exactly"),
    case(WARM, 0.1, [0.1, 0.01], 8,
         "as_torch_scheduler(SGD with groups at lr 0.1 and 0.01, schedule, lr_max=0.1)",
         hint="a group built at a tenth of lr_max follows the schedule at a tenth of its height; do not "
              "overwrite the groups' learning rates"),
]
### BEGIN HIDDEN TESTS
DECAY = "lambda step: 0.03 * (step + 1) / 10 if step < 10 else 0.03 * 0.99 ** (step - 10)"
SLOPE = "lambda step: 2.5e-4 + 1e-6 * step"
ZERO_THEN_UP = "lambda step: [0.0, 0.2, 0.4][min(step, 2)]"
tests += [
    case(DECAY, 0.03, [0.03, 3e-3, 3e-4], 60,
         "as_torch_scheduler(SGD with three groups at lr 0.03, 0.003 and 0.0003, schedule, lr_max=0.03)",
         hint="every group follows the schedule, scaled by its own base LR / lr_max"),
    case(DECAY, 0.03, [1e-3, 1e-4], 20,
         "as_torch_scheduler(SGD with groups at lr 0.001 and 0.0001, schedule, lr_max=0.03)",
         hint="the groups' base LRs need not equal lr_max: each uses base * schedule(k) / lr_max"),
    case(SLOPE, 3e-4, [3e-4], 5, "as_torch_scheduler(AdamW(lr=3e-4), schedule, lr_max=3e-4)",
         hint=FACTOR, optimizer="AdamW"),
    case(ZERO_THEN_UP, 0.4, [0.4], 4, "as_torch_scheduler(SGD(lr=0.4), a schedule that starts at 0, lr_max=0.4)",
         hint="a schedule value of 0 is allowed; do not divide by the schedule"),
    case(WARM, 0.1, [0.05, 0.005], 8,
         "as_torch_scheduler on an optimizer whose groups already carry initial_lr 0.1 and 0.01 "
         "(their current lr is 0.05 and 0.005)",
         hint="PyTorch keeps an initial_lr that is already set and uses it as the base; let LambdaLR do the "
              "scaling instead of reading or writing the groups' lr yourself",
         initial_lrs=[0.1, 0.01]),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# `LambdaLR` does the bookkeeping: each group's `initial_lr` times your factor. Dividing by
# `lr_max` turns a learning-rate schedule into the factor it wants. Two tempting shortcuts
# fail quietly. Setting every group's `lr` to 1.0 and returning `schedule(step)` makes every
# group follow the same schedule, so the ratios between the groups are lost. It also does
# nothing when a group already carries an `initial_lr`, which PyTorch keeps: the learning
# rates come out scaled by that old value.
#
# ## 4. Resuming a run
#
# Long runs stop and restart: a preempted job, a crash, a planned pause. Whatever was
# restarted must then continue the schedule where it left off. A PyTorch scheduler keeps its
# state in **two** places, and a checkpoint needs both:
#
# * the **scheduler** holds the counter (`last_epoch`, the number of `scheduler.step()` calls)
#   in `scheduler.state_dict()`;
# * the **optimizer** holds the learning rate the next update will use, in
#   `optimizer.param_groups[i]["lr"]`, saved by `optimizer.state_dict()` with Adam's $m$ and $v$.
#   Most of PyTorch's schedulers (`LinearLR`, `CosineAnnealingLR`, `StepLR`, ...) compute the
#   next learning rate *from the current one* (a recursive form of their formula), so the
#   current one is part of their state.
#
# Forget either, and the run goes on with the wrong learning rates, without an error. The
# cell below stops a warmup + cosine run (PyTorch's `SequentialLR`, 4 warmup updates out of
# 12, peak 1) after 6 updates, "restarts" it with new objects, and prints which learning
# rate each update used.

# %% tags=["illustration"]
def make_sgd():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def make_warmup_cosine(optimizer):
    return SequentialLR(optimizer, [LinearLR(optimizer, start_factor=1 / 4, end_factor=1.0, total_iters=3),
                                    CosineAnnealingLR(optimizer, T_max=8)], milestones=[4])


def run_with_restart(load_optimizer, load_scheduler, total_steps=12, stop_at=6):
    """LRs of a run that is checkpointed after stop_at updates and resumed loading only what is asked."""
    used = []
    optimizer = make_sgd()
    scheduler = make_warmup_cosine(optimizer)
    for step in range(total_steps):
        if step == stop_at:  # "restart": new objects, then load (part of) the checkpoint
            checkpoint = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
            optimizer = make_sgd()
            scheduler = make_warmup_cosine(optimizer)
            if load_optimizer:
                optimizer.load_state_dict(checkpoint["optimizer"])
            if load_scheduler:
                scheduler.load_state_dict(checkpoint["scheduler"])
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return used


print("update:                        " + " ".join(f"{s:>5}" for s in range(12)))
for label, load_opt, load_sched in (("no restart (what we want)", True, True),
                                    ("forgot the scheduler's state", True, False),
                                    ("forgot the optimizer's state", False, True)):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        print(f"{label:<30} " + " ".join(f"{lr:5.3f}" for lr in run_with_restart(load_opt, load_sched)))

# %% [markdown]
# The first row is the uninterrupted schedule (loading both is exactly equivalent to not
# stopping). **Without the scheduler's state** the fresh scheduler believes it is at update
# 0 and plays its warmup again, but `LinearLR` computes each value from the current one,
# which is now the restored 0.854: the "warmup" multiplies it by 2, 1.5 and 1.33, the
# learning rate shoots to 3.4 times the peak, and then the cosine starts over from the top.
# **Without the optimizer's state** the counter is right, but every later value is computed
# from the fresh scheduler's first value, 0.25, and stays too low to the end of the run.
# (A `LambdaLR` such as yours computes each value from scratch: without the scheduler's
# state its warmup restarts exactly, and without the optimizer's state only the first
# resumed update is wrong. Still wrong.)
#
# **Exercise (2 points).** Write `resume_lrs(make_optimizer, make_scheduler, total_steps,
# stop_at)` that does the restart right, and returns the list of learning rates used by the
# `total_steps` updates. `make_optimizer()` returns a new optimizer (on new parameters) and
# `make_scheduler(optimizer)` a new scheduler for it. Run updates `0 .. stop_at - 1`
# (`optimizer.step()`, then `scheduler.step()`, recording `param_groups[0]["lr"]` before each
# update), save a checkpoint (both `state_dict()`s), build a **fresh** optimizer and
# scheduler with the two functions, load the checkpoint into them, and run the remaining
# updates on the fresh pair. Mind the order: the scheduler's constructor writes its first
# value into the optimizer, so build the scheduler first and load the states afterwards. The
# tests watch both optimizers, and check that the learning rates match a run that never
# stopped.

# %% nbgrader={"grade_id": "resume_lrs", "solution": true}
def resume_lrs(make_optimizer, make_scheduler, total_steps, stop_at):
    """LRs of total_steps updates, checkpointed after stop_at updates and resumed in fresh objects."""
    ### BEGIN SOLUTION
    used = []
    optimizer = make_optimizer()
    scheduler = make_scheduler(optimizer)
    for _ in range(stop_at):
        used.append(optimizer.param_groups[0]["lr"])  # no-mutate (one group: [0] is [-1])
        optimizer.step()
        scheduler.step()
    checkpoint = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}

    optimizer = make_optimizer()
    scheduler = make_scheduler(optimizer)
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    for _ in range(stop_at, total_steps):
        used.append(optimizer.param_groups[0]["lr"])  # no-mutate (one group: [0] is [-1])
        optimizer.step()
        scheduler.step()
    return used
    ### END SOLUTION


# %% nbgrader={"grade_id": "test_resume_lrs", "grade": true, "points": 2}
import warnings

import torch
from lrcourse.checks import assert_close, assert_true, code, probe, run_tests
from lrcourse.reference import torch_lrs
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LinearLR, SequentialLR, StepLR


@probe
def record_resume(make_scheduler, lr, total_steps, stop_at):
    """Run resume_lrs with optimizers that record which of them took each update, and at which LR."""
    seen, built = [], []

    def make_optimizer():
        param = torch.nn.Parameter(torch.zeros(2))
        optimizer = torch.optim.AdamW([param], lr=lr)
        index = len(built)
        built.append(optimizer)
        optimizer.register_step_pre_hook(lambda opt, args, kwargs: seen.append((index, opt.param_groups[0]["lr"])))
        return optimizer

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = resume_lrs(make_optimizer, make_scheduler, total_steps, stop_at)
    return {"returned": got, "warnings": [str(w.message) for w in caught], "optimizers_built": len(built),
            "takers": [index for index, _ in seen], "lrs": [lr_used for _, lr_used in seen]}


def resumed_like(expected, total_steps, stop_at, what):
    """A check of record_resume's record against `expected`, the LRs of a run that never stopped."""
    def check(got):
        order = [text for text in got["warnings"] if "lr_scheduler.step()" in text]
        assert_true(not order, f"{what}: PyTorch warned that a scheduler was stepped before its optimizer: "
                               f"{order[0] if order else ''} Call optimizer.step() first, then scheduler.step().")
        built = got["optimizers_built"]
        assert_true(built >= 2, f"{what}: make_optimizer() was called {built} time(s); build a fresh "
                                "optimizer (and scheduler) after the checkpoint, as a restarted program would")
        takers = got["takers"]
        assert_true(len(takers) == total_steps, f"{what}: optimizer.step() was called {len(takers)} times in all; "
                                                f"expected once per update, {total_steps} times")
        assert_true(takers == [0] * stop_at + [built - 1] * (total_steps - stop_at),
                    f"{what}: updates 0..{stop_at - 1} must run on the first optimizer and updates {stop_at}.."
                    f"{total_steps - 1} on the fresh one built after the checkpoint")
        assert_close(got["lrs"], expected, f"{what}: the LRs the optimizers really used, against a run that never stopped",
                     hint="build the fresh optimizer and scheduler first, then load both state dicts; "
                          "the counter lives in the scheduler, the current LR in the optimizer")
        assert_close(got["returned"], expected, f"{what}: the list resume_lrs returned",
                     hint="record optimizer.param_groups[0]['lr'] right before each optimizer.step()")
    return check


def resume_case(factory, lr, total_steps, stop_at, what):
    """`factory` is the source of a scheduler factory: the kernel builds it from the text, and the grader
    (eval of this cell's own constants) runs it in PyTorch for the run that never stopped."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = torch_lrs(eval(factory), lr, total_steps)  # a run that never stopped
    return code(f"record_resume({factory}, {lr!r}, {total_steps}, {stop_at})", what).check(
        resumed_like(expected, total_steps, stop_at, what))


WARMUP_THEN_HALVE = "lambda opt: LambdaLR(opt, lambda step: (step + 1) / 3 if step < 3 else 0.5 ** (step - 2))"
tests = [
    resume_case(WARMUP_THEN_HALVE, 0.1, 8, 4,
                "resume_lrs(LambdaLR(warmup, then halve), lr=0.1, total_steps=8, stop_at=4)"),
]
### BEGIN HIDDEN TESTS
SEQ = ("lambda opt: SequentialLR(opt, [LinearLR(opt, start_factor=0.2, end_factor=1.0, total_iters=4), "
       "CosineAnnealingLR(opt, T_max=10, eta_min=0.01)], milestones=[5])")
STEP = "lambda opt: StepLR(opt, step_size=3, gamma=0.5)"
GEOMETRIC = "lambda opt: LambdaLR(opt, lambda step: 0.9 ** step)"
tests += [
    resume_case(SEQ, 0.3, 15, 7, "resume_lrs(SequentialLR(LinearLR, CosineAnnealingLR), total_steps=15, stop_at=7)"),
    resume_case(SEQ, 0.3, 15, 2,
                "resume_lrs(SequentialLR(LinearLR, CosineAnnealingLR), total_steps=15, stop_at=2, during the warmup)"),
    resume_case(STEP, 0.8, 10, 5, "resume_lrs(StepLR(step_size=3, gamma=0.5), total_steps=10, stop_at=5)"),
    resume_case(GEOMETRIC, 0.05, 6, 0, "resume_lrs(LambdaLR(0.9 ** step), total_steps=6, stop_at=0)"),
    resume_case(GEOMETRIC, 0.05, 6, 6, "resume_lrs(LambdaLR(0.9 ** step), total_steps=6, stop_at=6)"),
    resume_case(WARMUP_THEN_HALVE, 0.1, 9, 1, "resume_lrs(LambdaLR(warmup, then halve), total_steps=9, stop_at=1)"),
]
### END HIDDEN TESTS
run_tests(tests, globals())

# %% [markdown]
# Your `as_torch_scheduler` and your `resume_lrs` together: a schedule written as a plain
# function (a warmup over 8 updates, then a decay by 10% per update), run through PyTorch
# and restarted in the middle of its warmup, continues exactly where it stopped.

# %% tags=["illustration"]
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    schedule = lambda step: 0.01 * min(1.0, (step + 1) / 8) * 0.9 ** max(0, step - 7)
    resumed = resume_lrs(lambda: torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=0.01),
                         lambda opt: as_torch_scheduler(opt, schedule, 0.01), 20, 5)
print("resumed at update 5:", " ".join(f"{lr:.4f}" for lr in resumed[:10]), "...")
print("the schedule itself:", " ".join(f"{schedule(s):.4f}" for s in range(10)), "...")

# %% [markdown]
# ## Summary
#
# * An optimizer reads `param_groups[i]["lr"]` at each `optimizer.step()`; a scheduler
#   writes it. It records each group's base learning rate as `initial_lr` (keeping one that
#   is already there), writes update 0's learning rate when it is built, and each
#   `scheduler.step()` moves its counter `last_epoch` on and writes the next one.
# * Call `optimizer.step()` before `scheduler.step()`: the other order shifts the whole
#   schedule by one update and skips `lr(0)`.
# * `LambdaLR` multiplies each group's `initial_lr` by what your function returns: a factor.
#   To run a schedule written in learning rates, divide by its peak; groups at different
#   learning rates then keep their ratios.
# * A checkpoint needs both the scheduler's and the optimizer's `state_dict()`, loaded after
#   building the scheduler. Forgetting either silently changes the learning rates.
#
# Next: **06 · Batch size and the learning rate**.
