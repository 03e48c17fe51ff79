"""Jitted, shape-bucketed evaluation of a frozen flow for serving and benchmarks.

Three XLA programs, the kernels, serve the seven public functions:

- ``forward`` maps x to ``(z, log_det, log_prob)`` and serves ``transform``,
  ``transform_with_log_det`` and ``log_prob``. log_prob is computed as in
  ``GaussianizationFlow.log_prob_pure``, the N(0, I) log-density of z plus
  log_det. A batch that fills one bucket gets the library's bits exactly.
  Other batch sizes can differ in the last bits, because XLA vectorizes
  each program shape differently.
- ``inverse`` maps z to x and serves ``invert``.
- ``pullback`` is ``jax.vjp`` of x -> (z, log_det). A traced flag chooses the
  cotangent: (c, 0) gives the VJP c^T dz/dx, and (-z, 1) gives the score,
  the gradient of log p = sum(-z^2 / 2) + log_det + const. The Jacobian comes
  from the same program: every row is repeated d times with cotangent e_i on
  copy i, so copy i returns row i of J.

XLA compile time hardly depends on the batch size, so start-up cost grows
with kernels x buckets. This runner compiles 3 x 3 programs. One jitted
function per public function with buckets 1, 4, 16, ..., 4096 needed 7 x 7.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flow._mappings import check_mapping_headroom
from flow._model import GaussianizationFlow, standard_normal_log_prob
from flow._validation import check_array

logger = logging.getLogger(__name__)

Array = jax.Array

# Batches are padded up to the next bucket: SMALLEST_BUCKET rows times a
# power of BUCKET_BASE, capped at max_chunk. benchmarks/bench_buckets.py on
# the default moons flow (6 blocks, 10 components, float32), 2-core VM at
# load 2.5-3.3, per call and unpadded, before the linear-space mixture path:
#
#   rows                     1      16     256    1024    4096
#   forward, us             78     234    1137    3825   15251
#   forward, k rows/s       13      68     225     268     269
#   inverse, k rows/s        1.2    13      42      62      50
#
# Compiling one program took 0.6-1.1 s (forward), 0.9-1.7 s (inverse) and
# 1.1-2.5 s (pullback), with no trend over the sizes, so each bucket costs a
# few seconds of start-up. Base 16 gives 3 buckets instead of the 7 of base
# 4, and 256 rows reach over 80 % of the peak forward rows/s. The 4096-row
# bucket only matched 1024 rows here, with both cores busy with other work.
# One XLA:CPU call of the forward kernel kept a single core busy (process CPU
# time equal to wall time, jaxlib 0.10.2), so batches of several chunks
# spread their calls over a thread pool (see ``CompiledFlow``).
BUCKET_BASE = 16

# There is no 1-row bucket. With the linear-space mixture path, one row
# padded to 16 took 111 us per forward call against 106 us unpadded, and
# 784 us against 753 us for the inverse (default moons model, load 1.7).
# The three 1-row programs would keep about 106 MB of memory
# (benchmarks/bench_programs.py).
SMALLEST_BUCKET = 16

# A remainder below the largest bucket either runs as up to MAX_SPLIT_CALLS
# calls of a smaller bucket or is padded to the next bucket, whichever costs
# less. The cost model charges each call CALL_OVERHEAD_ROWS rows of work on
# top of its padded rows. In the measurement above, a call's fixed cost was
# about 7 rows of work for forward and 28 for inverse.
MAX_SPLIT_CALLS = 4
CALL_OVERHEAD_ROWS = 16

# Larger batches are evaluated in chunks of this many rows. Per-row throughput
# is flat beyond a few thousand rows, and each extra bucket costs one
# compilation per kernel at start-up.
DEFAULT_MAX_CHUNK = 4096

# Upper bound on the default number of threads that run the chunks of one
# batch, whatever the core count.
MAX_DEFAULT_WORKERS = 8

FUNCTION_NAMES = (
    "transform",
    "transform_with_log_det",
    "invert",
    "log_prob",
    "vjp",
    "jacobian",
    "score",
)

KERNEL_NAMES = ("forward", "inverse", "pullback")

KERNEL_OF_FUNCTION = {
    "transform": "forward",
    "transform_with_log_det": "forward",
    "log_prob": "forward",
    "invert": "inverse",
    "vjp": "pullback",
    "jacobian": "pullback",
    "score": "pullback",
}


def default_workers() -> int:
    """Return the number of cores this process may run on, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # Not available on macOS and Windows.
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_WORKERS))


