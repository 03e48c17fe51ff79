"""Normal-distribution special functions that stay finite in the far tails.

Every function here works on arrays of any shape and keeps the input dtype.
Values and derivatives are finite for every finite input, which plain
compositions such as ``log(ndtr(u))`` or ``ndtri(exp(lp))`` are not: those
underflow near ``|u| = 38`` in float64 and ``|u| = 13`` in float32.

The workhorse is ``normal_tail_terms``: one evaluation of the scaled
complementary error function ``erfcx(a) = exp(a^2) erfc(a)`` at
``a = |u| / sqrt(2)`` gives both tails of the normal CDF and both log Mills
ratios without cancellation.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy import special as jsp

Array = jax.Array

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2PI = math.log(2.0 * math.pi)
_HALF_LOG_2_OVER_PI = 0.5 * math.log(2.0 / math.pi)
_SQRT_HALF = math.sqrt(0.5)
_SQRT_PI = math.sqrt(math.pi)

# erfcx(a) is computed as exp(a^2) erfc(a) below these points and by its
# asymptotic series above. At a = 5 the first omitted series term (the 10th)
# is 1.8e-8 relative, below float32 round-off; float64 switches at a = 26,
# where erfc(a) = 5.7e-296 is still a normal number and exp(a^2) is finite.
_ERFCX_SERIES_START = {jnp.dtype("float32"): 5.0, jnp.dtype("float64"): 26.0}

# Coefficients c_k = (-1)^k (2k - 1)!! / 2^k of
# erfcx(a) ~ (1 / (a sqrt(pi))) sum_k c_k a^(-2k), highest degree first.
_ERFCX_SERIES = (
    2027025.0 / 256.0,
    -135135.0 / 128.0,
    10395.0 / 64.0,
    -945.0 / 32.0,
    105.0 / 16.0,
    -15.0 / 8.0,
    3.0 / 4.0,
    -1.0 / 2.0,
    1.0,
)
_ERFCX_SERIES_DERIVATIVE = tuple(
    coefficient * power
    for coefficient, power in zip(
        _ERFCX_SERIES[:-1], range(len(_ERFCX_SERIES) - 1, 0, -1), strict=True
    )
)

# ndtri(exp(lp)) starts the normal quantile while exp(lp) is a normal
# floating-point number; below, exp underflows and an asymptotic start is used.
_NDTRI_DIRECT_MIN_LOG_P = {jnp.dtype("float32"): -80.0, jnp.dtype("float64"): -700.0}

# Newton steps that polish the normal quantile in log space. The start is
# already within a few ulp (direct) or 1e-3 relative (asymptotic), and each
# step squares the relative error.
_NDTRI_NEWTON_STEPS = 2


def _const(value: float, like: Array) -> Array:
    return jnp.asarray(value, like.dtype)


def erfcx_nonnegative(a: Array) -> Array:
    """Return erfcx(a) = exp(a^2) erfc(a) for a >= 0, finite for every finite a."""
    start = _const(_ERFCX_SERIES_START.get(jnp.dtype(a.dtype), 26.0), a)
    in_series = a >= start
    # Each branch gets a clamped input, so neither overflows where unused.
    a_direct = jnp.where(in_series, start, a)
    direct = jnp.exp(a_direct * a_direct) * lax.erfc(a_direct)
    a_series = jnp.where(in_series, a, start)
    t = 1.0 / (a_series * a_series)
    series = jnp.polyval(jnp.asarray(_ERFCX_SERIES, a.dtype), t) / (a_series * _SQRT_PI)
    return jnp.where(in_series, series, direct)


def _dlog_erfcx_nonnegative(a: Array, e: Array) -> Array:
    """Return d log(erfcx(a)) / da for a >= 0, given e = erfcx(a).

    The textbook form 2a - 2 / (sqrt(pi) e) cancels as a grows; in the series
    range the derivative of the series' log is used instead.
    """
    start = _const(_ERFCX_SERIES_START.get(jnp.dtype(a.dtype), 26.0), a)
    in_series = a >= start
    a_direct = jnp.where(in_series, start, a)
    e_direct = jnp.where(in_series, erfcx_nonnegative(start), e)
    direct = 2.0 * a_direct - 2.0 / (_SQRT_PI * e_direct)
    a_series = jnp.where(in_series, a, start)
    t = 1.0 / (a_series * a_series)
    coefficients = jnp.asarray(_ERFCX_SERIES, a.dtype)
    derivative = jnp.asarray(_ERFCX_SERIES_DERIVATIVE, a.dtype)
    # log e = log P(t) - log a - log sqrt(pi) with t = a^-2, dt/da = -2t/a.
    series = (
        -(2.0 * t * jnp.polyval(derivative, t) / jnp.polyval(coefficients, t) + 1.0)
        / a_series
    )
    return jnp.where(in_series, series, direct)


def _tail_terms_primal(u: Array) -> tuple[Array, Array, Array, Array]:
    e = erfcx_nonnegative(jnp.abs(u) * _SQRT_HALF)
    log_e = jnp.log(e)
    # Smaller tail Phi(-|u|) = erfc(|u| / sqrt 2) / 2 = erfcx(a) exp(-u^2/2) / 2.
    log_small = log_e - math.log(2.0) - 0.5 * u * u
    log_large = jnp.log1p(-jnp.exp(log_small))
    # log(phi(v) / Phi(v)) on the small side cancels the Gaussian factor
    # exactly: log(sqrt(2 / pi)) - log(erfcx(a)).
    mills_small = _HALF_LOG_2_OVER_PI - log_e
    mills_large = -0.5 * u * u - _HALF_LOG_2PI - log_large
    negative = u < 0
    log_cdf = jnp.where(negative, log_small, log_large)
    log_sf = jnp.where(negative, log_large, log_small)
    mills_cdf = jnp.where(negative, mills_small, mills_large)
    mills_sf = jnp.where(negative, mills_large, mills_small)
    return log_cdf, log_sf, mills_cdf, mills_sf


@jax.custom_jvp
def normal_tail_terms(u: Array) -> tuple[Array, Array, Array, Array]:
    """Return log Phi(u), log Phi(-u) and the log Mills ratios at u and -u.

    The log Mills ratio is ``m(v) = log(phi(v) / Phi(v))``, the log of the
    derivative of ``log Phi``; it grows like ``log(-v)`` as ``v -> -inf``.

    Returns:
        ``(log_cdf, log_sf, mills_cdf, mills_sf)`` with ``mills_cdf = m(u)``
        and ``mills_sf = m(-u)``, each of u's shape and dtype.
    """
    return _tail_terms_primal(u)


@normal_tail_terms.defjvp
def _normal_tail_terms_jvp(
    primals: tuple[Array], tangents: tuple[Array]
) -> tuple[tuple[Array, ...], tuple[Array, ...]]:
    (u,) = primals
    (du,) = tangents
    log_cdf, log_sf, mills_cdf, mills_sf = normal_tail_terms(u)
    slope_cdf = jnp.exp(mills_cdf)
    slope_sf = jnp.exp(mills_sf)
    # d log Phi(u) = exp(m(u)) and d m(v)/dv = -v - exp(m(v)). On the small
    # side that difference cancels for large |v|, so there m is differentiated
    # through m = log(sqrt(2/pi)) - log erfcx(|u| / sqrt 2) instead.
    a = jnp.abs(u) * _SQRT_HALF
    dsmall_du = (
        -_dlog_erfcx_nonnegative(a, erfcx_nonnegative(a)) * jnp.sign(u) * _SQRT_HALF
    )
    negative = u < 0
    dmills_cdf = jnp.where(negative, dsmall_du, -u - slope_cdf)
    dmills_sf = jnp.where(negative, slope_sf - u, dsmall_du)
    outputs = (log_cdf, log_sf, mills_cdf, mills_sf)
    derivatives = (slope_cdf * du, -slope_sf * du, dmills_cdf * du, dmills_sf * du)
    return outputs, derivatives


def log_ndtr(u: Array) -> Array:
    """Return log Phi(u), the log of the standard normal CDF."""
    return normal_tail_terms(u)[0]


def log_mills_ratio(u: Array) -> Array:
    """Return log(phi(u) / Phi(u)), the log inverse Mills ratio."""
    return normal_tail_terms(u)[2]


def _ndtri_start(lp: Array) -> Array:
    min_direct = _const(_NDTRI_DIRECT_MIN_LOG_P.get(jnp.dtype(lp.dtype), -700.0), lp)
    is_direct = lp > min_direct
    direct = jsp.ndtri(jnp.exp(jnp.where(is_direct, lp, min_direct)))
    # From log Phi(w) ~ -w^2/2 - log(-w) - log(2 pi)/2 with t = -2 lp:
    # w^2 ~ t - log(t) - log(2 pi).
    t = -2.0 * jnp.where(is_direct, min_direct, lp)
    asymptotic = -jnp.sqrt(t - jnp.log(t) - _LOG_2PI)
    return jnp.where(is_direct, direct, asymptotic)


def _ndtri_of_log_primal(lp: Array) -> Array:
    w = _ndtri_start(lp)
    for _ in range(_NDTRI_NEWTON_STEPS):
        # Newton on g(w) = log Phi(w) - lp, whose slope is exp(m(w)). g is
        # concave and increasing, so from any start the iterates approach the
        # root from the left and never overshoot past it.
        log_cdf, _, mills, _ = _tail_terms_primal(w)
        w = w - (log_cdf - lp) * jnp.exp(-mills)
    return jnp.minimum(w, 0.0)


@jax.custom_jvp
def ndtri_of_log(lp: Array) -> Array:
    """Return w <= 0 with log Phi(w) = lp, the normal quantile of a log-probability.

    Args:
        lp: log-probabilities, at most log(1/2); larger values are clamped to
            log(1/2). Any finite value down to the dtype's lowest is accepted.
    """
    return _ndtri_of_log_primal(jnp.minimum(lp, _const(-math.log(2.0), lp)))


@ndtri_of_log.defjvp
def _ndtri_of_log_jvp(
    primals: tuple[Array], tangents: tuple[Array]
) -> tuple[Array, Array]:
    (lp,) = primals
    (dlp,) = tangents
    w = ndtri_of_log(lp)
    # dw/dlp = 1 / (d log Phi / dw) = exp(-m(w)).
    return w, jnp.exp(-log_mills_ratio(w)) * dlp
