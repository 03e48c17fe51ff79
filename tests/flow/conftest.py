"""Fixtures for the flow library tests: real moons data and trained flows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_moons

import flow

# The reference recipe: 4000 training rows (seed 0) and 4000 held-out rows
# (seed 1), both standardised with the training mean and std.
MOONS_ROWS = 4000
MOONS_NOISE = 0.07

# fit_and_freeze settings whose figures the acceptance tests check.
ACCEPTANCE_FIT = {
    "num_blocks": 6,
    "num_components": 10,
    "epochs": 120,
    "batch_size": 256,
    "lr": 2e-3,
    "validation_split": 0.1,
    "patience": 15,
    "seed": 0,
}


def moons_split() -> tuple[np.ndarray, np.ndarray]:
    """Return the standardised (train, held-out) moons arrays in float64."""
    train, _ = make_moons(MOONS_ROWS, noise=MOONS_NOISE, random_state=0)
    held_out, _ = make_moons(MOONS_ROWS, noise=MOONS_NOISE, random_state=1)
    mean, std = train.mean(axis=0), train.std(axis=0)
    return (train - mean) / std, (held_out - mean) / std


@pytest.fixture(scope="session")
def moons() -> tuple[np.ndarray, np.ndarray]:
    train, held_out = moons_split()
    return train.astype(np.float32), held_out.astype(np.float32)


@pytest.fixture(scope="session")
def trained_moons(
    moons: tuple[np.ndarray, np.ndarray],
) -> tuple[flow.GaussianizationFlow, dict]:
    train, _ = moons
    return flow.fit_and_freeze(train, **ACCEPTANCE_FIT)


@pytest.fixture(scope="session")
def small_float64_flow() -> flow.GaussianizationFlow:
    train, _ = moons_split()
    model, _ = flow.fit_and_freeze(
        train, num_blocks=3, num_components=6, epochs=3, seed=1, dtype="float64"
    )
    return model


def initialized_flow(
    data: np.ndarray, dtype: str = "float32", **kwargs: object
) -> flow.GaussianizationFlow:
    """Build a flow and initialise it from data without training."""
    model = flow.GaussianizationFlow(data.shape[1], dtype=dtype, **kwargs)
    model.initialize_from_data(data.astype(dtype), seed=0)
    return model