def bucket_sizes(max_chunk: int) -> list[int]:
    """Return the padded batch sizes used for chunks of up to max_chunk rows."""
    sizes = [min(SMALLEST_BUCKET, max_chunk)]
    while sizes[-1] < max_chunk:
        sizes.append(min(sizes[-1] * BUCKET_BASE, max_chunk))
    return sizes


def plan_chunks(rows: int, sizes: list[int]) -> list[tuple[int, int, int]]:
    """Cut ``rows`` rows into ``(start, stop, bucket)`` calls over ``sizes``.

    Full chunks use the largest size. A remainder runs as up to
    ``MAX_SPLIT_CALLS`` calls of the largest smaller size when that costs less
    than one call padded to the smallest size that fits it.
    """
    largest = sizes[-1]
    plan = []
    start = 0
    while rows - start >= largest:
        plan.append((start, start + largest, largest))
        start += largest
    remainder = rows - start
    if remainder == 0:
        return plan
    fit = next(size for size in sizes if size >= remainder)
    smaller = [size for size in sizes if size < remainder]
    if smaller:
        step = smaller[-1]
        calls = math.ceil(remainder / step)
        split_cost = calls * (CALL_OVERHEAD_ROWS + step)
        if calls <= MAX_SPLIT_CALLS and split_cost < CALL_OVERHEAD_ROWS + fit:
            for piece in range(start, rows, step):
                plan.append((piece, min(piece + step, rows), step))
            return plan
    plan.append((start, rows, fit))
    return plan


