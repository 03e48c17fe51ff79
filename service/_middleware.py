"""ASGI middleware: request ids, API key, readiness gate, in-flight count, metrics."""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service._errors import ApiError, exception_to_response
from service._lifecycle import Phase, ServiceState
from service._metrics import NO_MODEL, UNMATCHED_ROUTE, ServiceMetrics

__all__ = ["RequestContextMiddleware"]

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("service.access")

REQUEST_ID_HEADER = b"x-request-id"
MAX_REQUEST_ID_LENGTH = 128
HEALTH_PREFIX = "/health/"
# Served while starting or draining: probes, scrapes and the API description.
UNGATED_PATHS = frozenset({"/metrics", "/openapi.json", "/docs", "/redoc"})
BEARER_PREFIX = "bearer "


def _valid_request_id(value: str) -> bool:
    return (
        0 < len(value) <= MAX_REQUEST_ID_LENGTH
        and value.isprintable()
        and (value.isascii())
    )


class RequestContextMiddleware:
    """Wrap every HTTP request with the cross-cutting concerns of the service.

    The steps run in this order. Assign the request id (echo a valid
    ``X-Request-ID`` or make one) and check the API key (except for
    ``/health/*``). Reject with 503 ``not_ready`` while starting, failed or
    draining, except for health, metrics and API description routes. Count
    the request in flight, and on completion record metrics and an
    access-log line. Exceptions that escape
    the app become the JSON ``internal_error`` body here, so no traceback
    reaches the client.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        state: ServiceState,
        metrics: ServiceMetrics,
        api_key: str | None,
        access_log: bool,
    ) -> None:
        self.app = app
        self.state = state
        self.metrics = metrics
        self.api_key = None if api_key is None else api_key.encode()
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        request_id = ""
        authorization = b""
        for key, value in scope["headers"]:
            if key == REQUEST_ID_HEADER:
                request_id = value.decode("latin-1")
            elif key == b"authorization":
                authorization = value
        if not _valid_request_id(request_id):
            request_id = uuid.uuid4().hex
        scope_state: dict[str, Any] = scope.setdefault("state", {})
        scope_state["request_id"] = request_id
        encoded_id = request_id.encode("latin-1")
        path: str = scope["path"]
        is_health = path.startswith(HEALTH_PREFIX)
        status_holder = [500]
        started = [False]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
                status_holder[0] = message["status"]
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k != b"x-request-id"
                ]
                headers.append((REQUEST_ID_HEADER, encoded_id))
                message["headers"] = headers
            await send(message)

        if is_health:
            await self._call_app(scope, receive, send_with_id, request_id, started)
            return
        self.state.in_flight += 1
        self.metrics.in_flight.inc()
        try:
            rejection = self._reject(path, authorization)
            if rejection is not None:
                response = exception_to_response(rejection, request_id)
                await response(scope, receive, send_with_id)
            else:
                await self._call_app(scope, receive, send_with_id, request_id, started)
        finally:
            self.state.in_flight -= 1
            self.metrics.in_flight.dec()
            self._record(scope, status_holder[0], began, request_id)

    def _reject(self, path: str, authorization: bytes) -> ApiError | None:
        if self.api_key is not None and not self._authorized(authorization):
            return ApiError(
                401,
                "unauthorized",
                "this server requires an API key; send the header "
                "'Authorization: Bearer <key>' with the key the operator set in "
                "GAUSSPROBE_API_KEY",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if path not in UNGATED_PATHS and self.state.phase is not Phase.READY:
            phase = self.state.phase
            hint = {
                Phase.STARTING: "models are still loading; retry after GET "
                "/health/ready returns 200",
                Phase.DRAINING: "the server is shutting down; send the request to "
                "another instance",
                Phase.FAILED: "a model failed to load; GET /health/ready shows the "
                "error and the server log has details",
            }.get(phase, "")
            return ApiError(
                503,
                "not_ready",
                f"the server is not ready ({phase}): {hint}",
                detail={"status": str(phase)},
                headers={"Retry-After": "1"},
            )
        return None

    def _authorized(self, authorization: bytes) -> bool:
        if self.api_key is None:
            return True
        scheme = authorization[: len(BEARER_PREFIX)].decode("latin-1").lower()
        presented = authorization[len(BEARER_PREFIX) :].strip()
        if scheme != BEARER_PREFIX:
            # Compare anyway so a missing header takes as long as a wrong key.
            hmac.compare_digest(self.api_key, self.api_key)
            return False
        return hmac.compare_digest(presented, self.api_key)

    async def _call_app(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        request_id: str,
        started: list[bool],
    ) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as error:
            if started[0]:
                logger.error(
                    "request %s failed after the response started",
                    request_id,
                    exc_info=error,
                )
                raise
            response = exception_to_response(error, request_id)
            await response(scope, receive, send)

    def _record(self, scope: Scope, status: int, began: float, request_id: str) -> None:
        elapsed = time.perf_counter() - began
        route = scope.get("route")
        template = getattr(route, "path", None)
        if template is None and "endpoint" in scope:
            # FastAPI's own /docs, /redoc and /openapi.json are plain
            # Starlette routes, which set the endpoint but not the route.
            # They have no path parameters, so the path is the template.
            template = scope.get("path")
        template = template or UNMATCHED_ROUTE
        model = scope.get("state", {}).get("model", NO_MODEL)
        method = scope.get("method", "")
        self.metrics.requests.labels(template, method, model, str(status)).inc()
        self.metrics.duration.labels(template, model).observe(elapsed)
        if self.access_log:
            access_logger.info(
                "%s %s %s %d %.2f ms request_id=%s",
                method,
                scope.get("path", ""),
                model or "-",
                status,
                elapsed * 1000.0,
                request_id,
            )
