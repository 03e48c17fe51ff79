"""Memory and mappings that each compiled program of ``flow.CompiledFlow`` keeps.

For every batch size and kernel, compiles one program on a runner whose
largest bucket is that size. After each compilation it returns the C heap's
free pages with ``malloc_trim``, as the service does after its warm-up. It
records how much the resident memory and the number of memory mappings grew,
and how long the compilation took. Every runner stays alive until the end,
so the figures add up to what a warmed runner keeps. Linux only (it reads
/proc/self).

The model is the latest version of the first model in ``--store``, for
example the default moons flow of ``gaussprobe train moons --store DIR``.

Run: ``.venv/bin/python benchmarks/bench_programs.py --store DIR [--json out.json]``
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from _common import machine, parse_store_arguments, report, resident_megabytes

import flow
from flow._mappings import mapping_usage
from service._loading import release_free_memory

SIZES = (1, 16, 256, 4096)
FUNCTIONS = ("transform", "invert", "vjp")


def main() -> None:
    args, name, model = parse_store_arguments(__doc__)
    runners = [flow.CompiledFlow(model, max_chunk=size, workers=1) for size in SIZES]
    # One program first, so the one-time start-up of XLA is not counted.
    runners[-1].compile_bucket("transform", 1)
    release_free_memory()
    results: dict[str, Any] = {
        "machine": machine(),
        "model": name,
        "load_average_at_start": os.getloadavg(),
        "programs": [],
    }
    for size, runner in zip(SIZES, runners, strict=True):
        for function in FUNCTIONS:
            rss_before = resident_megabytes()
            usage = mapping_usage()
            started = time.perf_counter()
            runner.compile_bucket(function, size)
            seconds = time.perf_counter() - started
            release_free_memory()
            after = mapping_usage()
            mappings = None
            if usage is not None and after is not None:
                mappings = after[0] - usage[0]
            row = {
                "rows": size,
                "function": function,
                "compile_seconds": seconds,
                "resident_megabytes": resident_megabytes() - rss_before,
                "mappings": mappings,
            }
            results["programs"].append(row)
            print(json.dumps(row), flush=True)
    results["load_average_at_end"] = os.getloadavg()
    report(results, args.json)


if __name__ == "__main__":
    main()
