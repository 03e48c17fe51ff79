"""Prometheus metrics of one app, kept in the app's own registry."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["METRICS_CONTENT_TYPE", "NO_MODEL", "ServiceMetrics"]

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
NO_MODEL = ""
UNMATCHED_ROUTE = "<unmatched>"

LATENCY_BUCKETS_SECONDS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
ROWS_BUCKETS = tuple(float(4**power) for power in range(10))


class ServiceMetrics:
    """Request, phase, batch-size and model metrics.

    Attributes:
        registry: Registry that ``/metrics`` renders; one per app so several
            apps in one process (tests) do not share series.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gaussprobe_http_requests_total",
            "HTTP requests by route template, method, model and status code.",
            ["route", "method", "model", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "gaussprobe_http_request_duration_seconds",
            "Wall time from the first byte received to the last byte sent.",
            ["route", "model"],
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=self.registry,
        )
        self.phase = Histogram(
            "gaussprobe_request_phase_seconds",
            "Time of each phase of a model request: decode (read and parse the "
            "body), compute (run the flow) and encode (serialize the response).",
            ["route", "model", "phase"],
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=self.registry,
        )
        self.rows = Histogram(
            "gaussprobe_request_rows",
            "Rows per model request.",
            ["route", "model"],
            buckets=ROWS_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "gaussprobe_http_requests_in_flight",
            "Requests being handled now, health probes excluded.",
            registry=self.registry,
        )
        self.model_info = Gauge(
            "gaussprobe_model_info",
            "Loaded models; the value is 1 once the model passed its self-test.",
            ["name", "version", "digest", "dtype"],
            registry=self.registry,
        )
        self.load_seconds = Gauge(
            "gaussprobe_model_load_seconds",
            "Seconds spent verifying, loading, warming up and self-testing a model.",
            ["name", "version"],
            registry=self.registry,
        )
        self.compilations = Gauge(
            "gaussprobe_model_compilations",
            "XLA compilations of the model's compiled runner so far.",
            ["name", "version"],
            registry=self.registry,
        )
        self.ready = Gauge(
            "gaussprobe_ready",
            "1 when the service reports ready, else 0.",
            registry=self.registry,
        )

    def track_compilations(
        self, name: str, version: int, count: Callable[[], int]
    ) -> None:
        """Report ``count()`` as the compilation gauge of a model at scrape time."""
        self.compilations.labels(name, str(version)).set_function(
            lambda: float(count())
        )

    def render(self) -> bytes:
        """Render the registry in the Prometheus text format."""
        return generate_latest(self.registry)
