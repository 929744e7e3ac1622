"""Helpers shared by the LR Schedules notebooks.

Notebooks import from here instead of copying code: the device and seeding helpers,
the shipped data sets, the small models, the training loop, plots, widgets, and the
assertion helpers used by the graded test cells.
"""
from .runtime import pick_device, quick_mode, seed_everything, set_cpu_threads
from .data import DigitsData, data_dir, load_digits
from .models import DigitsMLP
from .train import History, train, train_model, lr_sweep
from .batched import lr_sweep_batched, train_batched

set_cpu_threads()

__all__ = [
    "pick_device", "quick_mode", "seed_everything",
    "DigitsData", "data_dir", "load_digits",
    "DigitsMLP",
    "History", "train", "train_model", "lr_sweep", "train_batched", "lr_sweep_batched",
]
