"""Fixtures for the flow library tests: real moons data and trained flows."""

from __future__ import annotations

import numpy as np
import pytest
from moons_data import moons_split

import flow

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
