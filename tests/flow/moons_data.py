"""Moons data of the reference recipe, shared by the flow tests."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_moons

# The reference recipe: 4000 training rows (seed 0) and 4000 held-out rows
# (seed 1), both standardised with the training mean and std.
MOONS_ROWS = 4000
MOONS_NOISE = 0.07


def moons_split() -> tuple[np.ndarray, np.ndarray]:
    """Return the standardised (train, held-out) moons arrays in float64."""
    train, _ = make_moons(MOONS_ROWS, noise=MOONS_NOISE, random_state=0)
    held_out, _ = make_moons(MOONS_ROWS, noise=MOONS_NOISE, random_state=1)
    mean, std = train.mean(axis=0), train.std(axis=0)
    return (train - mean) / std, (held_out - mean) / std
