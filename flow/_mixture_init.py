"""Data-driven initialisation of one-dimensional Gaussian mixtures."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

# Scales never start below this fraction of the feature's standard deviation,
# so an atom (a value repeated in many rows) cannot seed a zero-width
# component whose density is unbounded.
_MIN_SCALE_FRACTION = 1e-6

# EM steps after the quantile start: enough to move components onto the
# modes, few enough to stay well under a second for 10^5 rows.
_EM_STEPS = 10


def init_mixture(
    x: np.ndarray, num_components: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit per-feature K-component Gaussian mixtures to x.

    Components start at evenly spaced quantiles with scales from the
    quantile spacing, then take a few EM steps with a scale floor.

    Args:
        x: `(batch, features)` data as it reaches the layer.
        num_components: K.

    Returns:
        ``(loc, log_scale, logits)``, each `(features, K)`, float64.
    """
    x = np.asarray(x, dtype=np.float64)
    features = [_init_feature(x[:, j], num_components) for j in range(x.shape[1])]
    loc, log_scale, logits = (np.stack(part) for part in zip(*features, strict=True))
    return loc, log_scale, logits


def _init_feature(
    values: np.ndarray, num_components: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    std = float(values.std())
    min_scale = max(std, 1.0) * _MIN_SCALE_FRACTION

    levels = (np.arange(num_components) + 0.5) / num_components
    loc = np.quantile(values, levels)
    padded = np.concatenate(
        [[loc[0] - std / num_components], loc, [loc[-1] + std / num_components]]
    )
    scale = np.maximum(0.5 * (padded[2:] - padded[:-2]), min_scale)
    log_weight = np.full(num_components, -np.log(num_components))

    column = values[:, None]
    for _ in range(_EM_STEPS):
        log_joint = log_weight - np.log(scale) - 0.5 * ((column - loc) / scale) ** 2
        log_resp = log_joint - logsumexp(log_joint, axis=1, keepdims=True)
        resp = np.exp(log_resp)
        mass = resp.sum(axis=0) + 1e-12
        loc = (resp * column).sum(axis=0) / mass
        variance = (resp * (column - loc) ** 2).sum(axis=0) / mass
        scale = np.maximum(np.sqrt(variance), min_scale)
        log_weight = np.log(mass / mass.sum())
    return loc, np.log(scale), log_weight - log_weight.max()
