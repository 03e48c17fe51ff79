"""The linear-space fast path of the mixture layer against the log-space path.

The mixture layer evaluates F = sum_k w_k Phi(u_k) in linear space while the
smaller tail and the density are well above underflow, and falls back to the
log-space path for the other elements of a batch (see
``flow._mixture_math``). These tests pin the special functions of the fast
path to scipy, the two paths to each other, the fallback to per-element
selection, and derivatives through the fallback.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special as scipy_special

import flow
from flow import _mixture_math as mixture_math
from flow._special import (
    log_mills_ratio,
    log_mills_ratio_nonpositive,
    ndtri,
    normal_tail_and_kernel,
)

DTYPES = [pytest.param("float32", id="f32"), pytest.param("float64", id="f64")]

# Agreement of the two paths inside the linear range, absolute, on z and on
# log dz/dx. Either path's smaller tail carries a relative error of a few ulp
# plus the rounding of u^2 in exp(-u^2 / 2), about u^2 / 2 ulp: 4e-6 at the
# edge of the float32 range (|u| near 11). z moves by that error over the
# Mills ratio (at least 0.8), so two paths may differ by up to 1e-5; the
# largest differences seen on the mixtures below are 1.9e-6 on z and 1.4e-6
# on log dz/dx. float64 ulps are 2^29 times smaller (1.4e-14 seen).
PATH_AGREEMENT = {"float32": 1e-5, "float64": 1e-12}
# Gradients of sum(log N(z) + log dz/dx) over 2,000 rows, relative to
# max(1, |gradient|): 1.4e-5 and 3.9e-13 seen.
GRADIENT_AGREEMENT = {"float32": 1e-4, "float64": 4e-12}


def _mixture(features: int, seed: int, dtype: str) -> tuple[jax.Array, ...]:
    rng = np.random.default_rng(seed)
    loc = rng.normal(0.0, 2.0, (features, 10))
    log_scale = rng.uniform(-3.0, 1.0, (features, 10))
    logits = rng.normal(0.0, 1.0, (features, 10))
    return tuple(jnp.asarray(value, dtype) for value in (loc, log_scale, logits))


def _linear(x: jax.Array, *params: jax.Array) -> tuple[jax.Array, jax.Array]:
    return mixture_math._linear_forward(mixture_math._linear_sums(x, *params))


def _usable(x: jax.Array, *params: jax.Array) -> np.ndarray:
    return np.asarray(mixture_math._linear_sums(x, *params).usable)


def _inside_points(params: tuple[jax.Array, ...], seed: int, dtype: str) -> jax.Array:
    """Return 2,000 rows, `(2000, features)`, all inside the linear range and
    reaching from the modes to its edges."""
    features = params[0].shape[0]
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 3.0, (2000, features))
    x[1000:] *= 5.0 if dtype == "float32" else 15.0
    x = jnp.asarray(x, dtype)
    x = jnp.where(_usable(x, *params), x, 0.0)
    assert _usable(x, *params).all()
    return x


# Special functions of the fast path -----------------------------------------


def test_normal_tail_float32_accuracy() -> None:
    # Within 5e-7 relative plus the rounding of a^2 in exp(-a^2), a^2 / 2 ulp.
    a = np.linspace(0.0, 9.0, 900001).astype(np.float32)
    tail, kernel = jax.jit(normal_tail_and_kernel)(jnp.asarray(a))
    a64 = a.astype(np.float64)
    bound = 5e-7 + a64**2 * float(np.finfo(np.float32).eps) / 2.0
    tail_error = np.abs(
        np.asarray(tail, np.float64) / (scipy_special.erfc(a64) / 2.0) - 1.0
    )
    kernel_error = np.abs(np.asarray(kernel, np.float64) / np.exp(-(a64**2)) - 1.0)
    assert np.all(tail_error <= bound)
    assert np.all(kernel_error <= bound)


def test_normal_tail_float64_accuracy() -> None:
    # Up to a = 26, where erfc(a) = 5.7e-296 is still a normal number.
    a = np.linspace(0.0, 26.0, 200001)
    tail, _ = jax.jit(normal_tail_and_kernel)(jnp.asarray(a))
    exact = scipy_special.erfc(a) / 2.0
    assert np.max(np.abs(np.asarray(tail) / exact - 1.0)) <= 2e-13


def test_normal_tail_underflows_to_zero() -> None:
    # exp(-121) is below even float32's smallest subnormal number.
    a = jnp.asarray([11.0, 1e3, 1e30, np.inf], jnp.float32)
    tail, kernel = normal_tail_and_kernel(a)
    assert np.array_equal(np.asarray(tail), np.zeros(4))
    assert np.array_equal(np.asarray(kernel), np.zeros(4))


@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_tail_exact_derivatives(dtype: str) -> None:
    a = jnp.asarray([0.0, 0.3, 1.7, 4.0, 8.5], dtype)
    tail_slope = jax.vmap(jax.grad(lambda v: normal_tail_and_kernel(v)[0]))(a)
    kernel_slope = jax.vmap(jax.grad(lambda v: normal_tail_and_kernel(v)[1]))(a)
    a64 = np.asarray(a, np.float64)
    expected_tail = -np.exp(-(a64**2)) / math.sqrt(math.pi)
    expected_kernel = -2.0 * a64 * np.exp(-(a64**2))
    # exp(-a^2) carries the rounding of a^2: 72 / 2 ulp at a = 8.5 in float32.
    rtol = 1e-5 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(np.asarray(tail_slope), expected_tail, rtol=rtol)
    np.testing.assert_allclose(np.asarray(kernel_slope), expected_kernel, rtol=rtol)


def test_normal_tail_derivative_finite_at_infinity() -> None:
    slopes = jax.jacfwd(normal_tail_and_kernel)(jnp.asarray(np.inf, jnp.float32))
    assert np.array_equal(np.asarray(slopes), np.zeros(2))


@pytest.mark.parametrize("dtype", DTYPES)
def test_ndtri_derivative_is_inverse_density(dtype: str) -> None:
    # p from 1e-30 to 1/2: the derivative is 1 / phi(ndtri(p)) exactly.
    p = jnp.asarray(np.logspace(-30.0, math.log10(0.5), 61), dtype)
    slope = jax.vmap(jax.grad(ndtri))(p)
    w = np.asarray(ndtri(p), np.float64)
    expected = math.sqrt(2.0 * math.pi) * np.exp(0.5 * w * w)
    # exp(w^2 / 2) carries the rounding of w^2 / 2, 64 / 2 ulp at p = 1e-30.
    rtol = 1e-5 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(np.asarray(slope), expected, rtol=rtol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_mills_ratio_nonpositive_matches_log_space(dtype: str) -> None:
    w = jnp.asarray(
        -np.linspace(0.0, 36.0 if dtype == "float64" else 12.0, 4001), dtype
    )
    fast = np.asarray(log_mills_ratio_nonpositive(w), np.float64)
    reference = np.asarray(log_mills_ratio(w), np.float64)
    tolerance = 2e-6 if dtype == "float32" else 1e-13
    assert np.max(np.abs(fast - reference)) <= tolerance


# Linear range -----------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_range_boundary(dtype: str) -> None:
    # One standard-normal component: the smaller tail is Phi(-|x|), so the
    # linear range ends where Phi(-|x|) falls below the tail floor.
    params = tuple(jnp.zeros((1, 1), dtype) for _ in range(3))
    info = np.finfo(dtype)
    floor = mixture_math._UNDERFLOW_MARGIN * float(info.tiny) / float(info.eps)
    edge = -float(scipy_special.ndtri(floor))
    x = jnp.asarray(
        [[edge * 0.999], [-edge * 0.999], [edge * 1.001], [-edge * 1.001]], dtype
    )
    assert _usable(x, *params)[:, 0].tolist() == [True, True, False, False]


@pytest.mark.parametrize("dtype", DTYPES)
def test_paths_agree_inside_linear_range(dtype: str) -> None:
    for seed in range(5):
        params = _mixture(3, seed, dtype)
        x = _inside_points(params, seed, dtype)
        fast_z, fast_log_dzdx = jax.jit(_linear)(x, *params)
        log_z, log_log_dzdx = jax.jit(mixture_math._log_space_forward)(x, *params)
        assert float(jnp.max(jnp.abs(fast_z - log_z))) <= PATH_AGREEMENT[dtype]
        assert (
            float(jnp.max(jnp.abs(fast_log_dzdx - log_log_dzdx)))
            <= PATH_AGREEMENT[dtype]
        )


def _log_density_gradient(forward):  # type: ignore[no-untyped-def]
    def objective(x: jax.Array, *params: jax.Array) -> jax.Array:
        z, log_dzdx = forward(x, *params)
        return jnp.sum(-0.5 * z * z + log_dzdx)

    return jax.jit(jax.grad(objective, argnums=(0, 1, 2, 3)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_paths_gradients_agree(dtype: str) -> None:
    fast = _log_density_gradient(_linear)
    log_space = _log_density_gradient(mixture_math._log_space_forward)
    for seed in range(3):
        params = _mixture(3, seed, dtype)
        x = _inside_points(params, seed, dtype)
        names = ("x", "loc", "log_scale", "logits")
        for name, a, b in zip(
            names, fast(x, *params), log_space(x, *params), strict=True
        ):
            a = np.asarray(a, np.float64)
            b = np.asarray(b, np.float64)
            error = np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b)))
            assert error <= GRADIENT_AGREEMENT[dtype], name


# Fallback ---------------------------------------------------------------------

# Rows 3 and 8 have an element outside the linear range of the mixture of
# seed 0, and in float32 row 7 has two.
MIXED_ROWS = np.array(
    [
        [0.1, -0.4],
        [1.2, 0.3],
        [-0.8, 2.0],
        [1e6, 0.2],
        [0.5, 0.5],
        [-2.0, -1.0],
        [0.0, 1.5],
        [-40.0, 60.0],
        [3.0, -1e4],
        [0.7, -0.2],
    ]
)


def _mixed_batch(dtype: str, extreme_rows: int = 0) -> jax.Array:
    """Return MIXED_ROWS followed by extreme_rows more rows far outside."""
    extra = np.tile([[-1e3, 25.0]], (extreme_rows, 1))
    return jnp.asarray(np.concatenate([MIXED_ROWS, extra]), dtype)


@pytest.mark.parametrize("extreme_rows", [0, 30], ids=["few-outside", "many-chunks"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_fallback_rows_match_rows_alone(dtype: str, extreme_rows: int) -> None:
    params = _mixture(2, 0, dtype)
    x = _mixed_batch(dtype, extreme_rows)
    usable = _usable(x, *params)
    assert not usable.all()
    assert usable[:3].all()

    forward = jax.jit(mixture_math.mixture_forward)
    z, log_dzdx = forward(x, *params)
    inverse = jax.jit(mixture_math.mixture_inverse, static_argnums=4)
    x_back = inverse(z, *params, 12)
    for row in range(x.shape[0]):
        alone_z, alone_log_dzdx = forward(x[row : row + 1], *params)
        # The mixture layer is elementwise, and its compiled programs give a
        # row the same bits alone and inside a batch.
        assert np.array_equal(np.asarray(alone_z), np.asarray(z[row : row + 1]))
        assert np.array_equal(
            np.asarray(alone_log_dzdx), np.asarray(log_dzdx[row : row + 1])
        )
        alone_back = inverse(z[row : row + 1], *params, 12)
        assert np.array_equal(np.asarray(alone_back), np.asarray(x_back[row : row + 1]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_fallback_takes_log_space_values(dtype: str) -> None:
    params = _mixture(2, 0, dtype)
    x = _mixed_batch(dtype, extreme_rows=30)
    usable = _usable(x, *params)
    z, log_dzdx = jax.jit(mixture_math.mixture_forward)(x, *params)
    fast_z, fast_log_dzdx = jax.jit(_linear)(x, *params)
    log_z, log_log_dzdx = jax.jit(mixture_math._log_space_forward)(x, *params)
    assert np.array_equal(np.asarray(z)[usable], np.asarray(fast_z)[usable])
    assert np.array_equal(np.asarray(z)[~usable], np.asarray(log_z)[~usable])
    assert np.array_equal(
        np.asarray(log_dzdx)[usable], np.asarray(fast_log_dzdx)[usable]
    )
    assert np.array_equal(
        np.asarray(log_dzdx)[~usable], np.asarray(log_log_dzdx)[~usable]
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_fallback_inverse_round_trip(dtype: str) -> None:
    params = _mixture(2, 0, dtype)
    x = _mixed_batch(dtype, extreme_rows=30)
    z, _ = jax.jit(mixture_math.mixture_forward)(x, *params)
    x_back = jax.jit(mixture_math.mixture_inverse, static_argnums=4)(z, *params, 12)
    error = np.abs(np.asarray(x_back) - np.asarray(x)) / np.maximum(1.0, np.abs(x))
    assert error.max() <= (1e-4 if dtype == "float32" else 1e-10)


def _reference_log_density(x: jax.Array, *params: jax.Array) -> jax.Array:
    # The fallback written as a plain per-element select of the two paths.
    usable = mixture_math._linear_sums(x, *params).usable
    fast_z, fast_log_dzdx = _linear(x, *params)
    log_z, log_log_dzdx = mixture_math._log_space_forward(x, *params)
    z = jnp.where(usable, fast_z, log_z)
    log_dzdx = jnp.where(usable, fast_log_dzdx, log_log_dzdx)
    return jnp.sum(-0.5 * z * z + log_dzdx)


def _log_density(x: jax.Array, *params: jax.Array) -> jax.Array:
    z, log_dzdx = mixture_math.mixture_forward(x, *params)
    return jnp.sum(-0.5 * z * z + log_dzdx)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fallback_grad_matches_select(dtype: str) -> None:
    params = _mixture(2, 0, dtype)
    x = _mixed_batch(dtype, extreme_rows=30)
    argnums = (0, 1, 2, 3)
    actual = jax.jit(jax.grad(_log_density, argnums=argnums))(x, *params)
    expected = jax.jit(jax.grad(_reference_log_density, argnums=argnums))(x, *params)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    for a, b in zip(actual, expected, strict=True):
        assert bool(jnp.all(jnp.isfinite(a)))
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fallback_derivative_modes_agree(dtype: str) -> None:
    params = _mixture(2, 0, dtype)
    x = _mixed_batch(dtype)

    def z_of(v: jax.Array) -> jax.Array:
        return mixture_math.mixture_forward(v, *params)[0]

    # The layer is elementwise, so dz/dx is the diagonal of every Jacobian.
    batch_jacobian = jax.jit(jax.jacfwd(z_of))(x)
    diagonal = jnp.einsum("ijij->ij", batch_jacobian)
    _, pullback = jax.vjp(z_of, x)
    (vjp_slope,) = jax.jit(pullback)(jnp.ones_like(x))
    row_jacobians = jax.jit(jax.vmap(jax.jacfwd(lambda r: z_of(r[None, :])[0])))(x)
    row_diagonal = jnp.einsum("ijj->ij", row_jacobians)
    grad_slope = jax.jit(jax.grad(lambda v: jnp.sum(z_of(v))))(x)

    assert bool(jnp.all(jnp.isfinite(diagonal)))
    assert bool(jnp.all(diagonal > 0))
    rtol = 1e-5 if dtype == "float32" else 1e-12
    for other in (vjp_slope, row_diagonal, grad_slope):
        assert bool(jnp.all(jnp.isfinite(other)))
        np.testing.assert_allclose(np.asarray(other), np.asarray(diagonal), rtol=rtol)


# Whole flow -------------------------------------------------------------------

# A row alone and inside a batch compile to different XLA kernels, whose
# Householder matmuls round differently: rows differ by up to 1e-5 between
# the two, with or without the fallback.
FLOW_ROW_TOLERANCE = 1e-4


def test_flow_mixed_batch_rows_match_rows_alone() -> None:
    rng = np.random.default_rng(0)
    data = rng.standard_normal((512, 2)) * np.array([1.0, 0.3])
    model = flow.GaussianizationFlow(2, num_blocks=3, num_components=6)
    model.initialize_from_data(data.astype(np.float32), seed=0)
    batch = np.concatenate([data[:20], [[1e6, 0.0], [30.0, -30.0]], data[20:30]])
    batch = batch.astype(np.float32)
    z, log_det = (np.asarray(v) for v in model.forward_and_log_det(batch))
    log_prob = np.asarray(model.log_prob(batch))
    assert np.isfinite(z).all()
    assert np.isfinite(log_prob).all()
    for row in range(batch.shape[0]):
        alone_z, alone_log_det = model.forward_and_log_det(batch[row : row + 1])
        alone_log_prob = model.log_prob(batch[row : row + 1])
        for alone, together in (
            (alone_z, z[row]),
            (alone_log_det, log_det[row]),
            (alone_log_prob, log_prob[row]),
        ):
            alone = np.asarray(alone)[0]
            error = np.abs(alone - together) / np.maximum(1.0, np.abs(together))
            assert np.max(error) <= FLOW_ROW_TOLERANCE


@pytest.mark.slow
def test_moons_held_out_stays_linear(trained_moons: tuple, moons: tuple) -> None:
    # Held-out data never needs the log-space path, in any block.
    model, _ = trained_moons
    _, held_out = moons
    params = model.params()
    h = jnp.asarray(held_out)
    for layer in model.bijectors:
        if isinstance(layer, flow.MixtureCDFGaussianization):
            assert _usable(h, *layer._unpack(params)).all(), layer.name
        h, _ = layer._forward(params, h)
