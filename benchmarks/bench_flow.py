"""Throughput of the flow library: forward, inverse and log-density rows/s.

Trains the reference moons flow (6 blocks, 10 components, 120 epochs, seed 0)
and reports how long ``fit_and_freeze`` took. Then it times the bucketed jit
runner (``flow.CompiledFlow``) after warm-up at batch sizes 1, 256 and 65,536
on two input sets:

- ``data``: held-out moons rows for forward and log_prob, z ~ N(0, I) for the
  inverse (sampling). The held-out rows stay inside every mixture layer's
  linear-space range (checked by tests/flow/test_linear_path.py).
- ``normal``: x ~ N(0, I) for forward and log_prob and z = T(x) for the
  inverse, the inputs of earlier versions of this benchmark. Under the moons
  flow up to 4.3 % of these elements per block lie far outside the data and
  take the log-space fallback.

It also times the compilation of each runner kernel for the largest bucket
and of the whole warm-up, counts compilations over a run of varied batch
sizes for the runner and for a plain per-shape ``jax.jit``, and records the
1-minute load average before and after.

Run: ``.venv/bin/python benchmarks/bench_flow.py [--json out.json]``
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from _common import machine, moons_split, report, seconds_per_call

import flow

BATCH_SIZES = (1, 256, 65536)
# One public function per runner kernel: forward, inverse and pullback.
KERNEL_FUNCTIONS = ("transform", "invert", "vjp")


def load_average() -> float:
    return os.getloadavg()[0]


def rows_per_second(function: Callable[[np.ndarray], Any], x: np.ndarray) -> float:
    return x.shape[0] / seconds_per_call(function, x)


def count_plain_jit_compilations(
    model: flow.GaussianizationFlow, sizes: list[int]
) -> int:
    traces = 0

    def forward(params: Any, x: jax.Array) -> jax.Array:
        nonlocal traces
        traces += 1
        return model.forward_pure(params, x)[0]

    jitted = jax.jit(forward)
    params = model.params()
    for rows in sizes:
        jitted(params, np.zeros((rows, model.dim), np.float32))
    return traces


def compile_kernels(runner: flow.CompiledFlow) -> dict[str, float]:
    """Compile each runner kernel for the largest bucket; return the seconds."""
    seconds = {}
    for function in KERNEL_FUNCTIONS:
        started = time.perf_counter()
        runner.compile_bucket(function, runner.max_chunk)
        seconds[function] = time.perf_counter() - started
    return seconds


def input_sets(
    runner: flow.CompiledFlow, held_out: np.ndarray, rows: int, rng: np.random.Generator
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Return ``{name: (x, z)}`` inputs of ``rows`` rows for both input sets."""
    data_x = held_out[rng.integers(0, held_out.shape[0], rows)]
    data_z = rng.standard_normal((rows, 2)).astype(np.float32)
    normal_x = rng.standard_normal((rows, 2)).astype(np.float32)
    return {"data": (data_x, data_z), "normal": (normal_x, runner.transform(normal_x))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "machine": machine(),
        "jax": jax.__version__,
        "load_average_start": load_average(),
    }
    train, held_out = moons_split()
    started = time.perf_counter()
    model, history = flow.fit_and_freeze(
        train, num_blocks=6, num_components=10, epochs=120, seed=0
    )
    results["fit_and_freeze_seconds"] = time.perf_counter() - started
    results["epochs_run"] = history["epochs_run"]

    runner = flow.CompiledFlow(model)
    results["compile_seconds"] = compile_kernels(runner)
    started = time.perf_counter()
    runner.warmup()
    results["warmup_seconds"] = (
        time.perf_counter() - started + sum(results["compile_seconds"].values())
    )

    rng = np.random.default_rng(0)
    results["rows_per_second"] = {}
    for rows in BATCH_SIZES:
        for name, (x, z) in input_sets(runner, held_out, rows, rng).items():
            results["rows_per_second"].setdefault(name, {})[rows] = {
                "forward": rows_per_second(runner.transform, x),
                "inverse": rows_per_second(runner.invert, z),
                "log_prob": rows_per_second(runner.log_prob, x),
            }

    varied = [int(n) for n in rng.integers(1, 5000, size=50)]
    before = runner.num_compilations
    for rows in varied:
        runner.transform(rng.standard_normal((rows, 2)).astype(np.float32))
    results["compilations_over_50_varied_batches"] = {
        "compiled_flow_after_warmup": runner.num_compilations - before,
        "plain_jax_jit": count_plain_jit_compilations(model, varied),
    }
    results["load_average_end"] = load_average()

    report(results, args.json)


if __name__ == "__main__":
    main()
