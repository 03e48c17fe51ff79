"""The app factory."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from fastapi import FastAPI

from service._context import ServiceContext
from service._errors import install_exception_handlers
from service._lifecycle import DrainController, ServiceState
from service._loading import load_all_models
from service._logging import configure_logging
from service._metrics import ServiceMetrics
from service._middleware import RequestContextMiddleware
from service._registry import ModelRegistry
from service._routes import register_routes
from service._settings import Settings

__all__ = ["API_VERSION", "create_app"]

logger = logging.getLogger(__name__)

API_VERSION = "1.0.0"
LOADER_THREAD_NAME = "gaussprobe-model-loader"

# Optional packages that keras 3 imports only when they are installed, inside
# try/except ImportError: scikit-learn in keras/src/wrappers/fixes.py and
# sklearn_wrapper.py, matplotlib in keras/src/visualization/
# plot_image_gallery.py (keras 3.15). The service uses neither. Skipping them
# cut the keras import from about 135 MB to 60 MB of RSS and from 2.5 s to
# 0.8 s on the 2-core development machine.
KERAS_OPTIONAL_IMPORTS = ("sklearn", "matplotlib")


def enable_compilation_cache(directory: Path) -> None:
    """Keep XLA executables in ``directory`` so later starts skip compiling.

    Entries are keyed by the lowered program, the jax version and the
    platform, so a cache shared by several models or processes is safe.
    """
    import jax

    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    logger.info("XLA compilation cache: %s", directory)


def import_keras_without_optional_packages() -> None:
    """Import keras while ``KERAS_OPTIONAL_IMPORTS`` appear not installed.

    A ``None`` entry in ``sys.modules`` makes ``import sklearn`` raise
    ImportError. The entries are removed again after keras is imported, so
    later code of the process can still import both packages. Does nothing
    when keras is already imported. Import ``flow`` first, which sets
    ``KERAS_BACKEND=jax``.
    """
    if "keras" in sys.modules:
        return
    blocked = [name for name in KERAS_OPTIONAL_IMPORTS if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import keras  # noqa: F401
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Create the FastAPI app serving the models of one store.

    Models load in a background thread started by the lifespan, so
    ``/health/live`` responds at once and ``/health/ready`` returns 503
    ``starting`` until every model passed verification and self-test.

    Args:
        settings: Service settings; read from ``GAUSSPROBE_*`` variables when
            None (``uvicorn --factory service:create_app``).

    Raises:
        ValueError: A setting is invalid.
    """
    import flow  # Selects the JAX backend of keras without importing keras.

    # Runs before anything else of the service imports keras.
    import_keras_without_optional_packages()
    flow.enable_float64()
    if settings is None:
        settings = Settings.from_env()
    configure_logging(settings.log_level)
    if settings.compilation_cache is not None:
        enable_compilation_cache(settings.compilation_cache)
    context = ServiceContext(
        settings=settings,
        registry=ModelRegistry(),
        state=ServiceState(),
        metrics=ServiceMetrics(),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logger.info(
            "gaussprobe service starting: store %s, models %s, max_batch_rows %d, "
            "max_body_bytes %d, API key %s",
            settings.store,
            ", ".join(settings.models) or "latest of every model",
            settings.max_batch_rows,
            settings.max_body_bytes,
            "required" if settings.api_key else "not required",
        )
        context.limiter = anyio.CapacityLimiter(settings.compute_threads)
        drain = DrainController(
            context.state, settings.drain_grace_seconds, settings.drain_timeout_seconds
        )
        if settings.install_signal_handlers:
            drain.install()
        loader = threading.Thread(
            target=load_all_models,
            args=(settings, context.registry, context.state, context.metrics),
            name=LOADER_THREAD_NAME,
            daemon=True,
        )
        loader.start()
        try:
            yield
        finally:
            context.state.begin_drain()
            context.metrics.ready.set(0)
            drain.uninstall()
            for model in context.registry.models():
                model.runner.close()
            logger.info(
                "gaussprobe service stopped after %.1f s",
                context.state.uptime_seconds(),
            )

    app = FastAPI(
        title="gaussprobe",
        version=API_VERSION,
        description="Frozen Gaussianization-flow probes: transform, invert, "
        "log-density, gradients and diagnostics.",
        lifespan=lifespan,
    )
    app.state.service = context
    install_exception_handlers(app)
    register_routes(app)
    app.add_middleware(
        RequestContextMiddleware,
        state=context.state,
        metrics=context.metrics,
        api_key=settings.api_key,
        access_log=settings.access_log,
    )
    return app
