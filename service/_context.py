"""Per-app objects shared by the lifespan, middleware and routes."""

from __future__ import annotations

import dataclasses

import anyio

from service._lifecycle import ServiceState
from service._metrics import ServiceMetrics
from service._registry import ModelRegistry
from service._settings import Settings

__all__ = ["ServiceContext"]


@dataclasses.dataclass
class ServiceContext:
    """Everything a request handler needs, stored as ``app.state.service``.

    Attributes:
        settings: Settings of this app.
        registry: Loaded models.
        state: Readiness phase and in-flight count.
        metrics: Prometheus metrics of this app.
        limiter: Bounds the worker threads that run model computations;
            created in the lifespan because it belongs to the event loop.
    """

    settings: Settings
    registry: ModelRegistry
    state: ServiceState
    metrics: ServiceMetrics
    limiter: anyio.CapacityLimiter | None = None
