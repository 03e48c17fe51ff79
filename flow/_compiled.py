"""Jitted, shape-bucketed evaluation of a frozen flow for serving and benchmarks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flow._model import GaussianizationFlow
from flow._validation import check_array

logger = logging.getLogger(__name__)

Array = jax.Array

# Batches are padded up to the next power of BUCKET_BASE, so a run of varied
# batch sizes compiles at most log_4(max_chunk) + 1 shapes per function while
# padding never more than quadruples the work of a small batch.
BUCKET_BASE = 4

# Larger batches are evaluated in chunks of this many rows. Per-row throughput
# is flat beyond a few thousand rows, and each extra bucket costs one
# compilation per function at start-up. The Jacobian of a chunk, chunk * d * d
# values, also stays bounded.
DEFAULT_MAX_CHUNK = 4096

FUNCTION_NAMES = (
    "transform",
    "transform_with_log_det",
    "invert",
    "log_prob",
    "vjp",
    "jacobian",
    "score",
)


def bucket_sizes(max_chunk: int) -> list[int]:
    """Return the padded batch sizes used for chunks of up to max_chunk rows."""
    sizes = [1]
    while sizes[-1] < max_chunk:
        sizes.append(min(sizes[-1] * BUCKET_BASE, max_chunk))
    return sizes


class CompiledFlow:
    """Jitted transform, inverse, log-density and derivatives of a flow.

    Every batch is split into chunks of at most ``max_chunk`` rows and each
    chunk is zero-padded up to a bucket size (powers of 4, capped at
    ``max_chunk``), so after ``warmup()`` no batch size triggers a
    compilation. The flow's weights are captured once at construction:
    the runner is meant for frozen flows.

    Inputs are `(batch, d)` array-likes; they are validated (rank, feature
    count, finite values) and cast to the flow's dtype. Outputs are numpy
    arrays of the flow's dtype.

    Args:
        flow: the (frozen) flow.
        max_chunk: rows per jitted call.
    """

    def __init__(
        self, flow: GaussianizationFlow, max_chunk: int = DEFAULT_MAX_CHUNK
    ) -> None:
        if max_chunk < 1:
            raise ValueError(f"max_chunk must be >= 1; received {max_chunk}")
        self.flow = flow
        self.dim = flow.dim
        self.dtype = flow.feature_dtype
        self.max_chunk = max_chunk
        self.buckets = bucket_sizes(max_chunk)
        self._params = flow.params()
        self._compilations = 0
        self._lock = threading.Lock()
        self._functions = self._build_functions()

    @property
    def num_compilations(self) -> int:
        """Number of (function, shape) pairs traced so far."""
        return self._compilations

    def _count_trace(self) -> None:
        # Runs only while jax traces a function, i.e. once per compiled shape.
        with self._lock:
            self._compilations += 1

    def _build_functions(self) -> dict[str, Callable[..., Any]]:
        flow = self.flow

        def transform(params: Any, x: Array) -> Array:
            self._count_trace()
            return flow.forward_pure(params, x)[0]

        def transform_with_log_det(params: Any, x: Array) -> tuple[Array, Array]:
            self._count_trace()
            return flow.forward_pure(params, x)

        def invert(params: Any, z: Array) -> Array:
            self._count_trace()
            return flow.inverse_pure(params, z)[0]

        def log_prob(params: Any, x: Array) -> Array:
            self._count_trace()
            return flow.log_prob_pure(params, x)

        def vjp(params: Any, x: Array, cotangent: Array) -> Array:
            self._count_trace()
            _, pullback = jax.vjp(lambda value: flow.forward_pure(params, value)[0], x)
            return pullback(cotangent)[0]

        def jacobian(params: Any, x: Array) -> Array:
            self._count_trace()

            def row_transform(row: Array) -> Array:
                return flow.forward_pure(params, row[None, :])[0][0]

            return jax.vmap(jax.jacfwd(row_transform))(x)

        def score(params: Any, x: Array) -> Array:
            self._count_trace()
            return jax.grad(lambda value: jnp.sum(flow.log_prob_pure(params, value)))(x)

        kernels = (
            transform,
            transform_with_log_det,
            invert,
            log_prob,
            vjp,
            jacobian,
            score,
        )
        return {kernel.__name__: jax.jit(kernel) for kernel in kernels}

    def _bucket(self, rows: int) -> int:
        for size in self.buckets:
            if rows <= size:
                return size
        return self.max_chunk

    def _apply(self, name: str, *arrays: np.ndarray) -> Any:
        rows = arrays[0].shape[0]
        function = self._functions[name]
        if rows == 0:
            # Trace abstractly for the output structure; nothing is compiled.
            shapes = jax.eval_shape(
                function,
                self._params,
                *(np.zeros((1, self.dim), self.dtype) for _ in arrays),
            )
            return jax.tree.map(lambda s: np.zeros((0, *s.shape[1:]), s.dtype), shapes)
        pieces = []
        for start in range(0, rows, self.max_chunk):
            chunk = [array[start : start + self.max_chunk] for array in arrays]
            size = chunk[0].shape[0]
            padded_size = self._bucket(size)
            if padded_size != size:
                chunk = [
                    np.pad(part, ((0, padded_size - size), (0, 0))) for part in chunk
                ]
            output = function(self._params, *chunk)
            pieces.append(jax.tree.map(lambda value, size=size: value[:size], output))
        return jax.tree.map(
            lambda *parts: np.concatenate([np.asarray(p) for p in parts]), *pieces
        )

    def _check(self, x: Any, name: str) -> np.ndarray:
        return np.asarray(check_array(x, self.dim, self.dtype, name))

    def transform(self, x: Any) -> np.ndarray:
        """Return z = T(x), `(batch, d)`."""
        return self._apply("transform", self._check(x, "x"))

    def transform_with_log_det(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(z, log_det)``: `(batch, d)` and `(batch,)`."""
        z, log_det = self._apply("transform_with_log_det", self._check(x, "x"))
        return z, log_det

    def invert(self, z: Any) -> np.ndarray:
        """Return x = T^-1(z), `(batch, d)`."""
        return self._apply("invert", self._check(z, "z"))

    def log_prob(self, x: Any) -> np.ndarray:
        """Return log p(x), `(batch,)`."""
        return self._apply("log_prob", self._check(x, "x"))

    def vjp(self, x: Any, cotangent: Any) -> np.ndarray:
        """Return the vector-Jacobian product cotangent^T dT/dx, `(batch, d)`."""
        x = self._check(x, "x")
        cotangent = self._check(cotangent, "cotangent")
        if cotangent.shape != x.shape:
            raise ValueError(
                f"cotangent must have the shape of x, {x.shape}; received "
                f"{cotangent.shape}"
            )
        return self._apply("vjp", x, cotangent)

    def jacobian(self, x: Any) -> np.ndarray:
        """Return per-row Jacobians J[b, i, j] = dz_i/dx_j, `(batch, d, d)`."""
        return self._apply("jacobian", self._check(x, "x"))

    def score(self, x: Any) -> np.ndarray:
        """Return the gradient of log p with respect to x, `(batch, d)`."""
        return self._apply("score", self._check(x, "x"))

    def warmup(
        self, max_rows: int | None = None, functions: tuple[str, ...] = FUNCTION_NAMES
    ) -> int:
        """Compile every function for every bucket up to max_rows.

        Returns:
            The number of compilations this call triggered.
        """
        limit = (
            self.max_chunk
            if max_rows is None
            else max(1, min(max_rows, self.max_chunk))
        )
        before = self._compilations
        for size in self.buckets:
            if size > limit and size != self.buckets[0]:
                break
            zeros = np.zeros((size, self.dim), self.dtype)
            for name in functions:
                arguments = (zeros, zeros) if name == "vjp" else (zeros,)
                jax.block_until_ready(self._functions[name](self._params, *arguments))
        compiled = self._compilations - before
        logger.debug("warm-up compiled %d functions up to %d rows", compiled, limit)
        return compiled
