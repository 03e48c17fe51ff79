"""Pure JAX kernels of the mixture-CDF Gaussianization bijector.

Per feature, with a K-component Gaussian mixture of weights ``w_k``, locations
``loc_k`` and scales ``s_k = exp(log_scale_k)``:

.. math::

    F(x) = \\sum_k w_k \\Phi((x - loc_k) / s_k), \\qquad z = \\Phi^{-1}(F(x)).

Everything is computed from the smaller tail in log space: ``log F`` on the
left, ``log S = log(1 - F)`` on the right, each as a ``logsumexp`` of
``log_ndtr`` terms, so ``z`` is finite and strictly increasing for every
finite ``x`` and no clipping of ``F`` is needed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.nn import log_softmax
from jax.scipy.special import logsumexp

from flow._special import log_mills_ratio, log_ndtr, ndtri_of_log, normal_tail_terms

Array = jax.Array


class _TailTerms:
    """Per-component quantities of the smaller tail at ``x``.

    Attributes:
        left: ``(batch, features)`` True where F(x) <= 1/2.
        log_tail: ``(batch, features)`` log of the smaller tail, min(F, 1 - F).
        log_slope: ``(batch, features)`` log of f(x) / tail(x), the slope of
            ``log_tail`` in absolute value.
    """

    def __init__(self, left: Array, log_tail: Array, log_slope: Array) -> None:
        self.left = left
        self.log_tail = log_tail
        self.log_slope = log_slope


def _tail_terms(x: Array, loc: Array, log_scale: Array, logits: Array) -> _TailTerms:
    # x: (batch, features); loc, log_scale, logits: (features, K).
    u = (x[..., None] - loc) * jnp.exp(-log_scale)
    log_w = log_softmax(logits, axis=-1)
    log_cdf_k, log_sf_k, mills_cdf_k, mills_sf_k = normal_tail_terms(u)
    log_cdf_k = log_w + log_cdf_k
    log_sf_k = log_w + log_sf_k
    log_cdf = logsumexp(log_cdf_k, axis=-1)
    log_sf = logsumexp(log_sf_k, axis=-1)

    left = log_cdf <= log_sf
    side = left[..., None]
    # f / tail = sum_k resp_k * phi(v_k) / (s_k Phi(v_k)) with v_k = u_k on the
    # left (-u_k on the right) and the tail responsibilities
    # resp_k = w_k Phi(v_k) / tail. Both factors are formed in log space, so no
    # underflowed phi or Phi is ever divided.
    log_resp = log_softmax(jnp.where(side, log_cdf_k, log_sf_k), axis=-1)
    mills = jnp.where(side, mills_cdf_k, mills_sf_k)
    log_slope = logsumexp(log_resp + mills - log_scale, axis=-1)
    log_tail = jnp.where(left, log_cdf, log_sf)
    return _TailTerms(left, log_tail, log_slope)


def mixture_forward(
    x: Array, loc: Array, log_scale: Array, logits: Array
) -> tuple[Array, Array]:
    """Map x through z = Phi^-1(F(x)) per feature.

    Args:
        x: `(batch, features)`.
        loc, log_scale, logits: `(features, K)` mixture parameters.

    Returns:
        z: `(batch, features)` and the per-element log dz/dx, also
        `(batch, features)`.
    """
    terms = _tail_terms(x, loc, log_scale, logits)
    w = ndtri_of_log(terms.log_tail)
    z = jnp.where(terms.left, w, -w)
    # dz/dx = f(x) / phi(z) = (f / tail) / (phi(w) / Phi(w)).
    log_dzdx = terms.log_slope - log_mills_ratio(w)
    return z, log_dzdx


# Standard-normal offsets at which every component contributes a grid point
# for the inverse's bracket table: 13 points from -6 to 6 per component
# resolve every mode of the mixture on the component's own scale.
_GRID_OFFSETS = tuple(float(t) for t in range(-6, 7))


def _mixture_bracket(z: Array, loc: Array, log_scale: Array) -> tuple[Array, Array]:
    # F(x) is a weighted mean of Phi((x - loc_k) / s_k), so at x = loc_k + s_k z
    # the k-th term equals Phi(z). At the smallest such point every term is
    # <= Phi(z), at the largest every term is >= Phi(z): the root lies between.
    candidates = loc + jnp.exp(log_scale) * z[..., None]
    return jnp.min(candidates, axis=-1), jnp.max(candidates, axis=-1)


def _grid_bracket(
    z: Array, loc: Array, log_scale: Array, logits: Array
) -> tuple[Array, Array, Array]:
    """Return a tight bracket and an interpolated start for the inverse.

    The forward map is evaluated on a per-feature grid of points
    ``loc_k + s_k t``; because it is increasing, the two grid points whose
    images enclose ``z`` enclose the root. Outside the grid the mixture
    bracket closes the interval.
    """
    offsets = jnp.asarray(_GRID_OFFSETS, z.dtype)
    grid_x = loc[..., None] + jnp.exp(log_scale)[..., None] * offsets
    grid_x = jnp.sort(grid_x.reshape(loc.shape[0], -1), axis=-1)  # (features, G)
    grid_z, _ = mixture_forward(grid_x.T, loc, log_scale, logits)
    grid_z = grid_z.T
    num_grid = grid_x.shape[-1]

    index = jax.vmap(jnp.searchsorted)(grid_z, z.T).T  # (batch, features)
    below = jnp.clip(index - 1, 0, num_grid - 1)
    above = jnp.clip(index, 0, num_grid - 1)
    x_below = jnp.take_along_axis(grid_x.T, below, axis=0)
    x_above = jnp.take_along_axis(grid_x.T, above, axis=0)
    z_below = jnp.take_along_axis(grid_z.T, below, axis=0)
    z_above = jnp.take_along_axis(grid_z.T, above, axis=0)

    lower, upper = _mixture_bracket(z, loc, log_scale)
    lo = jnp.where(index > 0, x_below, jnp.minimum(lower, x_above))
    hi = jnp.where(index < num_grid, x_above, jnp.maximum(upper, x_below))

    # Inside the grid, interpolate linearly in z. Beyond it the widest
    # component dominates the tail and its candidate loc_k + s_k z is the
    # outer end of the mixture bracket, which is where the root is close.
    gap = z_above - z_below
    fraction = (z - z_below) / jnp.where(gap > 0, gap, 1.0)
    fraction = jnp.where(gap > 0, jnp.clip(fraction, 0.0, 1.0), 0.5)
    fraction = jnp.where(index == 0, 0.0, jnp.where(index == num_grid, 1.0, fraction))
    start = lo + fraction * (hi - lo)
    return lo, hi, start


def mixture_inverse(
    z: Array,
    loc: Array,
    log_scale: Array,
    logits: Array,
    num_iterations: int,
) -> Array:
    """Solve Phi^-1(F(x)) = z for x per feature.

    Newton steps on the smaller tail's log-probability, safeguarded by
    bisection on a bracket built from the mixture's own locations and scales,
    run for a fixed number of iterations so the solver jits.

    Args:
        z: `(batch, features)`.
        loc, log_scale, logits: `(features, K)` mixture parameters.
        num_iterations: Newton-or-bisection steps per element.

    Returns:
        x: `(batch, features)`.
    """
    left = z <= 0
    w = jnp.where(left, z, -z)
    target = log_ndtr(w)
    lower, upper, x0 = _grid_bracket(z, loc, log_scale, logits)

    def step(_: int, state: tuple[Array, Array, Array]) -> tuple[Array, Array, Array]:
        x, lo, hi = state
        terms = _tail_terms(x, loc, log_scale, logits)
        # g(x) = log F(x) - log Phi(z) is increasing; on the right tail the
        # same root solves log S(x) - log Phi(-z) = 0, which is decreasing.
        same_side = terms.left == left
        g = jnp.where(left, terms.log_tail - target, target - terms.log_tail)
        # Where x sits on the other side of the median than the root, its
        # tail is not comparable with the target: move towards the median.
        g = jnp.where(same_side, g, jnp.where(left, 1.0, -1.0))
        lo = jnp.where(g < 0, x, lo)
        hi = jnp.where(g > 0, x, hi)
        newton = x - g * jnp.exp(-terms.log_slope)
        inside = (newton >= lo) & (newton <= hi) & same_side
        x = jnp.where(inside, newton, 0.5 * (lo + hi))
        return x, lo, hi

    x, _, _ = lax.fori_loop(0, num_iterations, step, (x0, lower, upper))
    return x
