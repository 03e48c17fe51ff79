"""One contract for every bijector and for the whole flow.

Each case checks output shapes, the inverse round trip, the log-determinant
against ``jax.jacfwd``, inverse and forward log-dets cancelling, finite
gradients, jit against eager evaluation, and a config round trip.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flow
from flow import (
    Bijector,
    FixedOrtho,
    Householder,
    MixtureCDFGaussianization,
    Standardize,
)

# Round-trip and log-det tolerances. float32 carries about 7 digits, and the
# mixture inverse is conditioned by 1 / (dz/dx), so 1e-4 leaves room for
# data where the density is low; float64 round-off is 1e-16 per step.
ROUND_TRIP_TOLERANCE = {"float32": 1e-4, "float64": 1e-10}
LOG_DET_TOLERANCE = {"float32": 1e-4, "float64": 1e-10}
JIT_TOLERANCE = {"float32": 1e-5, "float64": 1e-12}

BijectorFactory = Callable[[int, str], Bijector]


def _data(dim: int, dtype: str, rows: int = 64) -> np.ndarray:
    rng = np.random.default_rng(dim)
    x = rng.standard_normal((rows, dim)) * 1.5
    x[:, 0] += np.sin(3.0 * x[:, -1])
    x[0] = 4.0
    x[1] = -5.0
    return x.astype(dtype)


def _build(factory: BijectorFactory, dim: int, dtype: str) -> Bijector:
    layer = factory(dim, dtype)
    layer.build((None, dim))
    layer.initialize_from_data(jnp.asarray(_data(dim, dtype, rows=512)), seed=3)
    return layer


FACTORIES = [
    pytest.param(lambda d, t: Householder(dtype=t), id="householder"),
    pytest.param(
        lambda d, t: Householder(num_reflectors=3, dtype=t), id="householder-3"
    ),
    pytest.param(lambda d, t: FixedOrtho(fit_pca=True, dtype=t), id="pca"),
    pytest.param(lambda d, t: Standardize(dtype=t), id="standardize"),
    pytest.param(lambda d, t: MixtureCDFGaussianization(5, dtype=t), id="mixture"),
]
DIMS = [pytest.param(1, id="d1"), pytest.param(3, id="d3")]

DTYPES = [pytest.param("float32", id="f32"), pytest.param("float64", id="f64")]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("factory", FACTORIES)
def test_bijector_contract(factory: BijectorFactory, dim: int, dtype: str) -> None:
    layer = _build(factory, dim, dtype)
    x = jnp.asarray(_data(dim, dtype))
    params = layer.params()
    forward = jax.jit(layer._forward)
    inverse = jax.jit(layer._inverse)

    z, log_det = forward(params, x)
    assert z.shape == (64, dim)
    assert log_det.shape == (64,)
    assert z.dtype == jnp.dtype(dtype)
    assert log_det.dtype == jnp.dtype(dtype)

    x_back, inverse_log_det = inverse(params, z)
    error = float(jnp.max(jnp.abs(x_back - x) / jnp.maximum(1.0, jnp.abs(x))))
    assert error <= ROUND_TRIP_TOLERANCE[dtype]
    cancelled = float(jnp.max(jnp.abs(log_det + inverse_log_det)))
    assert cancelled <= LOG_DET_TOLERANCE[dtype]

    def row_forward(row: jax.Array) -> jax.Array:
        return layer._forward(params, row[None, :])[0][0]

    jacobians = jax.jit(jax.vmap(jax.jacfwd(row_forward)))(x)
    _, expected = np.linalg.slogdet(np.asarray(jacobians, dtype=np.float64))
    assert np.max(np.abs(np.asarray(log_det) - expected)) <= LOG_DET_TOLERANCE[dtype]

    eager_z, eager_log_det = layer.forward_and_log_det(x)
    assert float(jnp.max(jnp.abs(eager_z - z))) <= JIT_TOLERANCE[dtype]
    assert float(jnp.max(jnp.abs(eager_log_det - log_det))) <= JIT_TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("factory", FACTORIES)
def test_bijector_gradients_finite(factory: BijectorFactory, dtype: str) -> None:
    layer = _build(factory, 3, dtype)
    x = jnp.asarray(_data(3, dtype))

    def objective(p: dict, value: jax.Array) -> jax.Array:
        z, log_det = layer._forward(p, value)
        return jnp.sum(z**2) - jnp.sum(log_det)

    grad_params, grad_x = jax.jit(jax.grad(objective, argnums=(0, 1)))(
        layer.params(), x
    )
    assert bool(jnp.all(jnp.isfinite(grad_x)))
    for value in grad_params.values():
        assert bool(jnp.all(jnp.isfinite(value)))


@pytest.mark.parametrize("factory", FACTORIES)
def test_bijector_config_round_trip(factory: BijectorFactory) -> None:
    layer = _build(factory, 3, "float32")
    clone = type(layer).from_config(layer.get_config())
    clone.build((None, 3))
    clone.set_weights(layer.get_weights())
    x = jnp.asarray(_data(3, "float32"))
    expected, _ = layer.forward_and_log_det(x)
    actual, _ = clone.forward_and_log_det(x)
    assert np.array_equal(np.asarray(actual), np.asarray(expected))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", DIMS)
def test_flow_contract(dim: int, dtype: str, tmp_path: object) -> None:
    x = _data(dim, dtype, rows=512)
    model = flow.GaussianizationFlow(dim, num_blocks=2, num_components=4, dtype=dtype)
    model.initialize_from_data(x, seed=0)
    z, log_det = model.forward_and_log_det(x)
    assert z.shape == (512, dim)
    assert log_det.shape == (512,)

    x_back = np.asarray(model.invert(z))
    scale = np.maximum(1.0, np.abs(x))
    assert np.max(np.abs(x_back - x) / scale) <= ROUND_TRIP_TOLERANCE[dtype]

    params = model.params()

    def row_forward(row: jax.Array) -> jax.Array:
        return model.forward_pure(params, row[None, :])[0][0]

    jacobians = jax.jit(jax.vmap(jax.jacfwd(row_forward)))(x[:32])
    jacobians = np.asarray(jacobians, dtype=np.float64)
    _, expected = np.linalg.slogdet(jacobians)
    assert (
        np.max(np.abs(np.asarray(log_det[:32]) - expected)) <= LOG_DET_TOLERANCE[dtype]
    )

    jit_z = jax.jit(lambda value: model.forward_pure(params, value)[0])(x)
    eager_z = model.forward_pure(params, jnp.asarray(x))[0]
    assert float(jnp.max(jnp.abs(jit_z - eager_z))) <= JIT_TOLERANCE[dtype]
