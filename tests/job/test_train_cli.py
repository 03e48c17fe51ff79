"""``gaussprobe train`` end to end: real data, real store, console script."""

from __future__ import annotations

import base64
import csv
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flow.store import ArtifactStore

RunGaussprobe = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.slow

MANIFEST_FIELDS = {
    "format_version",
    "feature_names",
    "dim",
    "dtype",
    "preprocessing",
    "flow_config",
    "seed",
    "data",
    "training",
    "diagnostics",
    "baselines",
    "library_versions",
    "weights_digest",
    "reference",
    "name",
    "version",
    "created_at",
    "files",
}

REPORT_FILES = {
    "report/index.html",
    "report/scatter.png",
    "report/marginals.png",
    "report/qq.png",
    "report/nll.png",
}

REFERENCE_TOLERANCE = 1e-4
"""Allowed difference of reloaded outputs on the reference rows (float32)."""


def _train(
    run_gaussprobe: RunGaussprobe, store: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    result = run_gaussprobe("train", "--store", str(store), *args)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def _check_published(store: Path, ref: str) -> dict[str, Any]:
    artifact_store = ArtifactStore(store, read_only=True)
    assert artifact_store.verify() == []
    version = artifact_store.open(ref)
    manifest = dict(version.manifest)
    assert MANIFEST_FIELDS.difference(manifest) == set()
    assert {*REPORT_FILES, "model.keras"}.difference(manifest["files"]) == set()
    return manifest


def _check_reference(store: Path, ref: str) -> None:
    version = ArtifactStore(store, read_only=True).open(ref)
    flow_model = version.load_flow()
    reference = version.manifest["reference"]
    x = np.asarray(reference["x"], dtype=version.manifest["dtype"])
    assert x.shape == (8, version.manifest["dim"])
    z = np.asarray(flow_model(x), dtype=np.float64)
    log_prob = np.asarray(flow_model.log_prob(x), dtype=np.float64)
    np.testing.assert_allclose(z, reference["z"], atol=REFERENCE_TOLERANCE)
    np.testing.assert_allclose(
        log_prob, reference["log_prob"], atol=REFERENCE_TOLERANCE
    )


def test_moons_publishes_verified_version(
    run_gaussprobe: RunGaussprobe, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    result = _train(
        run_gaussprobe, store, "moons", "--epochs", "3", "--alias", "staging"
    )
    assert "published moons:1" in result.stdout
    assert re.search(r"Gaussianization flow\s+-?\d+\.\d+", result.stdout)
    assert "full-covariance Gaussian" in result.stdout
    assert "Gaussian mixture (10 components)" in result.stdout
    assert re.search(r"epoch 3/3: train NLL -?\d", result.stderr)

    manifest = _check_published(store, "moons@staging")
    assert manifest["version"] == 1
    assert manifest["feature_names"] == ["x0", "x1"]
    assert manifest["dim"] == 2
    assert manifest["dtype"] == "float32"
    assert manifest["data"]["num_rows"] == 4000
    assert manifest["data"]["num_test"] == 800
    assert re.fullmatch(r"[0-9a-f]{64}", manifest["data"]["fingerprint_sha256"])
    assert manifest["preprocessing"]["dequantization"]["columns"] == []
    assert manifest["flow_config"]["standardize"] is True
    assert manifest["training"]["epochs_run"] == 3
    assert len(manifest["training"]["val_loss"]) == 3
    assert manifest["weights_digest"].startswith("sha256:")
    for key in ("flow", "gaussian", "gmm"):
        assert np.isfinite(manifest["baselines"][key]["mean_nll"])
    _check_reference(store, "moons:1")

    page = (store / "moons" / "1" / "report" / "index.html").read_text("utf-8")
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 4
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    assert "Held-out mean negative log-likelihood" in page


def test_adult_six_columns(run_gaussprobe: RunGaussprobe, tmp_path: Path) -> None:
    store = tmp_path / "store"
    result = _train(
        run_gaussprobe, store, "adult", "--epochs", "1", "--batch-size", "1024"
    )
    assert "published adult:1" in result.stdout
    manifest = _check_published(store, "adult")
    assert manifest["feature_names"] == [
        "age",
        "fnlwgt",
        "education_num",
        "capital_gain",
        "capital_loss",
        "hr_per_week",
    ]
    assert manifest["data"]["num_rows"] == 30162
    dequantized = manifest["preprocessing"]["dequantization"]["columns"]
    assert [entry["name"] for entry in dequantized] == manifest["feature_names"]
    assert all(entry["quantum"] == 1.0 for entry in dequantized)
    assert "CC BY 4.0" in manifest["data"]["source"]["attribution"]
    _check_reference(store, "adult:1")


def test_german_credit_is_reproducible(
    run_gaussprobe: RunGaussprobe, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    args = ("german_credit", "--columns", "credit_amount,duration,age", "--epochs", "2")
    _train(run_gaussprobe, store, *args)
    _train(run_gaussprobe, store, *args)
    first = _check_published(store, "german_credit:1")
    second = _check_published(store, "german_credit:2")
    assert first["feature_names"] == ["credit_amount", "duration", "age"]
    assert first["data"]["num_rows"] == 1000
    assert first["data"]["fingerprint_sha256"] == second["data"]["fingerprint_sha256"]
    assert first["weights_digest"] == second["weights_digest"]
    assert first["reference"] == second["reference"]
    stored_alias = ArtifactStore(store, read_only=True).aliases("german_credit")
    assert stored_alias["latest"] == 2


def test_csv_with_drop_missing_and_env_store(
    run_gaussprobe: RunGaussprobe, tmp_path: Path
) -> None:
    store = tmp_path / "env-store"
    rng = np.random.default_rng(0)
    path = tmp_path / "loans.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["amount", "rate", "region"])
        for index in range(300):
            amount = "" if index % 30 == 0 else f"{rng.lognormal(8.0, 0.5):.2f}"
            writer.writerow([amount, f"{rng.normal(5.0, 1.0):.6f}", "north"])
    result = run_gaussprobe(
        "train",
        str(path),
        "--columns",
        "amount,rate",
        "--drop-missing",
        "--epochs",
        "2",
        "--name",
        "loans",
        env={"GAUSSPROBE_STORE": str(store)},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    manifest = _check_published(store, "loans")
    assert manifest["preprocessing"]["dropped_rows"] == 10
    assert manifest["data"]["num_rows"] == 290
    assert manifest["data"]["source"]["kind"] == "csv"
    dequantized = manifest["preprocessing"]["dequantization"]["columns"]
    assert dequantized == []
    json.dumps(manifest, allow_nan=False)
