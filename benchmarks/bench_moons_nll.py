"""Held-out NLL and training time of moons flows.

Trains on ``make_moons(4000, noise=0.07, random_state=0)`` standardised, and
scores ``make_moons(4000, noise=0.07, random_state=1)`` standardised with the
training mean and std. Reference points on this held-out set: the true
density 1.454 nats, a 30-component full-covariance GMM 1.471.

Run::

    .venv/bin/python benchmarks/bench_moons_nll.py [--seeds 0 1 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from _common import moons_split

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
    "documented default (16 blocks, smoothing, long average)": {
        "num_blocks": 16,
        "num_components": 10,
        "epochs": 500,
        "batch_size": 256,
        "lr": 2e-3,
        "validation_split": 0.0,
        "patience": 100,
        "seed": 0,
        "min_scale": 0.15,
        "input_noise": 0.03,
        "ema_decay": 0.998,
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        help="seeds to train every configuration with (default: 0)",
    )
    args = parser.parse_args()

    train, held_out = moons_split()

    results = []
    for label, settings in CONFIGURATIONS.items():
        for seed in args.seeds:
            seeded = {**settings, "seed": seed}
            started = time.perf_counter()
            model, history = flow.fit_and_freeze(train, **seeded)
            seconds = time.perf_counter() - started
            log_prob = np.asarray(model.log_prob(held_out), dtype=np.float64)
            nll = -float(np.mean(log_prob))
            results.append(
                {
                    "configuration": label,
                    "settings": seeded,
                    "held_out_nll": nll,
                    "train_seconds": seconds,
                    "epochs_run": history["epochs_run"],
                    "best_epoch": history["best_epoch"],
                }
            )
            print(
                f"{label}, seed {seed}: held-out NLL {nll:.4f} nats, {seconds:.0f} s, "
                f"{history['epochs_run']} epochs (best {history['best_epoch']})",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
