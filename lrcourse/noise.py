"""The least-squares noise model of notebook 06, in one place for the notebook and its tests.

For least squares with inputs ``x ~ N(0, I_d)``, label noise ``sigma`` and weights a
distance ``dist`` from the optimum, notebook 06 derives ``|G|^2 = dist^2`` and
``tr(Sigma) = d (dist^2 + sigma^2) + dist^2``. The notebook shows this file's functions,
and its tests compute their expected values with them, in the grader's own process.
"""
from __future__ import annotations

import numpy as np


def regression_noise(d, dist, sigma):
    """Exact |G|^2, tr(Sigma) and B_simple of least squares with x ~ N(0, I_d) and label noise
    sigma, at weights a distance `dist` from the optimum."""
    g_sq = dist**2
    trace = d * (dist**2 + sigma**2) + dist**2
    return g_sq, trace, trace / g_sq


def expected_sq_norm(batch, d, dist, sigma):
    """E|g_B|^2 = |G|^2 + tr(Sigma) / B for a minibatch of `batch` independent examples."""
    g_sq, trace, _ = regression_noise(d, dist, sigma)
    return g_sq + trace / batch


def regression_grads(n, d, dist, sigma, seed):
    """n per-example gradients (an n x d array) of the least-squares problem, at weights a
    distance `dist` from the optimum along the first axis."""
    rng = np.random.default_rng(seed)
    delta = np.zeros(d)
    delta[0] = dist
    x = rng.standard_normal((n, d))
    noise = sigma * rng.standard_normal(n)
    return x * (x @ delta - noise)[:, None]
