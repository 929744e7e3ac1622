"""The capstone's outcome (notebook 12), computed by the grader.

A student's design crosses from the notebook as plain data (:func:`design_as_data`: the
batch size, the optimizer's name and the learning rate of every update). The grader
checks it (:func:`read_design`) and trains it itself (:func:`final_loss`, :func:`report`),
in its own process, with its own seeds: nothing of the student's code runs there, and
nothing of the training runs in the student's kernel.

The grader's seeds are not in this module (students have it): they are written in the
hidden part of the notebook's test cells and passed in.
"""
from __future__ import annotations

import math
import random
import threading

import numpy as np
import torch

from .checks import assert_true
from .data import DigitsData, load_digits
from .train import OPTIMIZERS, train

BUDGET = 4_800               # training examples a design may spend: batch size x number of updates
TARGET = 0.09                # median final validation loss to beat over the grader's seeds
PRACTICE_SEEDS = (0, 1, 2)   # the seeds students see; the grader's are its own
BATCH_SIZES = (8, 1024)      # the smallest and largest batch size allowed
NAMES = ("BATCH_SIZE", "OPTIMIZER", "my_schedule")

_cache: dict = {}            # the grader's data and runs, kept for the life of the process
_lock = threading.Lock()


# -- in the student's notebook: the design as plain data ------------------------------------
def design_as_data(namespace: dict, budget: int = BUDGET) -> dict:
    """What the notebook's design is, as plain data for the grader; no verdict.

    ``batch_size`` and ``optimizer`` are the values of ``BATCH_SIZE`` and ``OPTIMIZER``;
    ``lrs`` holds what ``my_schedule(step)`` returned for every update ``step`` of the
    budget (``None`` if the batch size gives no number of updates or ``my_schedule`` cannot
    be called), each value turned into a float where ``float()`` can, and up to the first
    one it cannot. ``error`` says which step raised what, if one did.
    """
    design = {"missing": [name for name in NAMES if name not in namespace]}
    if design["missing"]:
        return design
    batch_size, schedule = namespace["BATCH_SIZE"], namespace["my_schedule"]
    design.update(batch_size=batch_size, optimizer=namespace["OPTIMIZER"], callable=callable(schedule),
                  schedule_type=type(schedule).__name__, lrs=None, error=None)
    whole = isinstance(batch_size, (int, np.integer)) and not isinstance(batch_size, (bool, np.bool_))
    if not (whole and int(batch_size) >= 1 and callable(schedule)):
        return design
    lrs = []
    for step in range(budget // int(batch_size)):
        try:
            value = schedule(step)
        except Exception as err:
            design["error"] = {"step": step, "type": type(err).__name__, "message": str(err)[:500]}
            break
        if value is not None and not isinstance(value, (bool, np.bool_, str, bytes)):
            try:
                value = float(value)
            except (TypeError, ValueError):
                pass
        lrs.append(value)
        if not isinstance(value, float):
            break
    design["lrs"] = lrs
    return design


# -- in the grader: the checks and the training ---------------------------------------------
def read_design(design: dict, budget: int = BUDGET) -> tuple[int, str, list[float]]:
    """Check a design sent by :func:`design_as_data`; return (batch size, optimizer, every LR).

    Asserts, with a message for the student, that it is well formed and within the budget.
    """
    assert_true(isinstance(design, dict), f"the grader could not read your design (it got {design!r})")
    missing = design.get("missing") or []
    assert_true(not missing, f"your design cell does not define {', '.join(map(str, missing))}: "
                             "define BATCH_SIZE, OPTIMIZER and my_schedule(step), and run the cell")
    batch_size, optimizer = design.get("batch_size"), design.get("optimizer")
    assert_true(isinstance(batch_size, int) and not isinstance(batch_size, bool),
                f"BATCH_SIZE is {batch_size!r} ({type(batch_size).__name__}); it must be an integer")
    low, high = BATCH_SIZES
    assert_true(low <= batch_size <= high, f"BATCH_SIZE is {batch_size}; choose one from {low} to {high}")
    assert_true(isinstance(optimizer, str) and optimizer in OPTIMIZERS,
                f"OPTIMIZER is {optimizer!r}; it must be \"sgd\" or \"adamw\"")
    assert_true(design.get("callable") is True,
                f"my_schedule is a {design.get('schedule_type')}, not a function of the step")
    values = design.get("lrs")
    assert_true(isinstance(values, list), "the grader could not read the learning rates of your schedule")
    lrs = []
    for step, value in enumerate(values):
        assert_true(isinstance(value, float), f"my_schedule({step}) returned {value!r}; it must return a number"
                                              + (" (did you forget `return`?)" if value is None else ""))
        assert_true(math.isfinite(value) and value >= 0,
                    f"my_schedule({step}) returned {value!r}; every learning rate must be finite and >= 0")
        lrs.append(value)
    error = design.get("error")
    if error:
        assert_true(False, f"my_schedule({error.get('step')}) raised {error.get('type')}"
                           + (f": {error.get('message')}" if error.get("message") else "")
                           + f". It must give the learning rate of every update, step = 0 .. "
                             f"{budget // batch_size - 1}")
    total_steps = budget // batch_size
    assert_true(len(lrs) == total_steps, f"the grader asked my_schedule for the learning rates of "
                                         f"{total_steps} updates and got {len(lrs)}")
    assert_true(total_steps >= 1 and total_steps * batch_size <= budget,
                f"{total_steps} updates of {batch_size} examples do not fit the budget of {budget}")
    return batch_size, optimizer, lrs


def describe(batch_size: int, optimizer: str, lrs: list[float], budget: int = BUDGET) -> None:
    """Print what the design spends and the range of its learning rates."""
    total_steps = len(lrs)
    print(f"{optimizer}, batch {batch_size}: {total_steps} updates, {total_steps * batch_size} of {budget} "
          f"examples; learning rates from {min(lrs):.3g} to {max(lrs):.3g} (first {lrs[0]:.3g}, last {lrs[-1]:.3g})")
    if lrs[-1] > 0.5 * max(lrs):
        print(f"note: the last update still uses {lrs[-1] / max(lrs):.0%} of the peak learning rate. "
              f"Did you plan the schedule for {total_steps} updates?")


def data() -> DigitsData:
    """The capstone's digits split: ``lrcourse.load_digits`` on the CPU (cached)."""
    if "data" not in _cache:
        _cache["data"] = load_digits("cpu")
    return _cache["data"]


def final_loss(batch_size: int, optimizer: str, lrs: list[float], seed: int) -> tuple[float, str]:
    """The grader's run of a design: (final validation loss, why the run failed or "").

    Trained on the CPU with ``seed``; cached per design and seed for the life of the
    process. The global random state of Python, NumPy and PyTorch is left as it was.
    """
    key = (int(batch_size), str(optimizer), tuple(float(lr) for lr in lrs), int(seed))
    with _lock:  # the training seeds the global generators: one run at a time
        if key not in _cache:
            _cache[key] = _train(*key)
        return _cache[key]


def _train(batch_size: int, optimizer: str, lrs: tuple[float, ...], seed: int) -> tuple[float, str]:
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            history = train(lambda step: lrs[step], len(lrs), data=data(), optimizer=optimizer,
                            batch_size=batch_size, seed=seed, device="cpu", eval_every=len(lrs), progress=False)
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
    if history.diverged:
        return math.inf, f"the loss became inf or NaN at update {len(history.loss) - 1}"
    loss = history.val_loss[-1]
    if loss > 0.5 * math.log(10):
        return loss, (f"the final validation loss is {loss:.3f}, near the chance level "
                      f"ln 10 = {math.log(10):.3f}: the network blew up or did not train")
    return loss, ""


def report(batch_size: int, optimizer: str, lrs: list[float], seeds, who: str) -> list[float]:
    """Print the final validation losses of a design over ``seeds``; return them."""
    losses = [final_loss(batch_size, optimizer, lrs, seed)[0] for seed in seeds]
    median = float(np.median(losses))
    verdict = "below" if median < TARGET else "NOT below"
    print(f"{who}: final validation losses " + ", ".join(f"{v:.4f}" for v in losses)
          + f"; median {median:.4f}, {verdict} the target {TARGET}")
    return losses
