"""Held-out NLL of the flow against Gaussian and GMM baselines on real data sets.

Runs the training job with the documented hyperparameters on the shipped Adult
and German Credit data sets (and optionally moons) into a temporary store. It
prints one Markdown table row per run with the held-out mean NLL of the flow,
the full-covariance Gaussian and the 10-component Gaussian mixture. All three
are in nats per row, in raw units, on the same dequantized rows. The row also
gives the epochs run and the training and total wall-clock times.

Usage::

    .venv/bin/python benchmarks/bench_datasets.py            # adult, german_credit
    .venv/bin/python benchmarks/bench_datasets.py --datasets moons adult
    .venv/bin/python benchmarks/bench_datasets.py --json results.json

The hyperparameters are those in ``BENCHMARK_RUNS``; docs/training.md records
the results of the last run with the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from flow.job import TrainSettings  # noqa: E402
from flow.job._progress import EpochProgress  # noqa: E402
from flow.job._train import train  # noqa: E402

BENCHMARK_RUNS: dict[str, TrainSettings] = {
    "adult": TrainSettings(
        source="adult",
        epochs=40,
        batch_size=512,
        learning_rate=0.003,
        patience=10,
        seed=0,
    ),
    "german_credit": TrainSettings(
        source="german_credit", epochs=60, batch_size=128, patience=10, seed=0
    ),
    "moons": TrainSettings(source="moons", epochs=60, batch_size=256, seed=0),
}
"""Documented hyperparameters per data set (the CLI flags of docs/training.md)."""


def run_benchmark(name: str, store_root: Path, seed: int | None) -> dict[str, Any]:
    """Train one data set and return its held-out NLLs and timings."""
    settings = BENCHMARK_RUNS[name]
    if seed is not None:
        settings = replace(settings, seed=seed)
    started = time.perf_counter()
    result = train(settings, store_root, progress=EpochProgress(settings.epochs))
    wall_seconds = time.perf_counter() - started
    manifest = result.manifest
    baselines = manifest["baselines"]
    training = manifest["training"]
    return {
        "dataset": name,
        "seed": settings.seed,
        "rows": manifest["data"]["num_rows"],
        "test_rows": manifest["data"]["num_test"],
        "features": manifest["dim"],
        "flow_nll": baselines["flow"]["mean_nll"],
        "gaussian_nll": baselines["gaussian"]["mean_nll"],
        "gmm_nll": baselines["gmm"]["mean_nll"],
        "epochs_run": training["epochs_run"],
        "best_epoch": training["best_epoch"],
        "train_seconds": training["train_seconds"],
        "wall_seconds": wall_seconds,
        "test_ks_max": max(
            manifest["diagnostics"]["test"]["per_feature"]["ks_statistic"]
        ),
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    """Return the results as a Markdown table."""
    header = (
        "| data set | seed | rows (test) | d | flow NLL | Gaussian NLL | GMM-10 NLL "
        "| epochs (best) | train s | total s | max KS |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    lines = [header]
    for row in rows:
        lines.append(
            f"| {row['dataset']} | {row['seed']} | {row['rows']} ({row['test_rows']}) "
            f"| {row['features']} | {row['flow_nll']:.4f} | {row['gaussian_nll']:.4f} "
            f"| {row['gmm_nll']:.4f} | {row['epochs_run']} ({row['best_epoch']}) "
            f"| {row['train_seconds']:.0f} | {row['wall_seconds']:.0f} "
            f"| {row['test_ks_max']:.3f} |"
        )
    return "\n".join(lines)


def main() -> int:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets",
        nargs="+",
        choices=sorted(BENCHMARK_RUNS),
        default=["adult", "german_credit"],
        help="data sets to run (default: adult german_credit)",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[None],
        help="seeds to run each data set with (default: the documented seed 0)",
    )
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    rows = []
    with tempfile.TemporaryDirectory(prefix="gaussprobe-bench-") as store_root:
        for name in args.datasets:
            for seed in args.seeds:
                rows.append(run_benchmark(name, Path(store_root), seed))
    print(format_table(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    flow_wins = all(
        row["flow_nll"] < min(row["gaussian_nll"], row["gmm_nll"]) for row in rows
    )
    print(f"flow better than both baselines on every run: {flow_wins}")
    return 0 if flow_wins else 1


if __name__ == "__main__":
    raise SystemExit(main())
