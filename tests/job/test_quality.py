"""Held-out NLL of the flow against the baselines with the documented settings.

The hyperparameters are those of docs/training.md and
benchmarks/bench_datasets.py; this test retrains with them through the
console script and checks the stored comparison.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from flow.store import ArtifactStore

RunGaussprobe = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.slow

DOCUMENTED_RUNS = {
    "german_credit": ["--epochs", "60", "--batch-size", "128", "--patience", "10"],
    "adult": [
        "--epochs",
        "200",
        "--batch-size",
        "512",
        "--lr",
        "0.003",
        "--patience",
        "20",
    ],
}


@pytest.mark.parametrize(
    "dataset",
    [
        pytest.param("german_credit", id="german_credit"),
        pytest.param(
            "adult",
            id="adult",
            # TODO: the flow beats the Gaussian (25.65 vs 41.11 nats) but not the
            # 10-component mixture (25.12 nats) on Adult, whose dequantized
            # columns are stacks of width-1 atoms (capital_gain is 0 in 92% of
            # rows) that full-covariance mixture components fit jointly. The
            # validation NLL still falls at epoch 200, so longer runs may close it.
            marks=pytest.mark.xfail(
                reason="flow held-out NLL 25.65 > GMM-10 25.12 on Adult", strict=True
            ),
        ),
    ],
)
def test_flow_beats_baselines_on_held_out_rows(
    run_gaussprobe: RunGaussprobe, tmp_path: Path, dataset: str
) -> None:
    store = tmp_path / "store"
    result = run_gaussprobe(
        "train", "--store", str(store), dataset, *DOCUMENTED_RUNS[dataset]
    )
    assert result.returncode == 0, result.stderr[-4000:]
    manifest = ArtifactStore(store, read_only=True).open(dataset).manifest

    baselines = manifest["baselines"]
    flow_nll = baselines["flow"]["mean_nll"]
    assert baselines["split"] == "test"
    assert baselines["num_rows"] == manifest["data"]["num_test"]
    assert flow_nll < baselines["gaussian"]["mean_nll"]

    test_diagnostics = manifest["diagnostics"]["test"]
    assert test_diagnostics["num_rows"] == manifest["data"]["num_test"]
    assert test_diagnostics["mean_nll"] == pytest.approx(flow_nll)
    per_feature = test_diagnostics["per_feature"]
    for statistic in ("mean", "variance", "skew", "excess_kurtosis", "ks_statistic"):
        assert len(per_feature[statistic]) == manifest["dim"]
        assert np.all(np.isfinite(per_feature[statistic]))
    assert np.all(np.abs(per_feature["mean"]) < 0.5)
    assert np.all(np.abs(np.asarray(per_feature["variance"]) - 1.0) < 0.5)

    # Last, so that the checks above also run where this comparison is known
    # to fail (the xfail case).
    assert flow_nll < baselines["gmm"]["mean_nll"]
