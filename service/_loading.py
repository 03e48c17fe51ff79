"""Start-up loading: open, verify, compile and self-test every configured model."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from flow import MappingLimitError
from service._lifecycle import Phase, ServiceState
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


# The bucket compiled for transform and invert before the model is ready. It
# fits the 8 reference rows of the training job's self-test in one call. A
# single row padded to 16 rows costs 233 us instead of 116 us for the default
# moons flow, small next to about 1 ms of HTTP overhead.
STARTUP_BUCKET_ROWS = 16
STARTUP_FUNCTIONS = ("transform", "invert")
# One function per kernel of flow.CompiledFlow.
WARMUP_FUNCTIONS = ("transform", "invert", "vjp")


class _StepTimes:
    """Wall-clock seconds of each named start-up step."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - began

    def summary(self) -> str:
        return ", ".join(
            f"{name} {value:.2f} s" for name, value in self.seconds.items()
        )


def load_model(store: Any, ref: str, settings: Settings) -> LoadedModel:
    """Verify, load, compile the start-up bucket and self-test one model.

    The other buckets compile later in :func:`finish_warmup`, while the model
    already serves requests.

    Raises:
        ModelLoadError: Any check failed; the message names the file.
        flow.store.StoreError: The ref cannot be resolved or a hash differs.
    """
    from flow import CompiledFlow, weights_digest

    began = time.perf_counter()
    times = _StepTimes()
    with times.step("verify"):
        version = store.open(ref)
    manifest = version.manifest
    with times.step("load"):
        flow_model = version.load_flow()
    with times.step("digest"):
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
    # Until finish_warmup is done, requests run on compiled buckets only, so
    # no request waits for XLA to compile a bucket the warm-up will compile.
    runner = CompiledFlow(flow_model, compile_on_demand=False)
    startup_bucket = _startup_bucket(runner.buckets, _warmup_rows(settings, runner))
    with times.step("compile"):
        for function in STARTUP_FUNCTIONS:
            runner.compile_bucket(function, startup_bucket)
    try:
        with times.step("self-test"):
            self_test = run_self_test(runner, manifest.get("reference"), dtype)
    except SelfTestError as error:
        raise ModelLoadError(str(error), MANIFEST_FILE) from None
    with times.step("report"):
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
        "loaded model %s version %d digest %s dtype %s dim %d in %.2f s (%s; "
        "%d programs for %d rows compiled)",
        version.name,
        version.version,
        digest,
        dtype,
        dim,
        load_seconds,
        times.summary(),
        runner.num_compilations,
        startup_bucket,
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


def _warmup_rows(settings: Settings, runner: Any) -> int:
    # Batches are cut into chunks of runner.max_chunk rows, so buckets up to
    # that size cover every batch the service accepts.
    return int(min(settings.warmup_max_rows, settings.max_batch_rows, runner.max_chunk))


def _startup_bucket(buckets: list[int], max_rows: int) -> int:
    limit = min(STARTUP_BUCKET_ROWS, max_rows)
    return max((size for size in buckets if size <= limit), default=buckets[0])


def warmup_order(buckets: list[int], startup_bucket: int, max_rows: int) -> list[int]:
    """Return the buckets up to ``max_rows`` in the order finish_warmup compiles them.

    The start-up bucket comes first, for the kernels it still lacks. Larger
    buckets come before smaller ones, because a missing large bucket costs
    batch throughput (several small calls) while a missing small one costs
    only padding.
    """
    sizes = [size for size in buckets if size <= max_rows or size == buckets[0]]
    rest = sorted((size for size in sizes if size != startup_bucket), reverse=True)
    return [startup_bucket, *rest]


def finish_warmup(
    model: LoadedModel, settings: Settings, state: ServiceState
) -> tuple[int, float]:
    """Compile the buckets that load_model left out, up to the warm-up cap.

    Then buckets above the cap compile on their first use, as without a
    service. Stops early when the service starts draining.

    Returns:
        The number of programs compiled and the seconds it took.
    """
    runner = model.runner
    began = time.perf_counter()
    compiled = 0
    max_rows = _warmup_rows(settings, runner)
    startup_bucket = _startup_bucket(runner.buckets, max_rows)
    for size in warmup_order(runner.buckets, startup_bucket, max_rows):
        for function in WARMUP_FUNCTIONS:
            if state.phase is Phase.DRAINING:
                return compiled, time.perf_counter() - began
            compiled += runner.compile_bucket(function, size)
    runner.compile_on_demand = True
    return compiled, time.perf_counter() - began


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
        except (StoreError, ModelLoadError, MappingLimitError) as error:
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
    if settings.ready_after_warmup:
        _finish_all_warmups(settings, registry, state)
    release_free_memory()
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
    if not settings.ready_after_warmup:
        _finish_all_warmups(settings, registry, state)


def _finish_all_warmups(
    settings: Settings, registry: ModelRegistry, state: ServiceState
) -> None:
    for model in registry.models():
        try:
            compiled, seconds = finish_warmup(model, settings, state)
        except Exception:
            # The model keeps serving from the buckets compiled so far.
            logger.exception(
                "warm-up of model %s version %d failed; batches use the "
                "compiled buckets %s",
                model.name,
                model.version,
                model.runner.compiled_buckets(),
            )
            continue
        logger.info(
            "warm-up of model %s version %d compiled %d programs in %.2f s; "
            "compiled buckets %s",
            model.name,
            model.version,
            compiled,
            seconds,
            model.runner.compiled_buckets(),
        )
    release_free_memory()
    state.warmup_finished = state.phase is not Phase.DRAINING


def release_free_memory() -> None:
    """Return the C heap's free pages to the operating system (glibc only).

    XLA compilation allocates and frees hundreds of MB through malloc, and
    glibc keeps most freed pages mapped. After the warm-up of the default
    moons flow, malloc_trim cut the resident memory of a process from about
    990 MB to 670 MB in a test on the development machine.
    """
    library = ctypes.util.find_library("c")
    if library is None:
        return
    try:
        trim = ctypes.CDLL(library).malloc_trim
    except (OSError, AttributeError):
        logger.debug("malloc_trim is not available in %s", library)
        return
    trim(0)
