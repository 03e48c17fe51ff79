"""Held-out NLL and training time of moons flows.

Trains on ``make_moons(4000, noise=0.07, random_state=0)`` standardised, and
scores ``make_moons(4000, noise=0.07, random_state=1)`` standardised with the
training mean and std. Reference points on this held-out set: the true
density 1.454 nats, a 30-component full-covariance GMM 1.471.

Run: ``.venv/bin/python benchmarks/bench_moons_nll.py [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from sklearn.datasets import make_moons

import flow

CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "reference (6 blocks, 10 components, 120 epochs)": {
        "num_blocks": 6,
        "num_components": 10,
        "epochs": 120,
        "batch_size": 256,
        "lr": 2e-3,
        "validation_split": 0.1,
        "patience": 15,
        "seed": 0,
    },
    "deep (12 blocks, min_scale 0.15, up to 400 epochs)": {
        "num_blocks": 12,
        "num_components": 10,
        "epochs": 400,
        "batch_size": 256,
        "lr": 2e-3,
        "validation_split": 0.1,
        "patience": 40,
        "seed": 0,
        "min_scale": 0.15,
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    train, _ = make_moons(4000, noise=0.07, random_state=0)
    held_out, _ = make_moons(4000, noise=0.07, random_state=1)
    mean, std = train.mean(axis=0), train.std(axis=0)
    train = ((train - mean) / std).astype(np.float32)
    held_out = ((held_out - mean) / std).astype(np.float32)

    results = {}
    for label, settings in CONFIGURATIONS.items():
        started = time.perf_counter()
        model, history = flow.fit_and_freeze(train, **settings)
        seconds = time.perf_counter() - started
        nll = -float(np.mean(np.asarray(model.log_prob(held_out), dtype=np.float64)))
        results[label] = {
            "settings": settings,
            "held_out_nll": nll,
            "train_seconds": seconds,
            "epochs_run": history["epochs_run"],
            "best_epoch": history["best_epoch"],
        }
        print(
            f"{label}: held-out NLL {nll:.4f} nats, {seconds:.0f} s, "
            f"{history['epochs_run']} epochs (best {history['best_epoch']})"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
