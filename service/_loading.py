"""Start-up loading: open, verify, warm up and self-test every configured model."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from service._lifecycle import ServiceState
from service._metrics import ServiceMetrics
from service._registry import LoadedModel, ModelRegistry
from service._selftest import SelfTestError, run_self_test
from service._settings import Settings

__all__ = ["ModelLoadError", "load_all_models", "resolve_refs"]

logger = logging.getLogger(__name__)

REPORT_PREFIX = "report/"
MODEL_FILE = "model.keras"
MANIFEST_FILE = "manifest.json"


class ModelLoadError(RuntimeError):
    """A model failed verification, loading or its self-test.

    Attributes:
        file: Store file the failure concerns, when known.
    """

    def __init__(self, message: str, file: str | None = None) -> None:
        super().__init__(message)
        self.file = file


def resolve_refs(settings: Settings, store: Any) -> list[str]:
    """Return the refs to serve: the configured ones, or every model's ``latest``."""
    if settings.models:
        return list(settings.models)
    return [f"{name}@latest" for name in sorted(store.list_models())]


def _read_report(version: Any) -> dict[str, bytes]:
    """Read the ``report/`` files, re-checking each against its manifest hash."""
    files: dict[str, bytes] = {}
    for relpath, entry in sorted(version.manifest.get("files", {}).items()):
        if not relpath.startswith(REPORT_PREFIX):
            continue
        data = version.file(relpath).read_bytes()
        if hashlib.sha256(data).hexdigest() != str(
            entry.get("sha256", "")
        ).removeprefix("sha256:"):
            raise ModelLoadError(
                f"{relpath} changed after verification; restore the store", relpath
            )
        files[relpath[len(REPORT_PREFIX) :]] = data
    return files


def load_model(store: Any, ref: str, settings: Settings) -> LoadedModel:
    """Verify, load, warm up and self-test one model.

    Raises:
        ModelLoadError: Any check failed; the message names the file.
        flow.store.StoreError: The ref cannot be resolved or a hash differs.
    """
    from flow import CompiledFlow, weights_digest

    began = time.perf_counter()
    version = store.open(ref)
    manifest = version.manifest
    flow_model = version.load_flow()
    digest = weights_digest(flow_model)
    expected_digest = manifest.get("weights_digest")
    if digest != expected_digest:
        raise ModelLoadError(
            f"{MODEL_FILE} of {version.name}:{version.version} has weights digest "
            f"{digest} but {MANIFEST_FILE} records {expected_digest}; the file does "
            "not hold the published weights",
            MODEL_FILE,
        )
    dtype = np.dtype(flow_model.feature_dtype)
    dim = int(flow_model.dim)
    declared_dim = manifest.get("dim")
    if declared_dim is not None and int(declared_dim) != dim:
        raise ModelLoadError(
            f"{MANIFEST_FILE} declares dim {declared_dim} but {MODEL_FILE} has "
            f"dim {dim}",
            MANIFEST_FILE,
        )
    runner = CompiledFlow(flow_model)
    # Batches are cut into chunks of runner.max_chunk rows, so warming the
    # buckets up to that size covers every batch the service accepts.
    warmup_rows = min(
        settings.warmup_max_rows, settings.max_batch_rows, runner.max_chunk
    )
    warm_began = time.perf_counter()
    runner.warmup(max_rows=warmup_rows)
    warm_seconds = time.perf_counter() - warm_began
    try:
        self_test = run_self_test(runner, manifest.get("reference"), dtype)
    except SelfTestError as error:
        raise ModelLoadError(str(error), MANIFEST_FILE) from None
    report_files = _read_report(version)
    aliases = tuple(
        sorted(
            alias
            for alias, target in store.aliases(version.name).items()
            if target == version.version
        )
    )
    load_seconds = time.perf_counter() - began
    logger.info(
        "loaded model %s version %d digest %s dtype %s dim %d (warm-up of batches "
        "up to %d rows %.2f s, total %.2f s, %d compilations)",
        version.name,
        version.version,
        digest,
        dtype,
        dim,
        warmup_rows,
        warm_seconds,
        load_seconds,
        runner.num_compilations,
    )
    return LoadedModel(
        name=version.name,
        version=version.version,
        aliases=aliases,
        manifest=manifest,
        flow=flow_model,
        runner=runner,
        digest_at_load=digest,
        dtype=dtype,
        dim=dim,
        report_files=report_files,
        load_seconds=load_seconds,
        self_test=self_test,
    )


def _compilation_counter(runner: Any) -> Callable[[], int]:
    return lambda: int(runner.num_compilations)


def load_all_models(
    settings: Settings,
    registry: ModelRegistry,
    state: ServiceState,
    metrics: ServiceMetrics,
) -> None:
    """Load every configured model, then mark the service ready or failed.

    Runs in a background thread. Every failure is logged with the file it
    concerns. One failed model fails readiness for the whole service, but the
    other models are still loaded, so their problems are reported too.
    """
    from flow.store import ArtifactStore, StoreError, parse_ref

    began = time.perf_counter()
    logger.info("loading models from store %s (read-only)", settings.store)
    try:
        store = ArtifactStore(settings.store, read_only=True)
        refs = resolve_refs(settings, store)
    except (StoreError, OSError) as error:
        message = f"cannot read store {settings.store}: {error}"
        logger.error("%s", message)
        state.mark_failed(message)
        return
    if not refs:
        message = (
            f"store {settings.store} has no models; publish one with "
            "'gaussprobe train' or pass --store pointing at a store that has models"
        )
        logger.error("%s", message)
        state.mark_failed(message)
        return
    for ref in refs:
        registry.set_loading(ref)
    try:
        registry.default_name = parse_ref(refs[0]).name
    except StoreError as error:
        registry.default_name = None
        logger.error("model reference %r is invalid: %s", refs[0], error)
    failures: list[str] = []
    for ref in refs:
        try:
            model = load_model(store, ref, settings)
        except (StoreError, ModelLoadError) as error:
            file = getattr(error, "file", None)
            message = f"{ref}: {error}" + (f" (file {file})" if file else "")
            logger.error("model %s failed to load: %s", ref, message)
            registry.set_failed(ref, message)
            failures.append(message)
            continue
        except Exception as error:
            message = f"{ref}: unexpected {type(error).__name__}: {error}"
            logger.exception("model %s failed to load", ref)
            registry.set_failed(ref, message)
            failures.append(message)
            continue
        registry.add(ref, model)
        metrics.model_info.labels(
            model.name, str(model.version), model.digest_at_load, str(model.dtype)
        ).set(1)
        metrics.load_seconds.labels(model.name, str(model.version)).set(
            model.load_seconds
        )
        metrics.track_compilations(
            model.name, model.version, _compilation_counter(model.runner)
        )
    if failures:
        state.mark_failed("; ".join(failures))
        logger.error(
            "service is not ready: %d of %d model(s) failed to load",
            len(failures),
            len(refs),
        )
        return
    state.mark_ready()
    metrics.ready.set(1)
    logger.info(
        "ready: %d model(s) loaded in %.2f s, default model %s; "
        "API docs at http://%s:%d/docs",
        len(refs),
        time.perf_counter() - began,
        registry.default_name,
        settings.host,
        settings.port,
    )
