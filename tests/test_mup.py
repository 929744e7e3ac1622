"""Notebook 11's claims (lrcourse.mup): the batched width trainer gives the sequential runs, and on the
digits MLP with Adam the best learning rate drifts with the width under SP and stays put under muP,
on every seed the notebook uses."""
import math

import numpy as np
import pytest
import torch

from lrcourse.mup import WidthMLP, best_lr, lr_multipliers, train_width_batched, train_with_groups

BASE = 32
WIDTHS = [32, 64, 128, 256]
SEEDS = [0, 1, 2]
LRS = [3e-4 * 2 ** (k / 2) for k in range(2, 17)]  # the notebook's grid
STEPS = 60


pytestmark = pytest.mark.usefixtures("clean_env")  # the device and mode settings of conftest


def mup_groups(model, width, lr):
    """muP's AdamW groups: hidden weights at lr * BASE / width, every other tensor at lr."""
    hidden = [layer.weight for layer in model.layers[1:-1]]
    others = [p for p in model.parameters() if all(p is not h for h in hidden)]
    return [{"params": others, "lr": lr}] + ([{"params": hidden, "lr": lr * BASE / width}] if hidden else [])


def mup_model(width, n_layers=3, bias=True):
    """A WidthMLP in muP: readout multiplier BASE / width, readout weights and wide biases times sqrt(width / BASE)."""
    model = WidthMLP(width, n_layers, bias=bias, output_mult=BASE / width)
    with torch.no_grad():
        model.layers[-1].weight.mul_(math.sqrt(width / BASE))
        for layer in model.layers[1:]:
            if layer.bias is not None:
                layer.bias.mul_(math.sqrt(width / BASE))
    return model


@pytest.mark.parametrize("width, n_layers, bias, lrs, seeds", [
    (96, 3, True, [1e-3, 3e-3, 0.3], [0, 1, 2]),  # 0.3: near blowing up, where rounding grows most
    (40, 4, False, [2e-3, 5e-3], [3, 3]),
    (64, 2, True, [1e-2], [5]),
])
def test_batched_matches_sequential(digits, width, n_layers, bias, lrs, seeds):
    model_fn = lambda: mup_model(width, n_layers, bias)  # noqa: E731
    probe = model_fn()
    mults = lr_multipliers(probe, mup_groups(probe, width, 1.0), 1.0)
    batched = train_width_batched(model_fn, lrs, 40, seeds=seeds, lr_mults=mults, data=digits, device="cpu")
    for lr, seed, bat in zip(lrs, seeds, batched):
        seq = train_with_groups(model_fn, lambda m, lr=lr: mup_groups(m, width, lr), 40, seed=seed, data=digits,
                                device="cpu")
        assert bat.diverged == seq.diverged
        rtol = 1e-2 if lr >= 0.1 else 1e-5
        np.testing.assert_allclose(bat.loss, seq.loss, rtol=rtol, err_msg=f"width {width} lr {lr} seed {seed}")


def test_a_copy_that_blows_up_stops_alone(digits):
    runs = train_width_batched(lambda: WidthMLP(64), [1e-3, 50.0], 30, seeds=[0, 0], data=digits, device="cpu")
    assert not runs[0].diverged and len(runs[0].loss) == 30
    alone = train_width_batched(lambda: WidthMLP(64), [1e-3], 30, seeds=[0], data=digits, device="cpu")[0]
    np.testing.assert_allclose(runs[0].loss, alone.loss, rtol=1e-5)


def test_best_lr_finds_the_bottom_of_a_parabola():
    lrs = [0.001 * 2 ** (k / 2) for k in range(12)]
    losses = [math.exp((math.log(lr) - math.log(0.0071)) ** 2) for lr in lrs]
    assert best_lr(lrs, losses) == pytest.approx(0.0071, rel=1e-6)
    assert best_lr(lrs, [math.inf] * 3 + losses[3:]) == pytest.approx(0.0071, rel=1e-6)
    assert best_lr(lrs, sorted(losses)) == lrs[0]  # the lowest point at the edge: no fit


def sweep_best(digits, parametrization):
    """best_lr for every width (rows) and seed (columns)."""
    best = np.empty((len(WIDTHS), len(SEEDS)))
    for i, width in enumerate(WIDTHS):
        if parametrization == "sp":
            model_fn, mults = (lambda width=width: WidthMLP(width)), {}
        else:
            model_fn = lambda width=width: mup_model(width)  # noqa: E731
            probe = model_fn()
            mults = lr_multipliers(probe, mup_groups(probe, width, 1.0), 1.0)
        runs = train_width_batched(model_fn, [lr for _ in SEEDS for lr in LRS], STEPS,
                                   seeds=[s for s in SEEDS for _ in LRS], lr_mults=mults, data=digits, device="cpu")
        finals = np.reshape([run.final_loss(20) for run in runs], (len(SEEDS), len(LRS)))
        best[i] = [best_lr(LRS, f) for f in finals]
    return best


@pytest.mark.slow
def test_best_lr_drifts_under_sp_and_stays_under_mup(digits):
    sp, mup = sweep_best(digits, "sp"), sweep_best(digits, "mup")
    for j, seed in enumerate(SEEDS):
        assert sp[0, j] / sp[-1, j] >= 2.0, f"seed {seed}: SP's best LR should fall >= 2x over the widths, {sp[:, j]}"
        slope = np.polyfit(np.log(WIDTHS), np.log(sp[:, j]), 1)[0]
        assert slope <= -0.3, f"seed {seed}: SP's best LR should fall steadily with the width (slope {slope:.2f})"
        spread = mup[:, j].max() / mup[:, j].min()
        assert spread <= 2.0, f"seed {seed}: muP's best LRs should stay within 2x, {mup[:, j]}"
