"""Fast unit tests for the ``lrcourse`` helper package (runtime, data, models, train, checks).

The whole file runs in well under 20 s on 2 CPU cores: training runs are short and share
one loaded copy of the digits data.
"""
from __future__ import annotations

import gzip
import math
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import lrcourse
from lrcourse.checks import assert_close, assert_true
from lrcourse.data import DataError, data_dir, load_digits, read_verified
from lrcourse.models import DigitsMLP
from lrcourse.runtime import pick_device, quick_mode, seed_everything
from lrcourse.train import History, lr_sweep, train

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
DIGITS = "digits.csv.gz"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """Every test starts without the variables that steer the package."""
    for name in ("LRCOURSE_DEVICE", "LRCOURSE_DATA", "LRCOURSE_QUICK", "NBGRADER_EXECUTION", "CI"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def digits():
    return load_digits("cpu")


# --------------------------------------------------------------------------- runtime


def test_pick_device_is_cpu_here():
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("an accelerator is available on this machine")
    assert pick_device() == torch.device("cpu")


def test_pick_device_honours_prefer():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(prefer="meta") == torch.device("meta")


def test_pick_device_honours_env(monkeypatch):
    monkeypatch.setenv("LRCOURSE_DEVICE", "meta")
    assert pick_device() == torch.device("meta")
    # an explicit argument wins over the environment
    assert pick_device("cpu") == torch.device("cpu")


def test_seed_everything_reproducible():
    g1 = seed_everything(123)
    a = torch.randn(5)
    py_a, np_a = random.random(), np.random.rand()
    from_g1 = torch.randn(5, generator=g1)

    g2 = seed_everything(123)
    b = torch.randn(5)
    py_b, np_b = random.random(), np.random.rand()
    from_g2 = torch.randn(5, generator=g2)

    assert torch.equal(a, b)
    assert py_a == py_b and np_a == np_b
    assert isinstance(g1, torch.Generator)
    assert torch.equal(from_g1, from_g2)
    # the returned generator is seeded with the seed itself
    assert torch.equal(torch.randn(5, generator=seed_everything(7)),
                       torch.randn(5, generator=torch.Generator().manual_seed(7)))
    seed_everything(124)
    assert not torch.equal(torch.randn(5), a)


def test_quick_mode_default_off():
    assert quick_mode() is False


@pytest.mark.parametrize("name,value", [("NBGRADER_EXECUTION", "autograde"), ("NBGRADER_EXECUTION", "validate"),
                                        ("CI", "true"), ("CI", "TRUE")])
def test_quick_mode_on_under_grading_and_ci(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert quick_mode() is True


def test_quick_mode_ci_must_be_true(monkeypatch):
    monkeypatch.setenv("CI", "false")
    assert quick_mode() is False


@pytest.mark.parametrize("forced,expected", [("1", True), ("0", False), ("true", True), ("false", False)])
def test_quick_mode_override_wins(monkeypatch, forced, expected):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("LRCOURSE_QUICK", forced)
    assert quick_mode() is expected
    monkeypatch.delenv("NBGRADER_EXECUTION")
    monkeypatch.delenv("CI")
    assert quick_mode() is expected


# --------------------------------------------------------------------------- data


def test_data_dir_from_any_cwd(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert data_dir().resolve() == DATA.resolve()
    assert (data_dir() / "SHA256SUMS").is_file()
    assert len(load_digits().x_train) == 1437


def test_load_digits_split_and_standardisation(digits):
    assert digits.x_train.shape == (1437, 64)
    assert digits.x_val.shape == (360, 64)
    assert digits.y_train.shape == (1437,) and digits.y_val.shape == (360,)
    assert digits.x_train.dtype == torch.float32 and digits.y_train.dtype == torch.int64
    assert set(digits.y_train.tolist()) == set(range(10))
    assert set(digits.y_val.tolist()) <= set(range(10))
    assert torch.isfinite(digits.x_train).all() and torch.isfinite(digits.x_val).all()

    mean = digits.x_train.mean(0)
    std = digits.x_train.std(0, unbiased=False)
    assert mean.abs().max() < 1e-4
    spread = std > 0.99  # pixels whose raw spread is above the floor end with unit std
    assert spread.sum() >= 45, "most pixels vary by more than one grey level (49 of 64 do)"
    assert torch.allclose(std[spread], torch.ones_like(std[spread]), atol=1e-3)
    assert (std[~spread] < 1).all(), "near-blank pixels are divided by the floor, not their own spread"
    # The floor keeps stray strokes in near-blank pixels from becoming huge outliers.
    assert digits.x_train.abs().max() < 15 and digits.x_val.abs().max() < 15


def test_load_digits_same_split_every_call(digits):
    torch.manual_seed(999)
    np.random.seed(999)  # a global seed must not change the split
    again = load_digits()
    for a, b in zip((digits.x_train, digits.y_train, digits.x_val, digits.y_val),
                    (again.x_train, again.y_train, again.x_val, again.y_val)):
        assert torch.equal(a, b)


def _copy_data(tmp_path) -> Path:
    """A copy of the digits file and its checksum list, for LRCOURSE_DATA."""
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("SHA256SUMS", DIGITS):
        shutil.copy(DATA / name, folder / name)
    return folder


def test_intact_copy_loads(monkeypatch, tmp_path, digits):
    monkeypatch.setenv("LRCOURSE_DATA", str(_copy_data(tmp_path)))
    assert torch.equal(load_digits().x_val, digits.x_val)


def test_corrupted_file_raises_data_error(monkeypatch, tmp_path):
    folder = _copy_data(tmp_path)
    target = folder / DIGITS
    blob = bytearray(target.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    target.write_bytes(bytes(blob))
    monkeypatch.setenv("LRCOURSE_DATA", str(folder))
    assert data_dir() == folder
    with pytest.raises(DataError) as err:
        load_digits()
    message = str(err.value)
    assert DIGITS in message
    assert "corrupted" in message
    assert f"git checkout -- data/{DIGITS}" in message


def test_valid_gzip_with_wrong_content_raises_data_error(monkeypatch, tmp_path):
    folder = _copy_data(tmp_path)
    (folder / DIGITS).write_bytes(gzip.compress(b"0,0,0\n"))
    monkeypatch.setenv("LRCOURSE_DATA", str(folder))
    with pytest.raises(DataError, match="corrupted"):
        load_digits()


def test_missing_file_raises_data_error(monkeypatch, tmp_path):
    folder = _copy_data(tmp_path)
    (folder / DIGITS).unlink()
    monkeypatch.setenv("LRCOURSE_DATA", str(folder))
    with pytest.raises(DataError) as err:
        load_digits()
    assert DIGITS in str(err.value) and "missing" in str(err.value)
    assert "git checkout" in str(err.value)


def test_unlisted_file_raises_data_error():
    with pytest.raises(DataError, match="not listed"):
        read_verified("no-such-file.csv")


def test_missing_sha256sums_folder_raises_data_error(monkeypatch, tmp_path):
    monkeypatch.setenv("LRCOURSE_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="LRCOURSE_DATA"):
        data_dir()
    with pytest.raises(DataError):
        load_digits()
    # a folder that exists but has no SHA256SUMS is not the data folder either
    monkeypatch.setenv("LRCOURSE_DATA", str(tmp_path))
    with pytest.raises(DataError):
        data_dir()


def test_data_error_is_runtime_error():
    assert issubclass(DataError, RuntimeError)


# --------------------------------------------------------------------------- models


def test_mlp_output_shape_and_size():
    model = DigitsMLP()
    assert model(torch.zeros(7, 64)).shape == (7, 10)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 64 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10 == 26122


# --------------------------------------------------------------------------- train


def test_history_lengths_and_schedule_values(digits):
    schedule = lambda s: 0.01 * (s + 1)  # noqa: E731
    hist = train(schedule, 25, data=digits)
    assert isinstance(hist, History)
    assert not hist.diverged
    assert len(hist.loss) == len(hist.lr) == 25
    assert hist.lr == [schedule(s) for s in range(25)]
    assert all(isinstance(v, float) for v in hist.lr + hist.loss)
    assert hist.val_steps == [] and hist.val_loss == []


def test_constant_lr_is_recorded(digits):
    assert train(0.05, 5, data=digits).lr == [0.05] * 5


def test_same_seed_same_curve_different_seed_differs(digits):
    a = train(0.05, 30, data=digits, seed=3)
    b = train(0.05, 30, data=digits, seed=3)
    c = train(0.05, 30, data=digits, seed=4)
    assert a.loss == b.loss
    assert a.loss != c.loss


def test_run_does_not_depend_on_global_rng(digits):
    torch.manual_seed(1)
    a = train(0.05, 10, data=digits, seed=5)
    torch.manual_seed(2)
    torch.randn(100)
    b = train(0.05, 10, data=digits, seed=5)
    assert a.loss == b.loss


def test_sane_lr_learns(digits):
    hist = train(0.1, 300, data=digits)
    assert not hist.diverged
    assert 2.0 < hist.loss[0] < 2.6  # about ln(10) = 2.30 at initialisation
    assert hist.final_loss() < 0.5
    assert hist.final_loss() == pytest.approx(sum(hist.loss[-20:]) / 20)


def test_huge_lr_diverges_or_ends_at_chance(digits):
    hist = train(1e3, 100, data=digits)
    if hist.diverged:
        assert hist.final_loss() == math.inf
        assert len(hist.loss) < 100
        assert not math.isfinite(hist.loss[-1])
        assert len(hist.lr) == len(hist.loss)
    else:
        assert hist.final_loss() > 2.0


def test_final_loss_of_empty_history():
    assert History().final_loss() == math.inf


def test_eval_every_records_val_loss_at_the_right_steps(digits):
    hist = train(0.05, 25, data=digits, eval_every=10)
    assert hist.val_steps == [10, 20, 25]
    assert len(hist.val_loss) == 3
    assert all(math.isfinite(v) and v > 0 for v in hist.val_loss)
    assert train(0.05, 20, data=digits, eval_every=10).val_steps == [10, 20]


def test_adamw_works(digits):
    hist = train(3e-3, 100, data=digits, optimizer="adamw")
    assert len(hist.loss) == 100 and not hist.diverged
    assert hist.final_loss() < 1.0


def test_batch_larger_than_training_set(digits):
    with pytest.raises(ValueError, match="batch_size"):
        train(0.1, 5, data=digits, batch_size=len(digits.x_train) + 1)


def test_several_epochs_with_full_batch(digits):
    # every step starts a new epoch: the reshuffle path must work
    hist = train(0.05, 3, data=digits, batch_size=len(digits.x_train))
    assert len(hist.loss) == 3


def test_lr_sweep_same_start(digits):
    lrs = [0.01, 0.05, 0.2]
    runs = lr_sweep(lrs, 15, data=digits, seed=2)
    assert list(runs) == lrs
    assert all(isinstance(h, History) and len(h.loss) == 15 for h in runs.values())
    first = {h.loss[0] for h in runs.values()}
    assert len(first) == 1, f"first losses differ: {first}"
    assert all(runs[lr].lr == [lr] * 15 for lr in lrs)
    assert runs[0.01].loss != runs[0.2].loss
    # the same as training each LR alone
    assert runs[0.05].loss == train(0.05, 15, data=digits, seed=2).loss


def test_lr_sweep_loads_data_itself():
    runs = lr_sweep([0.05], 3, device="cpu")
    assert len(runs[0.05].loss) == 3


def test_public_api():
    for name in lrcourse.__all__:
        assert hasattr(lrcourse, name)


# --------------------------------------------------------------------------- checks


def _message(fn, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as err:
        fn(*args, **kwargs)
    return str(err.value)


@pytest.mark.parametrize("got,expected", [
    (0.1, 0.1), (1, 1.0), (0.1 + 1e-12, 0.1), (np.float32(0.5), 0.5), (torch.tensor(0.25), 0.25),
    ([0.1, 0.2], [0.1, 0.2]), ((1.0, 2.0), np.array([1.0, 2.0])), (np.arange(3.0), [0, 1, 2]),
    (torch.tensor([1.0, 2.0]), [1.0, 2.0]), (math.inf, math.inf), (0.0, 1e-12),
])
def test_assert_close_passes(got, expected):
    assert_close(got, expected, "f(0)")


def test_assert_close_message_has_expected_and_got():
    msg = _message(assert_close, 0.2, 0.1, "lr(3)", hint="multiply by gamma")
    assert "lr(3)" in msg and "expected 0.1" in msg and "got 0.2" in msg
    assert "multiply by gamma" in msg


def test_assert_close_array_message_points_at_difference():
    msg = _message(assert_close, [0.1, 0.2, 0.35], [0.1, 0.2, 0.3], "schedule")
    assert "index 2" in msg and "0.35" in msg and "0.3" in msg


def test_assert_close_fails_on_nan_and_inf():
    _message(assert_close, math.nan, 0.1, "f(0)")
    _message(assert_close, math.inf, 0.1, "f(0)")
    _message(assert_close, -math.inf, math.inf, "f(0)")


def test_assert_close_none_mentions_return():
    msg = _message(assert_close, None, 0.1, "cosine(0)")
    assert "None" in msg and "return" in msg


@pytest.mark.parametrize("text", ["abc", "0.1", ["0.1"], b"0.1"])
def test_assert_close_rejects_text(text):
    msg = _message(assert_close, text, 0.1, "f(0)")
    assert "f(0)" in msg and "expected a number" in msg


def test_assert_close_rejects_other_objects():
    assert "expected a number" in _message(assert_close, {"lr": 0.1}, 0.1, "f(0)")
    assert "expected a number" in _message(assert_close, [[1.0, 2.0], [3.0]], [1.0, 2.0, 3.0], "f(0)")


def test_assert_close_shape_mismatch():
    msg = _message(assert_close, [0.1, 0.2], [0.1, 0.2, 0.3], "schedule")
    assert "shape" in msg and "(2,)" in msg and "(3,)" in msg
    assert "shape" in _message(assert_close, [0.1], 0.1, "f(0)")
    assert "shape" in _message(assert_close, [[0.1, 0.2]], [0.1, 0.2], "f(0)")


class Liar:
    """Claims to equal anything; as a number it is 123."""

    def __eq__(self, other):
        return True

    __hash__ = object.__hash__

    def __float__(self):
        return 123.0


def test_always_equal_object_does_not_pass():
    assert Liar() == 0.1  # the trick works on plain ==
    msg = _message(assert_close, Liar(), 0.1, "f(0)")
    assert "123" in msg and "0.1" in msg
    _message(assert_close, [Liar(), Liar()], [0.1, 0.2], "f")


def test_patched_isclose_does_not_help(monkeypatch):
    monkeypatch.setattr(math, "isclose", lambda *a, **k: True)
    monkeypatch.setattr(np, "isclose", lambda *a, **k: True)
    monkeypatch.setattr(np, "allclose", lambda *a, **k: True)
    assert math.isclose(1.0, 2.0)
    _message(assert_close, 0.2, 0.1, "f(0)")
    _message(assert_close, [0.2], [0.1], "f")


def test_patched_isfinite_does_not_help(monkeypatch):
    monkeypatch.setattr(math, "isfinite", lambda *a, **k: True)
    _message(assert_close, 0.2, 0.1, "f(0)")


def test_comparisons_hold_when_the_math_they_use_is_patched_afterwards(monkeypatch):
    """checks keeps its own references to math and numpy functions: a notebook that patches
    them later (to pass a test) does not change what assert_close compares."""
    import math

    monkeypatch.setattr(math, "isclose", lambda *a, **k: True)
    monkeypatch.setattr(math, "isfinite", lambda *a, **k: True)
    monkeypatch.setattr(np, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(np, "isclose", lambda *a, **k: np.array(True))
    with pytest.raises(AssertionError):
        assert_close(1.0, 2.0, "a wrong value")
    with pytest.raises(AssertionError):
        assert_close([1.0, float("nan")], [1.0, 2.0], "a NaN")
    assert_close(1.0, 1.0 + 1e-12, "a right value")


def test_assert_true():
    assert_true(True, "unused")
    assert_true(np.bool_(True), "unused")
    assert_true(1 < 2, "unused")
    for bad in ([1], [0], "yes", 1, 1.0, np.array([True, True]), None, False, np.bool_(False), Liar()):
        with pytest.raises(AssertionError, match="the message"):
            assert_true(bad, "the message")


def test_progress_is_plain_text_and_closes_even_when_a_run_stops_early(monkeypatch):
    """Training progress is a text line in a display handle (never a widget, which a saved
    notebook could not show again), emptied when the run ends, also by divergence."""
    import IPython.display

    from lrcourse import runtime

    shown = []

    class Handle:
        def update(self, data, raw=False):
            shown.append(data)

    def fake_display(data, raw=False, display_id=False):
        assert raw and display_id and set(data) == {"text/plain"}, "a plain-text display handle"
        shown.append(data)
        return Handle()

    monkeypatch.setattr(IPython.display, "display", fake_display)
    monkeypatch.setattr(runtime.Progress, "EVERY_S", 0.0)
    history = train(lambda step: 0.05 if step < 3 else math.nan, 10, data=load_digits("cpu"), progress=True)
    assert history.diverged and len(history.loss) == 5  # the NaN LR at update 3 gives a NaN loss at 4
    assert shown[0]["text/plain"].endswith("0/10") and "4/10" in shown[-2]["text/plain"]
    assert shown[-1] == {"text/plain": ""}, "the line is emptied when the run stops"
    assert isinstance(runtime.progress(5, "x", enabled=False), runtime._NoProgress)


def test_an_unknown_optimizer_name_is_refused_and_adam_is_not_taken_for_adamw(digits):
    from lrcourse.batched import train_batched

    for trainer in (lambda name: train(0.1, 1, data=digits, optimizer=name),
                    lambda name: train_batched([0.1], 1, data=digits, optimizer=name)):
        with pytest.raises(ValueError, match="decoupled weight decay"):
            trainer("adam")
        with pytest.raises(ValueError, match="'sgd' or 'adamw'"):
            trainer("rmsprop")
