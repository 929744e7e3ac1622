"""Batched sweeps (``lrcourse.batched``) give the sequential loop's results.

Each test trains the same runs with :func:`lrcourse.train.train`, one after another, and
with :func:`lrcourse.batched.train_batched`, all at once, and compares the curves. They
are equal to float rounding, not bit for bit: batched kernels add in another order, and
training amplifies the difference (up to 1.4e-5 relative after 60 updates at LR 0.1,
measured with one CPU thread), so the tests allow 1e-4 relative. A real difference (a wrong
LR, a missing momentum term) moves the loss by far more.
"""
from __future__ import annotations

import math

import pytest
import torch

from lrcourse.batched import lr_sweep_batched, train_batched
from lrcourse.models import DigitsMLP
from lrcourse.train import History, lr_sweep, train

RTOL = 1e-4  # relative, on each finite loss: rounding, amplified by training
ATOL = 1e-7  # for losses near 0


pytestmark = pytest.mark.usefixtures("clean_env")  # the device and mode settings of conftest


def assert_same_run(seq: History, bat: History, label: str, *, step_slack: int = 0,
                    rtol: float = RTOL) -> None:
    """``bat`` is ``seq`` to float rounding: same LRs, same losses while finite (within
    ``rtol``), same validation losses, and it diverges too (within ``step_slack`` steps) or
    not at all."""
    assert bat.diverged == seq.diverged, f"{label}: diverged {bat.diverged}, sequential {seq.diverged}"
    if seq.diverged:
        assert abs(len(bat.loss) - len(seq.loss)) <= step_slack, (
            f"{label}: stopped after {len(bat.loss)} updates, sequential after {len(seq.loss)}")
        assert not math.isfinite(bat.loss[-1]), f"{label}: the last recorded loss should be inf or NaN"
    else:
        assert len(bat.loss) == len(seq.loss), f"{label}: {len(bat.loss)} updates, sequential {len(seq.loss)}"
    n = min(len(seq.loss), len(bat.loss))
    assert bat.lr[:n] == seq.lr[:n], f"{label}: different learning rates"
    for step, (a, b) in enumerate(zip(seq.loss[:n], bat.loss[:n])):
        if not (math.isfinite(a) and math.isfinite(b)):
            assert step >= n - 1 - step_slack, f"{label}: non-finite loss at update {step} of {n}"
            break
        assert abs(a - b) <= ATOL + rtol * abs(a), f"{label}: update {step}: loss {b!r}, sequential {a!r}"
    assert bat.val_steps == seq.val_steps, f"{label}: evaluated at {bat.val_steps}, sequential {seq.val_steps}"
    for a, b in zip(seq.val_loss, bat.val_loss):
        assert abs(a - b) <= ATOL + rtol * abs(a), f"{label}: validation loss {b!r}, sequential {a!r}"


def test_sgd_sweep_matches_sequential_including_divergence(digits):
    # 1e-3 stalls, 0.05 and 0.1 train; with seed 0, 5.0 and 10.0 blow up to NaN within a
    # few updates (only for some seeds: for others they end at chance loss, finite).
    lrs = [1e-3, 0.05, 0.1, 5.0, 10.0]
    steps = 60
    batched = train_batched(lrs, steps, data=digits, seed=0, eval_every=25, device="cpu")
    assert len(batched) == len(lrs)
    for lr, bat in zip(lrs, batched):
        seq = train(lr, steps, data=digits, seed=0, eval_every=25, device="cpu")
        if lr < 1:
            assert_same_run(seq, bat, f"lr={lr}")
        else:
            # A blow-up multiplies a rounding difference at every update (the loss reaches
            # 1e17 before it is NaN). Where kernels round differently the losses drift apart
            # (4e-5 relative with 2 CPU threads, against 2e-6 for the LRs that train), and
            # the update where the loss first becomes inf/NaN may move by one or two.
            # With one CPU thread (the default) the curves are identical.
            assert_same_run(seq, bat, f"lr={lr}", step_slack=2, rtol=1e-3)
    diverged = [h.diverged for h in batched]
    assert diverged == [False, False, False, True, True], diverged
    # the diverged runs stopped early, and their last loss is the non-finite one
    assert all(len(h.loss) < steps for h in batched[3:])


def test_full_length_curve_matches(digits):
    # A whole 300-update run (13 epochs: every reshuffle of the minibatches is exercised).
    seq = train(0.05, 300, data=digits, device="cpu")
    (bat,) = train_batched([0.05], 300, data=digits, device="cpu")
    assert_same_run(seq, bat, "lr=0.05, 300 updates")


def test_schedules(digits):
    steps = 50

    def cosine(step: int) -> float:
        return 0.005 + 0.5 * (0.1 - 0.005) * (1 + math.cos(math.pi * min(step, steps) / steps))

    def warmup_then_step(step: int) -> float:
        return 0.08 * (step + 1) / 10 if step < 10 else (0.08 if step < 30 else 0.008)

    schedules = [cosine, warmup_then_step, 0.03]
    batched = train_batched(schedules, steps, data=digits, device="cpu")
    for schedule, bat in zip(schedules, batched):
        seq = train(schedule, steps, data=digits, device="cpu")
        assert_same_run(seq, bat, f"schedule {schedule}")
    assert batched[0].lr[0] == pytest.approx(0.1) and batched[0].lr[-1] < batched[0].lr[0]
    assert batched[1].lr[:2] == pytest.approx([0.008, 0.016]) and batched[1].lr[-1] == pytest.approx(0.008)


