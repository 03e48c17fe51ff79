"""Exception hierarchy of the client, mirroring the service's error codes.

Every exception carries ``status`` (HTTP status or ``None`` when no response
arrived), ``code`` (the service's stable error code, or a client-side code),
``message`` and ``request_id`` (the ``X-Request-ID`` of the failed request, or
``None``).

```
ProbeError
├── ProbeHTTPError                 the service returned a 4xx/5xx response
│   ├── InvalidInputError          400/422 codes (also a ValueError)
│   ├── UnauthorizedError          401 unauthorized
│   ├── ModelNotFoundError         404 model_not_found
│   │   └── VersionNotFoundError   404 version_not_found
│   ├── RouteNotFoundError         404 not_found, 405 method_not_allowed
│   ├── NotAcceptableError         406 not_acceptable, 415 unsupported_media_type
│   ├── PayloadTooLargeError       413 payload_too_large, batch_too_large
│   ├── RateLimitedError           429
│   ├── NotReadyError              503 not_ready
│   └── ServerError                500 internal_error and other 5xx
├── PinningError                   the served model differs from the pin
│   ├── DigestMismatchError        weights digest differs
│   └── VersionMismatchError       model version differs
├── ProbeConnectionError           no connection after every retry
├── ProbeTimeoutError              connect or read timeout
└── ProbeProtocolError             a response the client cannot decode
```
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DigestMismatchError",
    "InvalidInputError",
    "ModelNotFoundError",
    "NotAcceptableError",
    "NotReadyError",
    "PayloadTooLargeError",
    "PinningError",
    "ProbeConnectionError",
    "ProbeError",
    "ProbeHTTPError",
    "ProbeProtocolError",
    "ProbeTimeoutError",
    "RateLimitedError",
    "RouteNotFoundError",
    "ServerError",
    "UnauthorizedError",
    "VersionMismatchError",
    "VersionNotFoundError",
    "error_from_response",
]


class ProbeError(Exception):
    """Base class of every error raised by the gaussprobe client.

    Attributes:
        status: HTTP status of the response, or ``None`` when none arrived.
        code: Stable error code (the service's ``code`` field, or a
            client-side code such as ``digest_mismatch``).
        message: Human-readable message, from the service when it sent one.
        request_id: ``X-Request-ID`` of the failed request, or ``None``.
        detail: Optional structured detail from the service's error body.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        detail: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.detail = detail

    def __str__(self) -> str:
        parts = [self.message]
        tags = []
        if self.status is not None:
            tags.append(f"status {self.status}")
        if self.code is not None:
            tags.append(f"code {self.code}")
        if self.request_id is not None:
            tags.append(f"request id {self.request_id}")
        if tags:
            parts.append(f"({', '.join(tags)})")
        return " ".join(parts)


class ProbeHTTPError(ProbeError):
    """The service returned an error status (4xx or 5xx)."""


class InvalidInputError(ProbeHTTPError, ValueError):
    """The service rejected the request body or options (400 or 422)."""


class UnauthorizedError(ProbeHTTPError):
    """The API key is missing or wrong (401)."""


class ModelNotFoundError(ProbeHTTPError):
    """The service does not serve the requested model name (404)."""


class VersionNotFoundError(ModelNotFoundError):
    """The model is served, but not the requested version (404)."""


class RouteNotFoundError(ProbeHTTPError):
    """Unknown route or method (404 ``not_found``, 405); usually a wrong base URL."""


class NotAcceptableError(ProbeHTTPError):
    """The service cannot produce or read the requested media type (406, 415)."""


class PayloadTooLargeError(ProbeHTTPError):
    """The request body or row count is over the service's limit (413)."""


class RateLimitedError(ProbeHTTPError):
    """The service or a proxy rejected the request for rate reasons (429)."""


class NotReadyError(ProbeHTTPError):
    """The service is still loading models or is draining (503)."""


class ServerError(ProbeHTTPError):
    """The service failed unexpectedly (500 and other 5xx)."""


class PinningError(ProbeError):
    """The served model differs from the version or digest the client pinned."""


class DigestMismatchError(PinningError):
    """The served weights digest differs from ``expected_digest``."""


class VersionMismatchError(PinningError):
    """The served model version differs from the pinned ``version``."""


class ProbeConnectionError(ProbeError):
    """The service could not be reached, after every retry."""


class ProbeTimeoutError(ProbeError):
    """Connecting to the service or reading its response timed out."""


class ProbeProtocolError(ProbeError):
    """The service sent a response the client cannot decode."""


# The service's error codes, mapped to the exception raised for them.
_CODE_TO_ERROR: dict[str, type[ProbeHTTPError]] = {
    "invalid_json": InvalidInputError,
    "invalid_npy": InvalidInputError,
    "empty_body": InvalidInputError,
    "missing_field": InvalidInputError,
    "invalid_shape": InvalidInputError,
    "ragged_rows": InvalidInputError,
    "invalid_value": InvalidInputError,
    "non_finite": InvalidInputError,
    "invalid_dtype": InvalidInputError,
    "invalid_option": InvalidInputError,
    "model_not_found": ModelNotFoundError,
    "version_not_found": VersionNotFoundError,
    "not_found": RouteNotFoundError,
    "method_not_allowed": RouteNotFoundError,
    "not_acceptable": NotAcceptableError,
    "unsupported_media_type": NotAcceptableError,
    "payload_too_large": PayloadTooLargeError,
    "batch_too_large": PayloadTooLargeError,
    "unauthorized": UnauthorizedError,
    "not_ready": NotReadyError,
    "internal_error": ServerError,
}

# Fallback by status, for codes this client version does not know.
_STATUS_TO_ERROR: dict[int, type[ProbeHTTPError]] = {
    400: InvalidInputError,
    401: UnauthorizedError,
    403: UnauthorizedError,
    404: RouteNotFoundError,
    405: RouteNotFoundError,
    406: NotAcceptableError,
    413: PayloadTooLargeError,
    415: NotAcceptableError,
    422: InvalidInputError,
    429: RateLimitedError,
    503: NotReadyError,
}


def error_from_response(
    status: int,
    body: Any,
    *,
    request_id: str | None = None,
    route: str | None = None,
) -> ProbeHTTPError:
    """Build the typed exception for an error response.

    The service's ``code`` field picks the class. The HTTP status picks it
    for unknown codes and for bodies that are not the service's error JSON,
    such as a proxy's HTML page.

    Args:
        status: HTTP status code of the response.
        body: Decoded JSON body, or the raw text when it was not JSON.
        request_id: ``X-Request-ID`` response header, if present.
        route: Request path, added to messages that come without one.

    Returns:
        The exception to raise.
    """
    code: str | None = None
    message: str | None = None
    detail: Any = None
    if isinstance(body, dict):
        raw_code = body.get("code")
        code = raw_code if isinstance(raw_code, str) else None
        raw_message = body.get("message")
        message = raw_message if isinstance(raw_message, str) else None
        detail = body.get("detail")
        body_request_id = body.get("request_id")
        if request_id is None and isinstance(body_request_id, str):
            request_id = body_request_id
    if message is None:
        text = body if isinstance(body, str) else ""
        snippet = text.strip()[:200]
        where = f" for {route}" if route else ""
        message = f"HTTP {status}{where}" + (f": {snippet}" if snippet else "")

    error_class = _CODE_TO_ERROR.get(code or "")
    if error_class is None:
        error_class = _STATUS_TO_ERROR.get(status)
    if error_class is None:
        error_class = ServerError if status >= 500 else ProbeHTTPError
    return error_class(
        message, status=status, code=code, request_id=request_id, detail=detail
    )
