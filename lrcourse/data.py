"""The data sets shipped in ``data/``, located from any working directory and verified.

Nothing is downloaded: ``data/README.md`` gives each file's source, licence and how
it was made, and ``data/SHA256SUMS`` the checksum every load verifies.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


class DataError(RuntimeError):
    """A shipped data file is missing or does not match its checksum."""


def data_dir() -> Path:
    """The course's ``data/`` folder.

    Found from this package's own location (it is installed in editable mode from the
    repository), so it works whatever the notebook's working directory is: ``course/A/``,
    ``solutions/A/``, a Downloads folder, or nbgrader's ``autograded/<student>/<A>/``.
    ``LRCOURSE_DATA`` overrides it.
    """
    override = os.environ.get("LRCOURSE_DATA")
    path = Path(override) if override else Path(__file__).resolve().parents[1] / "data"
    if not (path / "SHA256SUMS").is_file():
        raise DataError(
            f"The course data folder was not found at {path}. Run the notebooks with the "
            "course's environment (bin/lab sets it up), or set LRCOURSE_DATA to the "
            "repository's data/ folder."
        )
    return path


def _checksums(folder: Path) -> dict[str, str]:
    sums = {}
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.strip().lstrip("*")] = digest
    return sums


def read_verified(name: str) -> bytes:
    """The bytes of ``data/<name>``, after checking them against ``data/SHA256SUMS``."""
    folder = data_dir()
    path = folder / name
    expected = _checksums(folder).get(name)
    if expected is None:
        raise DataError(f"{name} is not listed in {folder / 'SHA256SUMS'}.")
    if not path.is_file():
        raise DataError(f"{path} is missing. Restore it with `git checkout -- data/{name}`.")
    blob = path.read_bytes()
    actual = hashlib.sha256(blob).hexdigest()
    if actual != expected:
        raise DataError(
            f"{path} is corrupted: its SHA-256 is {actual[:12]}..., expected {expected[:12]}.... "
            f"Restore it with `git checkout -- data/{name}`."
        )
    return blob


@dataclass
class DigitsData:
    """Standardised 8x8 digit images (64 features) and labels, split train/validation."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor

    def to(self, device) -> "DigitsData":
        return DigitsData(*(t.to(device) for t in (self.x_train, self.y_train, self.x_val, self.y_val)))


DIGITS_FILE = "digits.csv.gz"
N_VAL = 360  # 1,797 images: 1,437 train / 360 validation
STD_FLOOR = 1.0  # one grey level (pixels are counts 0..16): the smallest spread we standardise by


def load_digits(device="cpu") -> DigitsData:
    """The UCI handwritten digits (1,797 images), split 1,437 / 360 with a fixed permutation.

    Pixels are standardised with the training set's mean and standard deviation, so the
    validation set tells us nothing about itself through the preprocessing. A pixel that
    barely varies in training (the border is almost always blank) is divided by at least
    ``STD_FLOOR``: dividing by its own tiny spread would turn one stray stroke in a
    validation image into a value 90 standard deviations out.
    """
    raw = np.loadtxt(io.BytesIO(gzip.decompress(read_verified(DIGITS_FILE))), delimiter=",", dtype=np.float32)
    x, y = raw[:, :64], raw[:, 64].astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))  # fixed split, independent of any global seed
    val, train = order[:N_VAL], order[N_VAL:]
    mean = x[train].mean(axis=0)
    std = np.maximum(x[train].std(axis=0), STD_FLOOR)
    x = (x - mean) / std
    data = DigitsData(
        torch.from_numpy(x[train]), torch.from_numpy(y[train]),
        torch.from_numpy(x[val]), torch.from_numpy(y[val]),
    )
    return data.to(device)
