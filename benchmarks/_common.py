"""Helpers shared by the benchmark scripts: the moons split, timing, machine.

The scripts run as ``.venv/bin/python benchmarks/NAME.py``, which puts this
folder on ``sys.path``, so they import this module as ``_common``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

# Minimum wall time per measurement, so small batches get many repetitions.
MIN_SECONDS = 2.0


def moons_split() -> tuple[np.ndarray, np.ndarray]:
    """Return standardised training (seed 0) and held-out (seed 1) moons.

    Both are float32 of shape ``(4000, 2)``. The held-out rows are scaled with
    the training rows' mean and standard deviation.
    """
    from sklearn.datasets import make_moons

    train, _ = make_moons(4000, noise=0.07, random_state=0)
    held_out, _ = make_moons(4000, noise=0.07, random_state=1)
    mean, std = train.mean(axis=0), train.std(axis=0)
    return (
        ((train - mean) / std).astype(np.float32),
        ((held_out - mean) / std).astype(np.float32),
    )


def seconds_per_call(function: Callable[[np.ndarray], Any], x: np.ndarray) -> float:
    """Return the mean wall seconds of ``function(x)`` over at least MIN_SECONDS.

    One untimed call comes first, so compilation is not counted. Every timed
    call waits for its JAX result.
    """
    function(x)
    repetitions, started = 0, time.perf_counter()
    while True:
        jax.block_until_ready(function(x))
        repetitions += 1
        elapsed = time.perf_counter() - started
        if elapsed >= MIN_SECONDS:
            return elapsed / repetitions


def resident_megabytes(pid: int | str = "self") -> float:
    """Return the resident set size in MB of process ``pid`` (Linux only)."""
    status = Path(f"/proc/{pid}/status")
    for line in status.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"VmRSS is missing from {status}")


def machine() -> str:
    """Return the processor name and core count for the results file."""
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def parse_store_arguments(doc: str) -> tuple[argparse.Namespace, str, Any]:
    """Parse ``--store DIR [--json FILE]`` and load the store's first model.

    Returns:
        The arguments, the model's name and its latest flow, loaded with
        float64 enabled as in the service.
    """
    import flow
    from flow.store import ArtifactStore

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="artifact store")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    flow.enable_float64()
    store = ArtifactStore(args.store, read_only=True)
    name = sorted(store.list_models())[0]
    return args, name, store.open(f"{name}@latest").load_flow()


def report(results: dict[str, Any], path: str | None) -> None:
    """Print the results as JSON and also write them to ``path`` when given."""
    print(json.dumps(results, indent=2))
    if path:
        with open(path, "w") as handle:
            json.dump(results, handle, indent=2)
