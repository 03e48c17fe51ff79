"""Train a flow, evaluate it against baselines and publish it to the store."""

from __future__ import annotations

import logging
import platform
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from flow.job._baselines import fit_baselines
from flow.job._errors import TrainingInputError
from flow.job._figures import render_figures
from flow.job._prepare import PreparedData, prepare_data, validation_rows
from flow.job._progress import EpochProgress
from flow.job._report import render_report_html
from flow.job._settings import TrainSettings

__all__ = ["MANIFEST_FORMAT_VERSION", "NUM_REFERENCE_ROWS", "TrainResult", "train"]

logger = logging.getLogger(__name__)

MANIFEST_FORMAT_VERSION = 1
"""Version of the manifest layout written by this job."""

NUM_REFERENCE_ROWS = 8
"""Held-out raw rows stored with their expected z and log_prob for self-tests."""

DIAGNOSTICS_SAMPLE_STREAM = 4
"""Random stream id (mixed with the seed) of the training-diagnostics sample."""

MODEL_FILE = "model.keras"
REPORT_DIR = "report"


@dataclass(frozen=True)
class TrainResult:
    """Outcome of a published training run.

    Attributes:
        name: Model name in the store.
        version: Version assigned by the store.
        path: Directory of the published version.
        manifest: The manifest as stored.
    """

    name: str
    version: int
    path: Path
    manifest: dict[str, Any]


def train(
    settings: TrainSettings, store_root: Path, progress: EpochProgress | None = None
) -> TrainResult:
    """Run one training job and publish the frozen flow with its report.

    Every data and option check runs before training starts, and nothing is
    written to the store unless training, evaluation and report rendering all
    succeed. The ``alias`` option is applied after the publish.

    Args:
        settings: Options of the run.
        store_root: Root directory of the artifact store.
        progress: Per-epoch progress callback; a default one is created if None.

    Returns:
        The published version.

    Raises:
        TrainingInputError: for invalid data or options (nothing is published).
        StoreError: if the store rejects the publish or the alias.
    """
    settings.validate()
    if store_root.exists() and not store_root.is_dir():
        raise TrainingInputError(
            f"store path {str(store_root)!r} exists and is not a directory; pass "
            "--store with a directory (it is created if missing)"
        )
    prepared = prepare_data(settings)
    name = settings.name if settings.name is not None else prepared.dataset_name

    from flow.store import ArtifactStore

    store = ArtifactStore(store_root)
    logger.info(
        "training %r on %d rows x %d features (%d held out), dtype %s",
        name,
        prepared.train_index.size,
        len(prepared.feature_names),
        prepared.test_index.size,
        settings.dtype,
    )
    flow_model, history = _fit(settings, prepared, progress)
    manifest, files_in_memory = _evaluate(settings, prepared, flow_model, history, name)

    with tempfile.TemporaryDirectory(prefix="gaussprobe-train-") as workdir:
        model_path = Path(workdir) / MODEL_FILE
        flow_model.save(str(model_path))
        files: dict[str, Path | bytes] = {MODEL_FILE: model_path, **files_in_memory}
        version = store.publish(name, files=files, manifest=manifest)
    if settings.alias is not None:
        store.set_alias(name, version.version, settings.alias)
    logger.info("published %s:%d at %s", name, version.version, version.path)
    return TrainResult(
        name=name,
        version=version.version,
        path=Path(version.path),
        manifest=dict(version.manifest),
    )


def _fit(
    settings: TrainSettings,
    prepared: PreparedData,
    progress: EpochProgress | None,
) -> tuple[Any, dict[str, Any]]:
    import flow

    if settings.dtype == "float64":
        flow.enable_float64()
    reporter = progress if progress is not None else EpochProgress(settings.epochs)
    try:
        flow_model, history = flow.fit_and_freeze(
            prepared.train,
            num_blocks=settings.num_blocks,
            num_components=settings.num_components,
            marginal_first=settings.marginal_first,
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            lr=settings.learning_rate,
            validation_split=settings.validation_split,
            patience=settings.patience,
            seed=settings.seed,
            verbose=0,
            standardize=True,
            dtype=settings.dtype,
            progress=reporter,
        )
    finally:
        reporter.close()
    if not flow.is_fully_frozen(flow_model):
        raise RuntimeError("fit_and_freeze returned a flow with trainable weights")
    return flow_model, dict(history)


