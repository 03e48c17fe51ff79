"""Python client of gaussprobe, the frozen Gaussianization-flow probe service.

Example:
    >>> from gaussprobe_client import ProbeClient
    >>> with ProbeClient("http://127.0.0.1:8000", model="moons") as probe:
    ...     z = probe.transform(x)  # x: (batch, features)
"""

from gaussprobe_client._async import AsyncProbeClient
from gaussprobe_client._errors import (
    DigestMismatchError,
    InvalidInputError,
    ModelNotFoundError,
    NotAcceptableError,
    NotReadyError,
    PayloadTooLargeError,
    PinningError,
    ProbeConnectionError,
    ProbeError,
    ProbeHTTPError,
    ProbeProtocolError,
    ProbeTimeoutError,
    RateLimitedError,
    RouteNotFoundError,
    ServerError,
    UnauthorizedError,
    VersionMismatchError,
    VersionNotFoundError,
)
from gaussprobe_client._retry import RetryPolicy
from gaussprobe_client._sync import ProbeClient

__all__ = [
    "AsyncProbeClient",
    "DigestMismatchError",
    "InvalidInputError",
    "ModelNotFoundError",
    "NotAcceptableError",
    "NotReadyError",
    "PayloadTooLargeError",
    "PinningError",
    "ProbeClient",
    "ProbeConnectionError",
    "ProbeError",
    "ProbeHTTPError",
    "ProbeProtocolError",
    "ProbeTimeoutError",
    "RateLimitedError",
    "RetryPolicy",
    "RouteNotFoundError",
    "ServerError",
    "UnauthorizedError",
    "VersionMismatchError",
    "VersionNotFoundError",
]

__version__ = "0.1.0"
