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
        "40",
        "--batch-size",
        "512",
        "--lr",
        "0.003",
        "--patience",
        "10",
    ],
}


@pytest.mark.parametrize(
    "dataset",
    [
        pytest.param("german_credit", id="german_credit"),
        pytest.param("adult", id="adult"),
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

    assert flow_nll < baselines["gmm"]["mean_nll"]