def test_adamw_matches(digits):
    lrs = [1e-4, 3e-3, 1e-2]
    steps = 60
    batched = train_batched(lrs, steps, data=digits, optimizer="adamw", weight_decay=0.01,
                            seed=2, eval_every=30, device="cpu")
    for lr, bat in zip(lrs, batched):
        seq = train(lr, steps, data=digits, optimizer="adamw", weight_decay=0.01, seed=2,
                    eval_every=30, device="cpu")
        assert_same_run(seq, bat, f"adamw lr={lr}")


def test_sgd_options_match(digits):
    # weight decay, plain SGD (no momentum buffer) and another batch size
    for kwargs in ({"weight_decay": 1e-3}, {"momentum": 0.0}, {"batch_size": 200}):
        (bat,) = train_batched([0.05], 30, data=digits, device="cpu", **kwargs)
        seq = train(0.05, 30, data=digits, device="cpu", **kwargs)
        assert_same_run(seq, bat, f"sgd {kwargs}")


def test_per_copy_seeds(digits):
    # Each copy starts from its own seed's weights and sees its own seed's minibatches.
    lrs, seeds = [0.05, 0.05, 0.1], [3, 4, 3]
    batched = train_batched(lrs, 30, data=digits, seeds=seeds, device="cpu")
    for lr, s, bat in zip(lrs, seeds, batched):
        assert_same_run(train(lr, 30, data=digits, seed=s, device="cpu"), bat, f"lr={lr}, seed={s}")
    assert batched[0].loss != batched[1].loss  # different seeds, different runs
    with pytest.raises(ValueError, match="seeds"):
        train_batched([0.05, 0.1], 5, data=digits, seeds=[1], device="cpu")


def test_nan_does_not_leak_into_other_copies(digits):
    # 1e3 and 30 reach NaN within a few updates; the copies trained beside them must be
    # what they are without them.
    steps = 40
    alone = train_batched([0.05, 0.1], steps, data=digits, eval_every=20, device="cpu")
    mixed = train_batched([1e3, 0.05, 30.0, 0.1], steps, data=digits, eval_every=20, device="cpu")
    assert mixed[0].diverged and mixed[2].diverged
    assert len(mixed[0].loss) < steps and len(mixed[2].loss) < steps
    for a, b in ((alone[0], mixed[1]), (alone[1], mixed[3])):
        assert not b.diverged and len(b.loss) == steps
        assert all(math.isfinite(v) for v in b.loss + b.val_loss)
        assert_same_run(a, b, "beside a diverging copy")
    # and a sweep where every copy diverges ends cleanly
    gone = train_batched([1e3, 1e4], steps, data=digits, device="cpu")
    assert all(h.diverged and len(h.loss) < steps for h in gone)


def test_lr_sweep_batched_mirrors_lr_sweep(digits):
    lrs = [0.01, 0.05, 1e3]
    seq = lr_sweep(lrs, 20, data=digits, seed=2, device="cpu")
    bat = lr_sweep_batched(lrs, 20, data=digits, seed=2, device="cpu")
    assert list(bat) == lrs
    for lr in lrs:
        assert_same_run(seq[lr], bat[lr], f"lr={lr}", step_slack=2)
    assert lr_sweep_batched([], 5, data=digits) == {}


def test_loads_data_and_picks_device_itself():
    (hist,) = train_batched([0.05], 3)
    assert len(hist.loss) == 3 and all(math.isfinite(v) for v in hist.loss)


def test_rejects_what_it_cannot_batch(digits):
    with pytest.raises(ValueError, match="optimizer"):
        train_batched([0.1], 5, data=digits, optimizer="rmsprop")
    with pytest.raises(ValueError, match="batch_size"):
        train_batched([0.1], 5, data=digits, batch_size=len(digits.x_train) + 1)

    def conv_like():
        return torch.nn.Sequential(torch.nn.Linear(64, 10), torch.nn.Tanh())

    with pytest.raises(ValueError, match="nn.Linear"):
        train_batched([0.1], 5, data=digits, model_fn=conv_like)

    class Skip(DigitsMLP):  # the right layers, used in another order
        def forward(self, x):
            return self.net[4](self.net[1](self.net[0](x)) + self.net[2](self.net[0](x)))

    with pytest.raises(ValueError, match="forward"):
        train_batched([0.1], 5, data=digits, model_fn=Skip)


def test_custom_mlp_width(digits):
    def wide():
        return DigitsMLP(hidden=32)

    (bat,) = train_batched([0.05], 20, data=digits, model_fn=wide, device="cpu")
    assert_same_run(train(0.05, 20, data=digits, model_fn=wide, device="cpu"), bat, "hidden=32")


def test_per_schedule_and_seed_keeps_names_and_seed_order(digits):
    from lrcourse.batched import per_schedule_and_seed

    runs = per_schedule_and_seed(train_batched, {"low": 0.01, "high": 0.1}, [2, 0], 20, data=digits, device="cpu")
    assert list(runs) == ["low", "high"] and all(len(h) == 2 for h in runs.values())
    assert_same_run(train(0.1, 20, data=digits, seed=0, device="cpu"), runs["high"][1], "high, seed 0")
    assert_same_run(train(0.01, 20, data=digits, seed=2, device="cpu"), runs["low"][0], "low, seed 2")
