"""Readiness state, in-flight accounting and the SIGTERM drain."""

from __future__ import annotations

import asyncio
import enum
import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["DrainController", "Phase", "ServiceState"]

logger = logging.getLogger(__name__)

DRAIN_POLL_SECONDS = 0.05
DRAIN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Phase(enum.StrEnum):
    """Readiness phase of the service."""

    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    DRAINING = "draining"


class ServiceState:
    """Mutable process-wide state shared by the middleware and routes.

    Attributes:
        phase: Current readiness phase.
        started_at: ``time.monotonic()`` when the app was created.
        in_flight: Number of non-health requests being handled now.
        failure: Message of the error that failed start-up, if any.
        warmup_finished: Whether the buckets left out before readiness were
            compiled (or failed to compile, which the log reports).
    """

    def __init__(self) -> None:
        self.phase = Phase.STARTING
        self.started_at = time.monotonic()
        self.started_wall = time.time()
        self.in_flight = 0
        self.failure: str | None = None
        self.warmup_finished = False
        self._lock = threading.Lock()

    def uptime_seconds(self) -> float:
        """Seconds since the app was created."""
        return time.monotonic() - self.started_at

    def mark_ready(self) -> None:
        """Move from ``starting`` to ``ready`` unless draining began meanwhile."""
        with self._lock:
            if self.phase is Phase.STARTING:
                self.phase = Phase.READY

    def mark_failed(self, message: str) -> None:
        """Record a start-up failure; readiness stays false."""
        with self._lock:
            self.failure = message
            if self.phase is not Phase.DRAINING:
                self.phase = Phase.FAILED

    def begin_drain(self) -> bool:
        """Enter ``draining``; return False when already draining."""
        with self._lock:
            if self.phase is Phase.DRAINING:
                return False
            self.phase = Phase.DRAINING
            return True

    @property
    def accepting(self) -> bool:
        """Whether model and metadata requests are served."""
        return self.phase is Phase.READY


SignalHandler = Callable[[int, FrameType | None], Any] | int | None


class DrainController:
    """Wrap the server's SIGTERM/SIGINT handlers with a drain phase.

    On the first signal the state turns ``draining`` (readiness 503 and new
    requests 503 ``not_ready``); once no request is in flight and at least
    ``grace_seconds`` passed (or ``timeout_seconds`` passed), the server's own
    handler runs, which for uvicorn starts its graceful shutdown. A second
    signal while draining goes to the server's handler at once.

    Handlers are installed only from the main thread, because Python delivers
    signals there alone.
    """

    def __init__(
        self, state: ServiceState, grace_seconds: float, timeout_seconds: float
    ) -> None:
        self._state = state
        self._grace = grace_seconds
        self._timeout = timeout_seconds
        self._previous: dict[int, SignalHandler] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def install(self) -> bool:
        """Install the wrapping handlers; return False when not on the main thread."""
        if threading.current_thread() is not threading.main_thread():
            logger.warning("not on the main thread, so SIGTERM drains are disabled")
            return False
        self._loop = asyncio.get_running_loop()
        for sig in DRAIN_SIGNALS:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._on_signal)
        return True

    def uninstall(self) -> None:
        """Restore the handlers that were active before :meth:`install`."""
        for sig, handler in self._previous.items():
            if signal.getsignal(sig) == self._on_signal:
                signal.signal(sig, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self._state.begin_drain():
            self._forward(signum, frame)
            return
        logger.info(
            "received %s, draining: readiness is false and %d request(s) in flight",
            signal.Signals(signum).name,
            self._state.in_flight,
        )
        if self._loop is None:
            self._forward(signum, frame)
            return
        self._loop.call_soon_threadsafe(self._start_wait, signum)

    def _start_wait(self, signum: int) -> None:
        self._task = asyncio.ensure_future(self._wait_then_forward(signum))

    async def _wait_then_forward(self, signum: int) -> None:
        began = time.monotonic()
        while True:
            elapsed = time.monotonic() - began
            if elapsed >= self._timeout:
                logger.warning(
                    "drain timed out after %.1f s with %d request(s) in flight",
                    elapsed,
                    self._state.in_flight,
                )
                break
            if self._state.in_flight == 0 and elapsed >= self._grace:
                logger.info("drain finished after %.2f s", elapsed)
                break
            await asyncio.sleep(DRAIN_POLL_SECONDS)
        self._forward(signum, None)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        handler = self._previous.get(signum, signal.SIG_DFL)
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
