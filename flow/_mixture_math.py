"""Pure JAX kernels of the mixture-CDF Gaussianization bijector.

Per feature, with a K-component Gaussian mixture of weights ``w_k``, locations
``loc_k`` and scales ``s_k = exp(log_scale_k)``:

.. math::

    F(x) = \\sum_k w_k \\Phi((x - loc_k) / s_k), \\qquad z = \\Phi^{-1}(F(x)).

Everything is computed from the smaller tail, ``F`` on the left and
``S = 1 - F`` on the right, in one of two ways:

* Linear space, the fast path. With ``u_k = (x - loc_k) / s_k`` and the
  smaller tail ``t_k = Phi(-|u_k|)`` of each component, ``F`` and ``S`` are
  sums of the positive terms ``w_k t_k`` and ``w_k (1 - t_k)``, so each has
  full relative precision, and ``z = +-ndtri(min(F, S))``. Per component this
  takes one ``exp`` and a polynomial in float32 (``lax.erfc`` and ``exp`` in
  float64). It is exact to round-off while ``min(F, S)`` and the density
  ``f`` are normal numbers well above the underflow threshold
  (``_linear_floors``).
* Log space, the fallback. ``log F`` and ``log S`` are each a ``logsumexp``
  of ``log_ndtr`` terms, so ``z`` is finite and strictly increasing for every
  finite ``x`` with no clipping of ``F``.

Every entry point evaluates the linear sums for the whole batch, then runs
the log-space path, under ``lax.cond``, on only the elements outside the
linear range (``_with_log_space_fallback``). Each element's value therefore
comes from one path chosen by that element alone, and a row's result does
not depend on the other rows of its batch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple, TypeVar

import jax
import jax.numpy as jnp
from jax import lax
from jax.nn import log_softmax, softmax
from jax.scipy.special import logsumexp

from flow._special import (
    log_mills_ratio,
    log_mills_ratio_nonpositive,
    log_ndtr,
    ndtri,
    ndtri_of_log,
    normal_tail_and_kernel,
    normal_tail_terms,
)

Array = jax.Array
Values = TypeVar("Values")

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# A linear-space sum loses at most the dtype's smallest normal number per
# component to underflow. Requiring every sum to exceed that loss by a factor
# of 16 / eps bounds the relative error it causes by eps / 16.
_UNDERFLOW_MARGIN = 16.0

# Elements outside the linear range go through the log-space path in chunks
# of 1/_COMPACT_FRACTION of the batch. The log-space path costs about 9
# linear evaluations per element. A point far outside the training data
# reaches the tails of every later block, so a batch with a few such rows
# pays for one chunk, about half a linear evaluation, per block.
_COMPACT_FRACTION = 16


class _LinearSums(NamedTuple):
    """Linear-space mixture quantities, each `(batch, features)`.

    Attributes:
        cdf: F(x), a sum of positive terms.
        sf: S(x) = 1 - F(x), a sum of positive terms.
        density: f(x) = F'(x).
        usable: True where min(cdf, sf) and density are large enough that
            underflow costs less than eps / 16 relative.
    """

    cdf: Array
    sf: Array
    density: Array
    usable: Array


def _linear_sums(x: Array, loc: Array, log_scale: Array, logits: Array) -> _LinearSums:
    # x: (batch, features); loc, log_scale, logits: (features, K).
    weight = softmax(logits, axis=-1)
    inverse_scale = jnp.exp(-log_scale)
    density_weight = weight * inverse_scale * _INV_SQRT_2PI

    # The components run as a lax.scan over (features, batch) slabs. XLA:CPU
    # vectorizes a fused loop body of one component but emits scalar code
    # when all K components are fused into one body, which ran 3 to 6 times
    # slower (jaxlib 0.10.2 on the 2-core x86_64 development VM).
    per_component = tuple(
        value.T[:, :, None] for value in (loc, inverse_scale, weight, density_weight)
    )
    x_t = x.T

    def add_component(
        sums: tuple[Array, Array, Array], component: tuple[Array, ...]
    ) -> tuple[tuple[Array, Array, Array], None]:
        loc_k, inverse_scale_k, weight_k, density_weight_k = component
        u = (x_t - loc_k) * inverse_scale_k
        tail, kernel = normal_tail_and_kernel(jnp.abs(u) * _SQRT_HALF)
        small = weight_k * tail
        large = weight_k - small
        below = u < 0
        cdf, sf, density = sums
        return (
            cdf + jnp.where(below, small, large),
            sf + jnp.where(below, large, small),
            density + density_weight_k * kernel,
        ), None

    zeros = jnp.zeros_like(x_t)
    (cdf, sf, density), _ = lax.scan(
        add_component, (zeros, zeros, zeros), per_component
    )
    cdf, sf, density = cdf.T, sf.T, density.T

    tail_floor, density_floor = _linear_floors(density_weight)
    usable = (jnp.minimum(cdf, sf) >= tail_floor) & (density >= density_floor)
    return _LinearSums(cdf, sf, density, usable)


def _linear_floors(density_weight: Array) -> tuple[Array, Array]:
    """Return the smallest tail and density, `(features,)`, that the linear
    path evaluates to within eps / 16 relative of the exact sums.

    Each component's tail term ``w_k t_k`` underflows with an absolute error
    below ``tiny`` (the smallest normal number), its density term
    ``density_weight_k exp(-u_k^2 / 2)`` with one below
    ``tiny * max(1, density_weight_k)``.
    """
    info = jnp.finfo(density_weight.dtype)
    floor = _UNDERFLOW_MARGIN * float(info.tiny) / float(info.eps)
    num_components = density_weight.shape[-1]
    tail_floor = jnp.full(density_weight.shape[:-1], floor * num_components)
    density_floor = floor * jnp.sum(jnp.maximum(density_weight, 1.0), axis=-1)
    return tail_floor.astype(density_weight.dtype), density_floor


def _with_log_space_fallback(
    usable: Array,
    linear: Values,
    log_space: Callable[[Array, Array, Array, Array], Values],
    x: Array,
    loc: Array,
    log_scale: Array,
    logits: Array,
) -> Values:
    """Return ``linear``, with the log-space values where ``usable`` is False.

    ``log_space(x, loc, log_scale, logits)`` must work elementwise on
    `(batch, features)` arrays with `(features, K)` parameters, as the
    functions of this module do. It runs only on the elements outside the
    linear range: they are gathered into chunks of 1/_COMPACT_FRACTION of the
    batch, each evaluated as the features of a single row, and chunks past
    the last such element are skipped. The log-space path is compiled once,
    for one chunk.

    Under ``vmap`` with a per-row predicate ``lax.cond`` becomes a select,
    and every branch runs on every row.
    """
    if usable.size == 0:
        return linear
    num_features = usable.shape[-1]
    capacity = -(-usable.size // _COMPACT_FRACTION)
    num_chunks = -(-usable.size // capacity)
    params = (loc, log_scale, logits)
    flat_x = x.reshape(-1)
    flat_outside = ~usable.reshape(-1)
    num_outside = jnp.sum(flat_outside)

    def fill_outside() -> Values:
        # Slots past the last outside element repeat the first one, so they
        # compute and write the same value again.
        first = jnp.argmax(flat_outside)
        indices = jnp.nonzero(
            flat_outside, size=num_chunks * capacity, fill_value=first
        )
        chunks = indices[0].reshape(num_chunks, capacity)

        def fill_chunk(chunk: int, values: Values) -> Values:
            def evaluate() -> Values:
                index = chunks[chunk]
                feature = index % num_features
                picked = log_space(
                    flat_x[index][None, :], *(value[feature] for value in params)
                )
                return jax.tree.map(
                    lambda old, new: (
                        old.reshape(-1).at[index].set(new[0]).reshape(old.shape)
                    ),
                    values,
                    picked,
                )

            return lax.cond(chunk * capacity < num_outside, evaluate, lambda: values)

        return lax.fori_loop(0, num_chunks, fill_chunk, linear)

    return lax.cond(num_outside == 0, lambda: linear, fill_outside)


class _TailTerms(NamedTuple):
    """Log-space quantities of the smaller tail at ``x``, each
    `(batch, features)`.

    Attributes:
        left: True where F(x) <= 1/2.
        log_tail: log of the smaller tail, min(F, 1 - F).
        log_slope: log of f(x) / tail(x), the slope of ``log_tail`` in
            absolute value.
    """

    left: Array
    log_tail: Array
    log_slope: Array


def _log_space_terms(
    x: Array, loc: Array, log_scale: Array, logits: Array
) -> _TailTerms:
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


def _log_space_forward(
    x: Array, loc: Array, log_scale: Array, logits: Array
) -> tuple[Array, Array]:
    terms = _log_space_terms(x, loc, log_scale, logits)
    w = ndtri_of_log(terms.log_tail)
    z = jnp.where(terms.left, w, -w)
    # dz/dx = f(x) / phi(z) = (f / tail) / (phi(w) / Phi(w)).
    log_dzdx = terms.log_slope - log_mills_ratio(w)
    return z, log_dzdx


def _linear_forward(sums: _LinearSums) -> tuple[Array, Array]:
    # Outside the usable range the tail and density are replaced by 1/2 and 1,
    # so these values stay finite wherever the log-space ones are taken. Their
    # gradients, which a select multiplies by zero there, then stay finite too.
    tail = jnp.where(sums.usable, jnp.minimum(sums.cdf, sums.sf), 0.5)
    density = jnp.where(sums.usable, sums.density, 1.0)
    w = ndtri(tail)
    z = jnp.where(sums.cdf <= sums.sf, w, -w)
    # dz/dx = f(x) / phi(z) = (f / tail) / (phi(w) / Phi(w)) as in the
    # log-space path. log f + w^2 / 2 + log(2 pi) / 2 would cancel two large
    # terms: 1.7e-5 error at |z| = 11 in float32 against 4e-6 this way.
    log_dzdx = _log_ratio(density, tail) - log_mills_ratio_nonpositive(w)
    return z, log_dzdx


@jax.custom_jvp
def _log_ratio(numerator: Array, denominator: Array) -> Array:
    # log(a / b), differentiated as da / a - db / b. The quotient rule would
    # square b, which overflows for b below 1e-19 in float32 (1e-154 in
    # float64), well inside the linear range.
    return jnp.log(numerator / denominator)


@_log_ratio.defjvp
def _log_ratio_jvp(
    primals: tuple[Array, Array], tangents: tuple[Array, Array]
) -> tuple[Array, Array]:
    numerator, denominator = primals
    d_numerator, d_denominator = tangents
    return (
        _log_ratio(numerator, denominator),
        d_numerator / numerator - d_denominator / denominator,
    )


@jax.jit
def mixture_forward(
    x: Array, loc: Array, log_scale: Array, logits: Array
) -> tuple[Array, Array]:
    """Map x through z = Phi^-1(F(x)) per feature.

    Jitted, so that eager calls (layer initialisation, tests) compile the
    control flow of the fallback once per shape rather than on every call.

    Args:
        x: `(batch, features)`.
        loc, log_scale, logits: `(features, K)` mixture parameters.

    Returns:
        z: `(batch, features)` and the per-element log dz/dx, also
        `(batch, features)`.
    """
    return _mixture_forward(x, loc, log_scale, logits)


@jax.custom_jvp
def _mixture_forward(
    x: Array, loc: Array, log_scale: Array, logits: Array
) -> tuple[Array, Array]:
    sums = _linear_sums(x, loc, log_scale, logits)
    return _with_log_space_fallback(
        sums.usable,
        _linear_forward(sums),
        _log_space_forward,
        x,
        loc,
        log_scale,
        logits,
    )


@_mixture_forward.defjvp
def _mixture_forward_jvp(
    primals: tuple[Array, ...], tangents: tuple[Array, ...]
) -> tuple[tuple[Array, Array], tuple[Array, Array]]:
    # Derivatives come from a plain per-element select of the two paths. It
    # gives the same values, and differentiating it compiled in 70 % of the
    # time of the chunked fallback (runner pullback kernel, reference moons
    # flow). In exchange, a batch with any element outside the linear range
    # runs the log-space path on every element when differentiated.
    return jax.jvp(_select_forward, primals, tangents)


def _select_forward(
    x: Array, loc: Array, log_scale: Array, logits: Array
) -> tuple[Array, Array]:
    sums = _linear_sums(x, loc, log_scale, logits)
    linear = _linear_forward(sums)

    def with_log_space() -> tuple[Array, Array]:
        log_space = _log_space_forward(x, loc, log_scale, logits)
        return jax.tree.map(
            lambda fast, slow: jnp.where(sums.usable, fast, slow), linear, log_space
        )

    return lax.cond(jnp.all(sums.usable), lambda: linear, with_log_space)


class _NewtonTerms(NamedTuple):
    """Quantities at ``x`` for a Newton step of the inverse, each
    `(batch, features)`.

    Attributes:
        left: True where F(x) <= 1/2.
        log_tail: log of the smaller tail, min(F, 1 - F).
        inverse_slope: tail(x) / f(x), the reciprocal of the slope of
            ``log_tail`` in absolute value.
    """

    left: Array
    log_tail: Array
    inverse_slope: Array


def _newton_terms(
    x: Array, loc: Array, log_scale: Array, logits: Array
) -> _NewtonTerms:
    sums = _linear_sums(x, loc, log_scale, logits)
    tail = jnp.where(sums.usable, jnp.minimum(sums.cdf, sums.sf), 0.5)
    density = jnp.where(sums.usable, sums.density, 1.0)
    linear = _NewtonTerms(sums.cdf <= sums.sf, jnp.log(tail), tail / density)

    return _with_log_space_fallback(
        sums.usable, linear, _log_space_newton_terms, x, loc, log_scale, logits
    )


def _log_space_newton_terms(
    x: Array, loc: Array, log_scale: Array, logits: Array
) -> _NewtonTerms:
    terms = _log_space_terms(x, loc, log_scale, logits)
    return _NewtonTerms(terms.left, terms.log_tail, jnp.exp(-terms.log_slope))


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
    # The grid is small, so it skips the linear path and its fallback, which
    # would only add compile time.
    grid_z, _ = _log_space_forward(grid_x.T, loc, log_scale, logits)
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


# Newton steps of the inverse stop, per element, after the step taken where
# the log-tail residual was within this many eps of (1 + |log tail|). From
# there quadratic convergence reaches round-off in that one step. At the
# root, round-off leaves residuals up to about 8 eps (7.3 seen on random
# mixtures in float32 and float64), so every element can stop.
_NEWTON_TOLERANCE_EPS = 64.0


class _NewtonState(NamedTuple):
    x: Array
    lo: Array
    hi: Array
    done: Array


@functools.partial(jax.jit, static_argnames=("num_iterations",))
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
    run for at most a fixed number of iterations so the solver jits. Once
    every element of the batch has converged the remaining iterations are
    skipped.

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
    tolerance = (
        _NEWTON_TOLERANCE_EPS * float(jnp.finfo(z.dtype).eps) * (1.0 + jnp.abs(target))
    )
    lower, upper, x0 = _grid_bracket(z, loc, log_scale, logits)

    def step(state: _NewtonState) -> _NewtonState:
        terms = _newton_terms(state.x, loc, log_scale, logits)
        # g(x) = log F(x) - log Phi(z) is increasing; on the right tail the
        # same root solves log S(x) - log Phi(-z) = 0, which is decreasing.
        same_side = terms.left == left
        g = jnp.where(left, terms.log_tail - target, target - terms.log_tail)
        near = same_side & (jnp.abs(g) <= tolerance)
        # Where x sits on the other side of the median than the root, its
        # tail is not comparable with the target: move towards the median.
        g = jnp.where(same_side, g, jnp.where(left, 1.0, -1.0))
        lo = jnp.where(g < 0, state.x, state.lo)
        hi = jnp.where(g > 0, state.x, state.hi)
        newton = state.x - g * terms.inverse_slope
        inside = (newton >= lo) & (newton <= hi) & same_side
        x = jnp.where(inside, newton, 0.5 * (lo + hi))
        # An element stops after the Newton step taken within the tolerance,
        # so its result does not depend on how long the rest of its batch
        # keeps iterating.
        return _NewtonState(
            jnp.where(state.done, state.x, x), lo, hi, state.done | (near & inside)
        )

    def maybe_step(_: int, state: _NewtonState) -> _NewtonState:
        return lax.cond(jnp.all(state.done), lambda: state, lambda: step(state))

    start = _NewtonState(x0, lower, upper, jnp.zeros(z.shape, bool))
    return lax.fori_loop(0, num_iterations, maybe_step, start).x
