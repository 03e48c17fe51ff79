"""Retry policy: exponential backoff with full jitter."""

from __future__ import annotations

import dataclasses
import logging
import random

import httpx

__all__ = [
    "DEFAULT_RETRY_POLICY",
    "RETRYABLE_STATUSES",
    "RetryPolicy",
    "is_retryable_exception",
    "log_retry",
    "retry_after_seconds",
]

# Every retry is logged on the package's top-level logger, so one
# `logging.getLogger("gaussprobe_client")` setting controls it.
_LOGGER = logging.getLogger("gaussprobe_client")

# 429 Too Many Requests and 503 Service Unavailable (`not_ready`: loading or
# draining) are transient by definition. Every model route is a pure function,
# so repeating a request never changes the result.
RETRYABLE_STATUSES = frozenset({429, 503})

DEFAULT_MAX_RETRIES = 5
DEFAULT_BASE_DELAY_SECONDS = 0.25
DEFAULT_MAX_DELAY_SECONDS = 8.0


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before repeating a failed request.

    The delay before retry ``n`` (1-based) is drawn uniformly from
    ``[0, min(max_delay, base_delay * 2 ** (n - 1))]`` ("full jitter"), and is
    at least the server's ``Retry-After`` when it sends one (capped at
    ``max_delay``).

    Attributes:
        max_retries: Retries after the first attempt; 0 disables retries.
        base_delay: Upper bound of the first delay, in seconds.
        max_delay: Cap of every delay, in seconds.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    base_delay: float = DEFAULT_BASE_DELAY_SECONDS
    max_delay: float = DEFAULT_MAX_DELAY_SECONDS

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(
                f"max_retries must be >= 0; got {self.max_retries}. "
                "Use 0 to disable retries"
            )
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError(
                f"base_delay and max_delay must be >= 0 seconds; got "
                f"{self.base_delay} and {self.max_delay}"
            )

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Draw the delay in seconds before retry number ``retry`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        delay = random.uniform(0.0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_delay))
        return delay


DEFAULT_RETRY_POLICY = RetryPolicy()


def is_retryable_exception(exc: httpx.TransportError) -> bool:
    """Tell whether a transport error is worth a retry.

    Connection failures, connect and pool timeouts, and connections dropped
    mid-request (a restarting server) are retried. Read and write timeouts
    are not: the server is up but slow, and repeating a slow request only
    adds load.
    """
    return not isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Parse a numeric ``Retry-After`` header, in seconds (dates are ignored)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def log_retry(
    method: str,
    url: str,
    retry: int,
    policy: RetryPolicy,
    delay: float,
    error: object,
) -> None:
    """Log one retry at WARNING with its number, the route and the error."""
    _LOGGER.warning(
        "Retrying %s %s (retry %d of %d) in %.2f s after: %s",
        method,
        url,
        retry,
        policy.max_retries,
        delay,
        error,
    )
