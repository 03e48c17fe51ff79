"""Training on data with atoms: the marginal-first layer and the preconditioner."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import keras
import numpy as np
import pytest

import flow
from flow._precondition import LocationPreconditioner


def atom_data(rows: int = 4000, seed: int = 0) -> np.ndarray:
    """Return `(rows, 2)` data like a dequantized sparse count next to a smooth one.

    Column 0 is 0 in 90 % of rows and spread over [1000, 5000] otherwise. It
    is dequantized with uniform noise of width 1, so its atom is about 1e-3
    standard deviations wide. Column 1 is Gaussian noise correlated with it.
    """
    rng = np.random.default_rng(seed)
    nonzero = rng.random(rows) < 0.1
    counts = np.where(nonzero, rng.integers(1000, 5000, rows), 0).astype(np.float64)
    counts += rng.uniform(-0.5, 0.5, rows)
    smooth = 0.002 * counts + rng.standard_normal(rows)
    return np.stack([counts, smooth], axis=1).astype(np.float32)


def mean_nll(model: flow.GaussianizationFlow, x: np.ndarray) -> float:
    return -float(np.mean(np.asarray(model.log_prob(x))))


@pytest.mark.slow
def test_training_keeps_atom_fit() -> None:
    train, held_out = atom_data(seed=0), atom_data(seed=1)
    initial = flow.GaussianizationFlow(
        2, num_blocks=2, num_components=6, standardize=True, marginal_first=True
    )
    initial.initialize_from_data(train, seed=0)
    start = mean_nll(initial, held_out)

    trained, _ = flow.fit_and_freeze(
        train,
        num_blocks=2,
        num_components=6,
        epochs=3,
        batch_size=256,
        lr=3e-3,
        seed=0,
        standardize=True,
        marginal_first=True,
    )
    # Plain Adam steps on the locations knock the atom's component off its
    # cell in the first epoch, which costs several nats per row.
    assert mean_nll(trained, held_out) < start + 0.05


def test_marginal_first_layer_order() -> None:
    model = flow.GaussianizationFlow(
        3, num_blocks=1, num_components=2, standardize=True, marginal_first=True
    )
    names = [layer.name for layer in model.bijectors]
    assert names == [
        "standardize",
        "marginal_first",
        "pca",
        "block0_rotation",
        "block0_marginal",
    ]


@pytest.mark.slow
def test_marginal_first_save_load(tmp_path: Path) -> None:
    train, held_out = atom_data(rows=2000, seed=0), atom_data(rows=500, seed=1)
    model, _ = flow.fit_and_freeze(
        train,
        num_blocks=1,
        num_components=4,
        epochs=1,
        seed=0,
        standardize=True,
        marginal_first=True,
    )
    path = tmp_path / "atoms.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.marginal_first is True
    assert flow.is_fully_frozen(loaded)
    assert np.array_equal(
        np.asarray(loaded.log_prob(held_out)), np.asarray(model.log_prob(held_out))
    )
    z = np.asarray(model(held_out))
    round_trip = np.asarray(loaded.invert(z))
    relative = np.abs(round_trip - held_out) / np.maximum(np.abs(held_out), 1.0)
    assert np.max(relative) < 1e-4


def test_preconditioner_starts_at_weights() -> None:
    model = flow.GaussianizationFlow(2, num_blocks=1, num_components=4)
    model.initialize_from_data(atom_data(rows=1000), seed=0)
    trainable = model.trainable_variables
    weights = [variable.value for variable in trainable]
    preconditioner = LocationPreconditioner(model, trainable)
    start = preconditioner.initial_values(weights)
    for weight, value in zip(weights, preconditioner.to_model(start), strict=True):
        assert np.array_equal(np.asarray(weight), np.asarray(value))


@pytest.mark.parametrize(("scale", "expected_step"), [(1e-4, 1e-3), (0.5, 1.0)])
def test_preconditioner_step_scale(scale: float, expected_step: float) -> None:
    model = flow.GaussianizationFlow(1, num_blocks=1, num_components=1, use_pca=False)
    marginal = model.bijectors[-1]
    marginal.log_scale.assign(np.full((1, 1), np.log(scale), np.float32))
    trainable = model.trainable_variables
    preconditioner = LocationPreconditioner(model, trainable)
    index = [variable.path for variable in trainable].index(marginal.loc.path)
    values = preconditioner.initial_values([v.value for v in trainable])
    values[index] = jnp.ones_like(values[index])
    moved = preconditioner.to_model(values)[index] - marginal.loc.value
    np.testing.assert_allclose(np.asarray(moved), expected_step, rtol=1e-3)