class CompiledFlow:
    """Jitted transform, inverse, log-density and derivatives of a flow.

    Every batch is cut into calls of bucket sizes (16 times powers of 16,
    capped at ``max_chunk``) by ``plan_chunks`` and each call is zero-padded
    to its bucket, so after ``warmup()`` no batch size triggers a compilation. The
    flow's weights are captured once at construction: the runner is meant
    for frozen flows. It is safe to call from several threads, and a
    (kernel, bucket) pair compiles only once even when requested
    concurrently.

    With ``compile_on_demand`` false, batches use only the buckets compiled
    so far, so calls never compile once a kernel has one compiled bucket. A
    kernel without any compiled bucket still compiles the bucket it needs.
    The attribute may be changed at any time, for example once a warm-up in
    another thread has finished.

    One XLA:CPU call of a kernel keeps one core busy. A batch of several
    chunks therefore runs its calls on a pool of ``workers`` threads, which
    the calls of every thread share. A single-chunk batch runs in the
    calling thread. Each chunk's result does not depend on the thread or on
    the other chunks.

    Inputs are `(batch, d)` array-likes; they are validated (rank, feature
    count, finite values) and cast to the flow's dtype. Outputs are numpy
    arrays of the flow's dtype.

    Args:
        flow: the (frozen) flow.
        max_chunk: largest bucket, the most rows per kernel call.
        compile_on_demand: compile a bucket the first time a batch needs it.
        workers: threads for the chunks of one batch; None means one per
            core this process may use, at most 8. 1 runs every chunk in the
            calling thread.
    """

    def __init__(
        self,
        flow: GaussianizationFlow,
        max_chunk: int = DEFAULT_MAX_CHUNK,
        compile_on_demand: bool = True,
        workers: int | None = None,
    ) -> None:
        if max_chunk < 1:
            raise ValueError(f"max_chunk must be >= 1; received {max_chunk}")
        if workers is not None and workers < 1:
            raise ValueError(
                f"workers must be >= 1 or None for one per core; received {workers}"
            )
        self.flow = flow
        self.dim = flow.dim
        self.dtype = flow.feature_dtype
        self.max_chunk = max_chunk
        self.buckets = bucket_sizes(max_chunk)
        self.compile_on_demand = compile_on_demand
        self._params = flow.params()
        self._kernels = {
            "forward": jax.jit(self._forward),
            "inverse": jax.jit(self._inverse),
            "pullback": jax.jit(self._pullback),
        }
        self._executables: dict[tuple[str, int], Any] = {}
        self._compiled_sizes: dict[str, tuple[int, ...]] = {
            kernel: () for kernel in KERNEL_NAMES
        }
        self._locks: dict[tuple[str, int], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.workers = default_workers() if workers is None else workers
        self._pool: ThreadPoolExecutor | None = None

    # Kernels -----------------------------------------------------------------

    def _forward(self, params: Any, x: Array) -> tuple[Array, Array, Array]:
        z, log_det = self.flow.forward_pure(params, x)
        return z, log_det, standard_normal_log_prob(z) + log_det

    def _inverse(self, params: Any, z: Array) -> tuple[Array]:
        return (self.flow.inverse_pure(params, z)[0],)

    def _pullback(
        self, params: Any, x: Array, cotangent: Array, score: Array
    ) -> tuple[Array]:
        (z, log_det), pullback = jax.vjp(
            lambda value: self.flow.forward_pure(params, value), x
        )
        z_cotangent = jnp.where(score, -z, cotangent)
        log_det_cotangent = jnp.broadcast_to(score.astype(log_det.dtype), log_det.shape)
        return (pullback((z_cotangent, log_det_cotangent))[0],)

    # Compilation -------------------------------------------------------------

    @property
    def num_compilations(self) -> int:
        """Number of (kernel, bucket) programs compiled so far."""
        return len(self._executables)

    def compiled_buckets(self) -> dict[str, list[int]]:
        """Return the compiled bucket sizes of each kernel."""
        return {kernel: list(sizes) for kernel, sizes in self._compiled_sizes.items()}

    def bucket_for(self, rows: int) -> int:
        """Return the smallest bucket of at least ``rows`` rows, or the largest."""
        return next((size for size in self.buckets if size >= rows), self.max_chunk)

    def compile_bucket(self, function: str, rows: int) -> bool:
        """Compile the kernel behind ``function`` for the bucket of ``rows`` rows.

        Returns:
            True when this call compiled it, False when it was compiled before.

        Raises:
            ValueError: ``function`` is not one of ``FUNCTION_NAMES``.
            MappingLimitError: the process is too close to its limit on memory
                mappings to load another program (see ``flow._mappings``).
        """
        if function not in KERNEL_OF_FUNCTION:
            raise ValueError(
                f"unknown function {function!r}; use one of {', '.join(FUNCTION_NAMES)}"
            )
        kernel = KERNEL_OF_FUNCTION[function]
        size = self.bucket_for(rows)
        if (kernel, size) in self._executables:
            return False
        return self._executable(kernel, size)[1]

    def _executable(self, kernel: str, size: int) -> tuple[Any, bool]:
        key = (kernel, size)
        executable = self._executables.get(key)
        if executable is not None:
            return executable, False
        with self._locks_guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            executable = self._executables.get(key)
            if executable is not None:
                return executable, False
            check_mapping_headroom(f"the {kernel} kernel for {size} rows")
            rows = jax.ShapeDtypeStruct((size, self.dim), self.dtype)
            arguments: tuple[Any, ...] = (rows,)
            if kernel == "pullback":
                arguments = (rows, rows, jax.ShapeDtypeStruct((), np.bool_))
            executable = self._kernels[kernel].lower(self._params, *arguments).compile()
            self._executables[key] = executable
            self._compiled_sizes[kernel] = tuple(
                sorted((*self._compiled_sizes[kernel], size))
            )
        logger.debug("compiled %s for %d rows", kernel, size)
        return executable, True

    def warmup(
        self, max_rows: int | None = None, functions: tuple[str, ...] = FUNCTION_NAMES
    ) -> int:
        """Compile the kernels of ``functions`` for every bucket up to max_rows.

        The smallest bucket is always compiled.

        Returns:
            The number of compilations this call triggered.
        """
        limit = (
            self.max_chunk
            if max_rows is None
            else max(1, min(max_rows, self.max_chunk))
        )
        compiled = 0
        for size in self.buckets:
            if size > limit and size != self.buckets[0]:
                break
            for function in functions:
                compiled += self.compile_bucket(function, size)
        logger.debug("warm-up compiled %d programs up to %d rows", compiled, limit)
        return compiled

    # Evaluation --------------------------------------------------------------

    def _sizes_for(self, kernel: str) -> list[int]:
        if self.compile_on_demand:
            return self.buckets
        return list(self._compiled_sizes[kernel]) or self.buckets

    def _run(
        self, kernel: str, arrays: tuple[np.ndarray, ...], *flags: Any
    ) -> tuple[np.ndarray, ...]:
        rows = arrays[0].shape[0]

        def run_chunk(piece: tuple[int, int, int]) -> list[np.ndarray]:
            start, stop, size = piece
            executable, _ = self._executable(kernel, size)
            chunk = [array[start:stop] for array in arrays]
            if stop - start != size:
                padding = ((0, size - (stop - start)), (0, 0))
                chunk = [np.pad(part, padding) for part in chunk]
            outputs = executable(self._params, *chunk, *flags)
            return [np.asarray(output)[: stop - start] for output in outputs]

        plan = plan_chunks(rows, self._sizes_for(kernel))
        if len(plan) == 1:
            return tuple(run_chunk(plan[0]))
        if self.workers > 1:
            pieces = list(self._chunk_pool().map(run_chunk, plan))
        else:
            pieces = [run_chunk(piece) for piece in plan]
        return tuple(np.concatenate(parts) for parts in zip(*pieces, strict=True))

    def _chunk_pool(self) -> ThreadPoolExecutor:
        with self._locks_guard:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self.workers, thread_name_prefix="gaussprobe-chunks"
                )
            return self._pool

    def close(self) -> None:
        """Stop the chunk threads. Later calls start them again."""
        with self._locks_guard:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _check(self, x: Any, name: str) -> np.ndarray:
        return np.asarray(check_array(x, self.dim, self.dtype, name))

    def _forward_outputs(self, x: Any) -> tuple[np.ndarray, ...]:
        x = self._check(x, "x")
        if x.shape[0] == 0:
            return (x, np.zeros(0, self.dtype), np.zeros(0, self.dtype))
        return self._run("forward", (x,))

    def _pullback_outputs(
        self, x: np.ndarray, cotangent: np.ndarray, score: bool
    ) -> np.ndarray:
        if x.shape[0] == 0:
            return np.zeros_like(x)
        return self._run("pullback", (x, cotangent), np.bool_(score))[0]

    def transform(self, x: Any) -> np.ndarray:
        """Return z = T(x), `(batch, d)`."""
        return self._forward_outputs(x)[0]

    def transform_with_log_det(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(z, log_det)``: `(batch, d)` and `(batch,)`."""
        z, log_det, _ = self._forward_outputs(x)
        return z, log_det

    def invert(self, z: Any) -> np.ndarray:
        """Return x = T^-1(z), `(batch, d)`."""
        z = self._check(z, "z")
        if z.shape[0] == 0:
            return z
        return self._run("inverse", (z,))[0]

    def log_prob(self, x: Any) -> np.ndarray:
        """Return log p(x), `(batch,)`."""
        return self._forward_outputs(x)[2]

    def vjp(self, x: Any, cotangent: Any) -> np.ndarray:
        """Return the vector-Jacobian product cotangent^T dT/dx, `(batch, d)`."""
        x = self._check(x, "x")
        cotangent = self._check(cotangent, "cotangent")
        if cotangent.shape != x.shape:
            raise ValueError(
                f"cotangent must have the shape of x, {x.shape}; received "
                f"{cotangent.shape}"
            )
        return self._pullback_outputs(x, cotangent, score=False)

    def jacobian(self, x: Any) -> np.ndarray:
        """Return per-row Jacobians J[b, i, j] = dz_i/dx_j, `(batch, d, d)`."""
        x = self._check(x, "x")
        rows, dim = x.shape
        # Row b * d + i of the repeated batch carries cotangent e_i, so its
        # pullback is row i of J at x[b].
        repeated = np.repeat(x, dim, axis=0)
        basis = np.tile(np.eye(dim, dtype=self.dtype), (rows, 1))
        pulled = self._pullback_outputs(repeated, basis, score=False)
        return pulled.reshape(rows, dim, dim)

    def score(self, x: Any) -> np.ndarray:
        """Return the gradient of log p with respect to x, `(batch, d)`."""
        x = self._check(x, "x")
        return self._pullback_outputs(x, x, score=True)
