"""Round trip, change of variables and tail behaviour of trained flows."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from moons_data import moons_split

import flow

pytestmark = pytest.mark.slow

# float32 round trip: held-out rows and a coarse grid that reaches far into
# the tails, where 1 / (dz/dx) amplifies round-off.
HELD_OUT_ROUND_TRIP = 1e-4
GRID_ROUND_TRIP = 1e-3
FLOAT64_ROUND_TRIP = 1e-9
# Relative to max(1, |log p|): the trained flows' tails are light, so log p
# at the tail points reaches -1e5, where one float32 ulp is already 0.008.
CHANGE_OF_VARIABLES = {"float32": 1e-4, "float64": 1e-9}
EXTREME = 1e6


def _grid() -> np.ndarray:
    axis = np.arange(-60, 61) / 10.0
    return np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)


def _check_points() -> np.ndarray:
    rng = np.random.default_rng(5)
    core = rng.standard_normal((40, 2))
    tails = np.array(
        [
            [4.0, 4.0],
            [-5.0, 3.0],
            [6.0, -6.0],
            [0.0, 8.0],
            [-9.0, 0.5],
            [10.0, 10.0],
            [-12.0, -7.0],
            [3.5, -4.5],
            [7.0, 0.0],
            [0.0, -7.5],
        ]
    )
    return np.concatenate([core, tails])


def test_round_trip_held_out(trained_moons: tuple, moons: tuple) -> None:
    model, _ = trained_moons
    _, held_out = moons
    back = np.asarray(model.invert(model(held_out)))
    assert np.max(np.abs(back - held_out)) <= HELD_OUT_ROUND_TRIP


def test_round_trip_grid(trained_moons: tuple) -> None:
    model, _ = trained_moons
    grid = _grid().astype(np.float32)
    back = np.asarray(model.invert(model(grid)))
    assert np.max(np.abs(back - grid)) <= GRID_ROUND_TRIP


def test_round_trip_float64(small_float64_flow: flow.GaussianizationFlow) -> None:
    _, held_out = moons_split()
    back = np.asarray(small_float64_flow.invert(small_float64_flow(held_out)))
    assert back.dtype == np.float64
    assert np.max(np.abs(back - held_out)) <= FLOAT64_ROUND_TRIP


def _change_of_variables_error(
    model: flow.GaussianizationFlow, points: np.ndarray
) -> float:
    params = model.params()

    def row_forward(row: jax.Array) -> jax.Array:
        return model.forward_pure(params, row[None, :])[0][0]

    x = jnp.asarray(points, dtype=model.feature_dtype)
    jacobians = np.asarray(
        jax.jit(jax.vmap(jax.jacfwd(row_forward)))(x), dtype=np.float64
    )
    _, log_abs_det = np.linalg.slogdet(jacobians)
    z = np.asarray(model(x), dtype=np.float64)
    expected = -0.5 * np.sum(z**2, axis=1) - np.log(2.0 * np.pi) + log_abs_det
    actual = np.asarray(model.log_prob(x), dtype=np.float64)
    return float(np.max(np.abs(actual - expected) / np.maximum(1.0, np.abs(expected))))


def test_change_of_variables_float32(trained_moons: tuple) -> None:
    model, _ = trained_moons
    error = _change_of_variables_error(model, _check_points())
    assert error <= CHANGE_OF_VARIABLES["float32"]


def test_change_of_variables_float64(
    small_float64_flow: flow.GaussianizationFlow,
) -> None:
    error = _change_of_variables_error(small_float64_flow, _check_points())
    assert error <= CHANGE_OF_VARIABLES["float64"]


EXTREME_ROWS = [
    pytest.param([EXTREME, 0.0], id="x0-plus"),
    pytest.param([-EXTREME, 0.0], id="x0-minus"),
    pytest.param([0.0, EXTREME], id="x1-plus"),
    pytest.param([0.0, -EXTREME], id="x1-minus"),
    pytest.param([EXTREME, -EXTREME], id="both"),
    pytest.param([1e3, 1e2], id="moderate"),
]


@pytest.mark.parametrize("row", EXTREME_ROWS)
def test_extreme_inputs_finite(trained_moons: tuple, row: list[float]) -> None:
    model, _ = trained_moons
    x = np.asarray([row], dtype=np.float32)
    assert bool(np.all(np.isfinite(np.asarray(model(x)))))
    assert bool(np.all(np.isfinite(np.asarray(model.log_prob(x)))))


@pytest.fixture(scope="module")
def extreme_derivatives(trained_moons: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Return the Jacobians `(rows, 2, 2)` and scores `(rows, 2)` of every
    extreme row, computed under one jax.jit each."""
    model, _ = trained_moons
    params = model.params()
    rows = jnp.asarray([case.values[0] for case in EXTREME_ROWS], dtype=jnp.float32)

    def row_forward(v: jax.Array) -> jax.Array:
        return model.forward_pure(params, v[None, :])[0][0]

    jacobians = jax.jit(jax.vmap(jax.jacfwd(row_forward)))(rows)
    scores = jax.jit(jax.grad(lambda v: jnp.sum(model.log_prob_pure(params, v))))(rows)
    return np.asarray(jacobians), np.asarray(scores)


INDEXED_EXTREME_ROWS = [
    pytest.param(index, id=case.id) for index, case in enumerate(EXTREME_ROWS)
]


@pytest.mark.parametrize("index", INDEXED_EXTREME_ROWS)
def test_extreme_inputs_gradient(extreme_derivatives: tuple, index: int) -> None:
    jacobian = extreme_derivatives[0][index]
    assert bool(np.all(np.isfinite(jacobian)))
    assert abs(np.linalg.det(jacobian.astype(np.float64))) > 0


@pytest.mark.parametrize("index", INDEXED_EXTREME_ROWS)
def test_extreme_inputs_score_finite(extreme_derivatives: tuple, index: int) -> None:
    assert bool(np.all(np.isfinite(extreme_derivatives[1][index])))


def test_forward_strictly_increasing_marginal() -> None:
    x = np.linspace(-50.0, 50.0, 20001)[:, None].astype(np.float32)
    model = flow.GaussianizationFlow(1, num_blocks=1, num_components=5, use_pca=False)
    model.initialize_from_data(np.random.default_rng(0).standard_normal((500, 1)) ** 3)
    z = np.asarray(model(x))[:, 0]
    # The single Householder reflection in 1-D flips the sign, so z decreases.
    assert bool(np.all(np.diff(z) < 0))
