"""Normal-distribution special functions that stay finite in the far tails.

Every function here works on arrays of any shape and keeps the input dtype.
Values and derivatives are finite for every finite input, which plain
compositions such as ``log(ndtr(u))`` or ``ndtri(exp(lp))`` are not: those
underflow near ``|u| = 38`` in float64 and ``|u| = 13`` in float32.

The workhorse of the log-space path is ``normal_tail_terms``: one evaluation
of the scaled complementary error function ``erfcx(a) = exp(a^2) erfc(a)`` at
``a = |u| / sqrt(2)`` gives both tails of the normal CDF and both log Mills
ratios without cancellation. The linear-space path uses
``normal_tail_and_kernel`` (the smaller tail and ``exp(-u^2 / 2)`` from one
``exp``) and ``ndtri``; those are exact only while their results are normal
floating-point numbers, which the caller checks.
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

# erfcx(a) ~ tau Q(tau) with tau = 1 / (1 + a / 2), for float32 and a >= 0.
# Q is a least-squares Chebyshev fit of erfcx(a) / tau on a in [0, 10] with
# relative weights, converted to powers of tau (highest first). Its relative
# error is 3.5e-9 in exact arithmetic. Evaluated in float32,
# exp(-a^2) tau Q(tau) / 2 is within 5e-7 + a^2 eps / 2 relative of
# erfc(a) / 2 for a <= 9, where the second term is the rounding of a^2
# (lax.erfc exceeds that bound by 20 %). Beyond a = 10 the fit extrapolates,
# but there exp(-a^2) < 1e-43 is below float32's normal range. Q stays
# between 0.28 and 1 on all of tau in [0, 1].
_ERFCX_TAU_SCALE = 0.5
_ERFCX_TAU_POLYNOMIAL = (
    0.03570683938308894,
    -0.19066193170804221,
    0.3804051491708796,
    -0.28797816489049344,
    -0.023611902251517103,
    0.03653856144540435,
    0.054352953376071794,
    0.18575657672934065,
    0.24514768712794716,
    0.2822558795756164,
    0.28208835548483446,
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


def _erfcx_float32(a: Array) -> Array:
    # erfcx(a) for float32 a >= 0 from the tau polynomial, no exp needed.
    tau = 1.0 / (1.0 + _ERFCX_TAU_SCALE * a)
    return tau * jnp.polyval(jnp.asarray(_ERFCX_TAU_POLYNOMIAL, a.dtype), tau)


@jax.custom_jvp
def normal_tail_and_kernel(a: Array) -> tuple[Array, Array]:
    """Return ``(erfc(a) / 2, exp(-a^2))`` for a >= 0.

    At ``a = |u| / sqrt(2)`` these are the smaller normal tail
    ``Phi(-|u|)`` and ``sqrt(2 pi) phi(u)``. In float32 both come from one
    ``exp`` and a polynomial, in float64 from ``lax.erfc`` and ``exp``.
    Each has full relative precision while it is a normal number, and below
    that it underflows to zero with an absolute error under the dtype's
    smallest normal number. The derivatives are the exact ones,
    ``-exp(-a^2) / sqrt(pi)`` and ``-2 a exp(-a^2)``, not those of the
    approximation.
    """
    kernel = jnp.exp(-a * a)
    if jnp.dtype(a.dtype) == jnp.dtype("float32"):
        tail = 0.5 * kernel * _erfcx_float32(a)
    else:
        tail = 0.5 * lax.erfc(a)
    return tail, kernel


@normal_tail_and_kernel.defjvp
def _normal_tail_and_kernel_jvp(
    primals: tuple[Array], tangents: tuple[Array]
) -> tuple[tuple[Array, Array], tuple[Array, Array]]:
    (a,) = primals
    (da,) = tangents
    tail, kernel = normal_tail_and_kernel(a)
    # Where the kernel underflows, a may be huge or infinite: 0 * inf would
    # give NaN, the limit is 0.
    kernel_slope = -2.0 * jnp.where(kernel > 0, a, 0.0) * kernel
    return (tail, kernel), (-kernel * (1.0 / _SQRT_PI) * da, kernel_slope * da)


@jax.custom_jvp
def ndtri(p: Array) -> Array:
    """Return ``jax.scipy.special.ndtri(p)``, differentiated exactly.

    The derivative is ``1 / phi(ndtri(p))`` rather than that of ndtri's
    rational approximation. It is finite while ``p`` is a normal number.
    """
    return jsp.ndtri(p)


@ndtri.defjvp
def _ndtri_jvp(primals: tuple[Array], tangents: tuple[Array]) -> tuple[Array, Array]:
    (p,) = primals
    (dp,) = tangents
    w = ndtri(p)
    return w, math.sqrt(2.0 * math.pi) * jnp.exp(0.5 * w * w) * dp


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


def log_mills_ratio_nonpositive(w: Array) -> Array:
    """Return log(phi(w) / Phi(w)) for w <= 0, without the log-space machinery.

    This is ``log(sqrt(2 / pi) / erfcx(-w / sqrt 2))``: in float32 from the
    same polynomial as ``normal_tail_and_kernel`` and accurate for any
    w <= 0; in float64 from ``erfcx_nonnegative``.
    """
    a = -w * _SQRT_HALF
    if jnp.dtype(w.dtype) == jnp.dtype("float32"):
        erfcx = _erfcx_float32(a)
    else:
        erfcx = erfcx_nonnegative(a)
    return _HALF_LOG_2_OVER_PI - jnp.log(erfcx)


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
