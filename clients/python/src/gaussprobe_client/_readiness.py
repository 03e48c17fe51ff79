"""State of a ``wait_until_ready`` poll loop, shared by both clients."""

from __future__ import annotations

import time
from typing import Any

import httpx

from gaussprobe_client._codec import decode_json
from gaussprobe_client._core import ClientCore
from gaussprobe_client._errors import ProbeProtocolError, ProbeTimeoutError

__all__ = ["READY_POLL_INTERVAL_SECONDS", "ReadinessTracker"]

READY_POLL_INTERVAL_SECONDS = 0.2


class ReadinessTracker:
    """Deadline and last observed state while polling ``GET /health/ready``."""

    def __init__(self, core: ClientCore, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds; got {timeout}")
        self._core = core
        self._timeout = timeout
        self._deadline = time.monotonic() + timeout
        self._last_state = "no response yet"

    def request_timeout(self) -> httpx.Timeout:
        """Timeout of one poll: the client's timeouts, cut to the time left."""
        remaining = max(self._deadline - time.monotonic(), 0.05)
        connect = self._core.timeout.connect
        read = self._core.timeout.read
        return httpx.Timeout(
            min(read, remaining) if read is not None else remaining,
            connect=min(connect, remaining) if connect is not None else remaining,
        )

    def record_exception(self, exc: httpx.TransportError) -> None:
        """Remember a connection error; the service may still be starting."""
        self._last_state = f"{type(exc).__name__}: {exc}"

    def record_response(self, response: httpx.Response) -> dict[str, Any] | None:
        """Return the body when ready, remember a 503, raise other errors."""
        if response.status_code == 503:
            self._last_state = f"HTTP 503 {response.text[:200]}"
            return None
        self._core.raise_for_status(response)
        body = decode_json(response.content)
        if not isinstance(body, dict):
            raise ProbeProtocolError(
                "GET /health/ready returned JSON that is not an object",
                code="invalid_response",
            )
        return body

    def raise_if_expired(self) -> None:
        """Raise ``ProbeTimeoutError`` once the deadline has passed."""
        if time.monotonic() >= self._deadline:
            raise ProbeTimeoutError(
                f"service at {self._core.base_url} was not ready after "
                f"{self._timeout:g} s; last state: {self._last_state}",
                code="not_ready_timeout",
            )
