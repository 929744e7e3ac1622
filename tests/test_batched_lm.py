"""``lrcourse.batched.train_lm_batched`` gives ``train_lm``'s runs, shared prefixes included.

Each run is trained once with :func:`lrcourse.transformer.train_lm` and once with every
other run at once; the curves agree to float rounding (batched kernels add in another
order; measured up to 6e-6 relative after 40 updates, one CPU thread).
"""
from __future__ import annotations

import math

import pytest

from lrcourse.batched import train_lm_batched
from lrcourse.transformer import load_corpus, train_lm

RTOL = 1e-4


@pytest.fixture(scope="module")
def corpus():
    return load_corpus("cpu")


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-7 + RTOL * abs(a)


def test_runs_match_train_lm_with_shared_prefixes_and_a_divergence(corpus):
    warm = lambda s: min(1.0, (s + 1) / 5)  # noqa: E731
    schedules = [
        lambda s: 0.01 * warm(s),                                   # constant after warmup
        lambda s: 0.01 * warm(s) * (0.3 if s >= 20 else 1.0),      # shares 20 updates with it
        lambda s: 0.01 * warm(s) * (1 - s / 40) if s >= 5 else 0.01 * warm(s),  # shares the warmup
        lambda s: 0.003,                                            # another seed
        lambda s: math.nan if s == 3 else 0.01,                     # blows up at update 4
    ]
    seeds = [0, 0, 0, 1, 1]
    steps = 24
    batched = train_lm_batched(schedules, steps, seeds=seeds, corpus=corpus, eval_every=12, device="cpu",
                               progress=False)
    for i, (schedule, seed, bat) in enumerate(zip(schedules, seeds, batched)):
        seq = train_lm(schedule, steps, seed=seed, corpus=corpus, eval_every=12, device="cpu", progress=False)
        assert bat.diverged == seq.diverged, f"run {i}: diverged {bat.diverged}, sequential {seq.diverged}"
        assert len(bat.loss) == len(seq.loss), f"run {i}: {len(bat.loss)} updates, sequential {len(seq.loss)}"
        for step, (a, b) in enumerate(zip(seq.loss, bat.loss)):
            if not math.isfinite(a):
                assert not math.isfinite(b) and step == len(seq.loss) - 1, f"run {i}: update {step}"
            else:
                assert _close(a, b), f"run {i}, update {step}: loss {b!r}, sequential {a!r}"
            same_lr = bat.lr[step] == seq.lr[step] or math.isnan(bat.lr[step]) and math.isnan(seq.lr[step])
            assert same_lr, f"run {i}, update {step}: lr {bat.lr[step]}, sequential {seq.lr[step]}"
        assert bat.val_steps == seq.val_steps, f"run {i}: evaluated at {bat.val_steps}, {seq.val_steps}"
        assert all(_close(a, b) for a, b in zip(seq.val_loss, bat.val_loss)), f"run {i}: {bat.val_loss}, {seq.val_loss}"
    assert [h.diverged for h in batched] == [False, False, False, False, True]


def test_seed_count_must_match(corpus):
    with pytest.raises(ValueError, match="seeds"):
        train_lm_batched([0.01, 0.02], 3, seeds=[0], corpus=corpus, device="cpu")
    assert train_lm_batched([], 3, corpus=corpus, device="cpu") == []


def test_runs_of_their_own_lengths_with_weight_decay_match_train_lm(corpus):
    # A WSD stable phase branched into cooldowns that end at their own budgets (16 and 24
    # updates), next to a run of another seed, all with AdamW's weight decay.
    stable = 0.01
    cooldown = lambda total: lambda s: stable * min(1.0, (total - s) / 6)  # noqa: E731
    schedules = [cooldown(16), cooldown(24), lambda s: 0.005]
    seeds, totals = [0, 0, 1], [16, 24, 10]
    batched = train_lm_batched(schedules, totals, seeds=seeds, weight_decay=0.1, corpus=corpus, eval_every=8,
                               device="cpu", progress=False)
    for i, (schedule, seed, total, bat) in enumerate(zip(schedules, seeds, totals, batched)):
        seq = train_lm(schedule, total, seed=seed, weight_decay=0.1, corpus=corpus, eval_every=8, device="cpu",
                       progress=False)
        assert len(bat.loss) == total, f"run {i}: {len(bat.loss)} updates, expected its own {total}"
        assert all(_close(a, b) for a, b in zip(seq.loss, bat.loss)), f"run {i}: {bat.loss}, {seq.loss}"
        assert bat.lr == seq.lr, f"run {i}: learning rates differ"
        assert bat.val_steps == seq.val_steps, f"run {i}: evaluated at {bat.val_steps}, {seq.val_steps}"
        assert all(_close(a, b) for a, b in zip(seq.val_loss, bat.val_loss)), f"run {i}: {bat.val_loss}, {seq.val_loss}"
    # the decay really acts: without it the same run ends elsewhere
    plain = train_lm(schedules[1], 24, seed=0, corpus=corpus, device="cpu", progress=False)
    assert not all(_close(a, b) for a, b in zip(plain.loss[1:], batched[1].loss[1:]))


def test_lengths_must_match_runs(corpus):
    with pytest.raises(ValueError, match="lengths"):
        train_lm_batched([0.01, 0.02], [3], corpus=corpus, device="cpu")