def _evaluate(
    settings: TrainSettings,
    prepared: PreparedData,
    flow_model: Any,
    history: dict[str, Any],
    name: str,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Build the manifest and the report files of a trained flow."""
    import flow

    train_rows = prepared.train
    test_rows = prepared.test
    logger.info("computing diagnostics on %d held-out rows", test_rows.shape[0])
    test_diagnostics = flow.compute_diagnostics(flow_model, test_rows)
    train_sample = _sample_rows(train_rows, test_rows.shape[0], settings.seed)
    logger.info("computing diagnostics on %d training rows", train_sample.shape[0])
    train_diagnostics = flow.compute_diagnostics(flow_model, train_sample)
    train_diagnostics["sampled_from_rows"] = int(train_rows.shape[0])
    diagnostics = {"train": train_diagnostics, "test": test_diagnostics}
    logger.info("fitting Gaussian and Gaussian-mixture baselines")
    baselines: dict[str, Any] = {
        "split": "test",
        "num_rows": int(test_rows.shape[0]),
        "units": "raw data units after dequantization",
        "flow": {"mean_nll": float(diagnostics["test"]["mean_nll"])},
        **fit_baselines(
            train_rows.astype(np.float64), test_rows.astype(np.float64), settings.seed
        ),
    }
    num_validation = validation_rows(
        prepared.train_index.size, settings.validation_split
    )
    manifest: dict[str, Any] = {
        "format_version": MANIFEST_FORMAT_VERSION,
        "feature_names": prepared.feature_names,
        "dim": len(prepared.feature_names),
        "dtype": settings.dtype,
        "preprocessing": _preprocessing_record(settings, prepared, flow_model),
        "flow_config": flow_model.get_config(),
        "seed": settings.seed,
        "data": {
            "source": prepared.source,
            "fingerprint_sha256": prepared.fingerprint,
            "fingerprint_shape": list(prepared.used.shape),
            "fingerprint_dtype": str(prepared.used.dtype),
            "num_rows": int(prepared.used.shape[0]),
            "num_train": int(prepared.train_index.size) - num_validation,
            "num_validation": num_validation,
            "num_test": int(prepared.test_index.size),
        },
        "training": _json_history(history),
        "hyperparameters": settings.to_manifest(),
        "diagnostics": diagnostics,
        "baselines": baselines,
        "library_versions": _library_versions(),
        "weights_digest": flow.weights_digest(flow_model),
        "reference": _reference(prepared, flow_model, settings.dtype),
    }

    logger.info("rendering report figures")
    z_test = np.asarray(flow_model(test_rows))
    figures = render_figures(test_rows, z_test, history, prepared.feature_names)
    report_manifest = {"name": name, **manifest}
    files: dict[str, bytes] = {
        f"{REPORT_DIR}/{filename}": png for filename, png in figures.items()
    }
    files[f"{REPORT_DIR}/index.html"] = render_report_html(
        report_manifest, figures
    ).encode("utf-8")
    return manifest, files


def _preprocessing_record(
    settings: TrainSettings, prepared: PreparedData, flow_model: Any
) -> dict[str, Any]:
    mean, std = _standardization_statistics(flow_model)
    return {
        "standardization": {
            "mean": mean,
            "std": std,
            "where": "first layer of the model (fixed Standardize bijector)",
            "why": "the model takes raw rows; log_prob includes -sum(log std)",
        },
        "dequantization": {
            "mode": settings.dequantize,
            "tie_fraction": settings.tie_fraction,
            "columns": [entry.to_manifest() for entry in prepared.dequantization],
            "why": (
                "integer-valued or tied columns make a continuous flow's "
                "likelihood unbounded; noise is added to training and held-out "
                "rows only, never at serving time"
            ),
        },
        "dropped_rows": prepared.dropped_rows,
        "missing_values": "dropped" if settings.drop_missing else "rejected",
    }


def _standardization_statistics(flow_model: Any) -> tuple[list[float], list[float]]:
    """Return the mean and std stored in the flow's fixed Standardize layer."""
    from flow import Standardize

    for layer in flow_model.bijectors:
        if isinstance(layer, Standardize):
            mean = np.asarray(layer.mean.value, dtype=np.float64)
            scale = np.asarray(layer.scale.value, dtype=np.float64)
            return mean.tolist(), scale.tolist()
    raise RuntimeError("the trained flow has no Standardize layer")


def _sample_rows(rows: np.ndarray, num_rows: int, seed: int) -> np.ndarray:
    """Return ``num_rows`` rows drawn without replacement (all rows if fewer).

    Training diagnostics run on as many rows as the test split, so the flow's
    jit-compiled kernels, which are compiled once per input shape, are reused
    instead of compiled again for a second shape.
    """
    if rows.shape[0] <= num_rows:
        return rows
    rng = np.random.default_rng([seed, DIAGNOSTICS_SAMPLE_STREAM])
    return rows[np.sort(rng.choice(rows.shape[0], size=num_rows, replace=False))]


def _reference(
    prepared: PreparedData, flow_model: Any, dtype: str
) -> dict[str, list[Any]]:
    """Return held-out raw rows with the flow's z and log_prob for them.

    The raw rows replace the first rows of the test batch so the flow runs on
    the already compiled test-batch shape. Every row is computed independently,
    so the other rows do not change the result beyond float round-off.
    """
    rows = prepared.test_index[:NUM_REFERENCE_ROWS]
    x = prepared.raw[rows].astype(dtype)
    batch = prepared.test.copy()
    batch[: x.shape[0]] = x
    z = np.asarray(flow_model(batch), dtype=np.float64)[: x.shape[0]]
    log_prob = np.asarray(flow_model.log_prob(batch), dtype=np.float64)[: x.shape[0]]
    return {
        "x": x.astype(np.float64).tolist(),
        "z": z.tolist(),
        "log_prob": log_prob.tolist(),
    }


def _json_history(history: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key, value in history.items():
        if isinstance(value, list | tuple | np.ndarray):
            record[key] = [float(item) for item in value]
        elif isinstance(value, np.integer | int) and not isinstance(value, bool):
            record[key] = int(value)
        elif isinstance(value, np.floating | float):
            record[key] = float(value)
        else:
            record[key] = value
    return record


def _library_versions() -> dict[str, str]:
    import jax
    import keras

    try:
        gaussprobe_version = metadata.version("gaussprobe")
    except metadata.PackageNotFoundError:
        gaussprobe_version = "unknown (not installed)"
    return {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "jax": jax.__version__,
        "numpy": np.__version__,
        "gaussprobe": gaussprobe_version,
    }
