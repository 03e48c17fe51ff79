"""Throughput of the flow library: forward, inverse and log-density rows/s.

Trains the reference moons flow (6 blocks, 10 components, seed 0), then times
the bucketed jit runner (``flow.CompiledFlow``) after warm-up at batch sizes
1, 256 and 65,536, and counts compilations over a run of varied batch sizes
for the runner and for a plain per-shape ``jax.jit``.

Run: ``.venv/bin/python benchmarks/bench_flow.py [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from sklearn.datasets import make_moons

import flow

BATCH_SIZES = (1, 256, 65536)
# Minimum wall time per measurement, so small batches get many repetitions.
MIN_SECONDS = 2.0


def moons_train() -> np.ndarray:
    x, _ = make_moons(4000, noise=0.07, random_state=0)
    return ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)


def rows_per_second(function: Callable[[np.ndarray], Any], x: np.ndarray) -> float:
    function(x)
    repetitions, started = 0, time.perf_counter()
    while True:
        jax.block_until_ready(function(x))
        repetitions += 1
        elapsed = time.perf_counter() - started
        if elapsed >= MIN_SECONDS:
            return repetitions * x.shape[0] / elapsed


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    model, _ = flow.fit_and_freeze(
        moons_train(), num_blocks=6, num_components=10, epochs=120, seed=0
    )
    runner = flow.CompiledFlow(model)
    started = time.perf_counter()
    runner.warmup()
    warmup_seconds = time.perf_counter() - started

    rng = np.random.default_rng(0)
    machine = platform.processor() or platform.machine()
    results: dict[str, Any] = {
        "machine": f"{machine}, {os.cpu_count()} cores",
        "jax": jax.__version__,
        "warmup_seconds": warmup_seconds,
        "rows_per_second": {},
    }
    for rows in BATCH_SIZES:
        x = rng.standard_normal((rows, 2)).astype(np.float32)
        z = runner.transform(x)
        results["rows_per_second"][rows] = {
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

    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
