"""Cost of each candidate batch bucket of ``flow.CompiledFlow``.

For every candidate size, builds a runner whose largest bucket is that size
and times the compilation of its forward, inverse and pullback programs. It
then times ``transform`` and ``invert`` on batches of exactly that many rows,
so each call runs one unpadded program. Inputs are N(0, I) draws for
``invert`` and their inverses for ``transform``. The figures choose the runner's bucket
sizes: a small bucket for single rows and a large one for throughput.

The model is the latest version of the first model in ``--store``, for
example the default moons flow of ``gaussprobe train moons --store DIR``.

Run: ``.venv/bin/python benchmarks/bench_buckets.py --store DIR [--json out.json]``
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import jax
import numpy as np
from _common import machine, parse_store_arguments, report, seconds_per_call

import flow

CANDIDATE_SIZES = (1, 4, 16, 64, 256, 1024, 4096, 16384)


def _measure_size(model: Any, size: int, rng: np.random.Generator) -> dict[str, Any]:
    runner = flow.CompiledFlow(model, max_chunk=size)
    compile_seconds = {}
    for function in ("transform", "invert", "vjp"):
        started = time.perf_counter()
        runner.compile_bucket(function, size)
        compile_seconds[function] = time.perf_counter() - started
    # The inverse's cost depends on its input, so both directions get rows
    # of the model's own distribution: z from N(0, I) and x = T^-1(z).
    z = rng.standard_normal((size, model.dim)).astype(model.feature_dtype)
    x = runner.invert(z)
    result: dict[str, Any] = {"compile_seconds": compile_seconds}
    for label, function, rows in (
        ("forward", runner.transform, x),
        ("inverse", runner.invert, z),
    ):
        seconds = seconds_per_call(function, rows)
        result[label] = {
            "microseconds_per_call": seconds * 1e6,
            "rows_per_second": size / seconds,
        }
    return result


def main() -> None:
    args, name, model = parse_store_arguments(__doc__)
    rng = np.random.default_rng(0)
    results: dict[str, Any] = {
        "machine": machine(),
        "jax": jax.__version__,
        "model": name,
        "load_average_at_start": os.getloadavg(),
        "sizes": {},
    }
    for size in CANDIDATE_SIZES:
        results["sizes"][size] = _measure_size(model, size, rng)
        print(size, json.dumps(results["sizes"][size]), flush=True)
    results["load_average_at_end"] = os.getloadavg()

    report(results, args.json)


if __name__ == "__main__":
    main()
