"""Schedule-free SGD on the digits MLP (notebook 09), with the update step passed in.

``train_schedule_free`` is the training loop of :func:`lrcourse.train.train` (same initial
weights, same minibatches for a seed) around a step function ``step(x, z, grad, lr, t, beta)
-> (x, z)`` on the network's weights as one flat tensor: the notebook passes the student's
``schedule_free_step``, the tests a reference written from Defazio et al. (2024,
arXiv:2405.15682).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from .data import DigitsData, load_digits
from .models import DigitsMLP
from .runtime import pick_device, seed_everything
from .train import History, minibatch_indices

Step = Callable[..., tuple]


def train_schedule_free(step: Step, lr: float, total_steps: int, *, seed: int = 0, beta: float = 0.9,
                        batch_size: int = 64, data: DigitsData | None = None, eval_every: int | None = None,
                        device: str | torch.device | None = None) -> tuple[History, torch.nn.Module]:
    """Schedule-free SGD with ``step`` for ``total_steps`` updates; its History and the model at ``x``.

    ``history.loss[t]`` is the minibatch loss at ``y_t``, where update ``t`` took its gradient;
    with ``eval_every``, ``history.val_loss`` is the validation loss at the average ``x``.
    """
    device = pick_device(device)
    data = (data if data is not None else load_digits()).to(device)
    generator = seed_everything(seed)
    model = DigitsMLP().to(device)  # the initial weights and minibatches train() uses for this seed
    params = list(model.parameters())
    batches = minibatch_indices(len(data.x_train), batch_size, generator)
    history = History()

    def grad(y: torch.Tensor) -> torch.Tensor:
        """The minibatch gradient at the weights y; records the loss there."""
        vector_to_parameters(y, params)
        idx = next(batches).to(device)
        loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        history.loss.append(loss.item())
        return parameters_to_vector(torch.autograd.grad(loss, params))

    def loss_at(weights: torch.Tensor) -> float:
        with torch.no_grad():
            vector_to_parameters(weights, params)
            return F.cross_entropy(model(data.x_val), data.y_val).item()

    x = z = parameters_to_vector(params).detach()
    for t in range(total_steps):
        history.lr.append(float(lr))
        x, z = step(x, z, grad, lr, t, beta)
        if eval_every and ((t + 1) % eval_every == 0 or t + 1 == total_steps):
            history.val_steps.append(t + 1)
            history.val_loss.append(loss_at(x))
    vector_to_parameters(x, params)
    return history, model


__all__ = ["train_schedule_free"]
