"""Error codes, the JSON error body, and the one mapping from exceptions to HTTP."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

__all__ = [
    "ApiError",
    "error_response",
    "exception_to_response",
    "install_exception_handlers",
]

logger = logging.getLogger(__name__)

JSON_MEDIA_TYPE = "application/json"

# Code used for an HTTP status raised by Starlette or FastAPI themselves.
_STATUS_CODES: dict[int, str] = {
    400: "invalid_json",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_option",
    503: "not_ready",
}


class ApiError(Exception):
    """An error the client caused or can act on, sent as the JSON error body.

    Attributes:
        status: HTTP status code.
        code: Stable machine-readable code from the API contract.
        message: Sentence naming the bad value and the fix.
        detail: Optional JSON-serializable extra fields.
        headers: Extra response headers, such as ``WWW-Authenticate``.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        detail: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = headers or {}


def error_response(
    status: int,
    code: str,
    message: str,
    request_id: str,
    *,
    detail: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Build the JSON error response every 4xx and 5xx uses."""
    body: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if detail:
        body["detail"] = detail
    response = Response(
        content=orjson.dumps(body),
        status_code=status,
        media_type=JSON_MEDIA_TYPE,
        headers=headers,
    )
    response.headers["X-Request-ID"] = request_id
    return response


def exception_to_response(exc: BaseException, request_id: str) -> Response:
    """Map any exception to the JSON error response.

    This is the single place where exceptions become HTTP statuses. Any
    other exception becomes 500 ``internal_error`` and is logged with the
    request id and traceback. The body never contains the traceback.
    """
    if isinstance(exc, ApiError):
        if exc.status == 503:
            # Starting, draining or a failed load: an expected state, already
            # logged once where it began.
            logger.warning(
                "request %s rejected: %s %s", request_id, exc.code, exc.message
            )
        elif exc.status >= 500:
            logger.error("request %s failed: %s %s", request_id, exc.code, exc.message)
        return error_response(
            exc.status,
            exc.code,
            exc.message,
            request_id,
            detail=exc.detail,
            headers=exc.headers,
        )
    if isinstance(exc, RequestValidationError):
        problems = [
            {"location": list(error.get("loc", ())), "message": error.get("msg", "")}
            for error in exc.errors()
        ]
        return error_response(
            422,
            "invalid_option",
            "the request parameters are invalid: "
            + "; ".join(
                f"{'.'.join(str(p) for p in item['location'])}: {item['message']}"
                for item in problems
            ),
            request_id,
            detail={"problems": problems},
        )
    if isinstance(exc, StarletteHTTPException):
        code = _STATUS_CODES.get(exc.status_code, "internal_error")
        headers = dict(exc.headers) if exc.headers else None
        message = _framework_message(exc.status_code, str(exc.detail), headers or {})
        logger.info("request %s rejected: %s %s", request_id, code, message)
        return error_response(
            exc.status_code, code, message, request_id, headers=headers
        )
    logger.error(
        "request %s failed with an unexpected %s",
        request_id,
        type(exc).__name__,
        exc_info=exc,
    )
    return error_response(
        500,
        "internal_error",
        "the server failed to handle the request; report the request id to the "
        "operator, whose log has the cause",
        request_id,
    )


def _framework_message(status: int, detail: str, headers: dict[str, str]) -> str:
    if status == 404:
        return (
            "no route matches this path; GET /v1/models lists the models and "
            "the routes are documented at /docs"
        )
    if status == 405:
        allowed = headers.get("Allow") or headers.get("allow") or "see /docs"
        return f"this route does not allow the request method; allowed: {allowed}"
    return detail


def request_id_of(request: Request) -> str:
    """Return the id the request-context middleware stored for this request."""
    return str(request.scope.get("state", {}).get("request_id", "-"))


def install_exception_handlers(app: FastAPI) -> None:
    """Route framework and service exceptions through :func:`exception_to_response`."""

    async def handle(request: Request, exc: Exception) -> Response:
        return exception_to_response(exc, request_id_of(request))

    app.add_exception_handler(ApiError, handle)
    app.add_exception_handler(StarletteHTTPException, handle)
    app.add_exception_handler(RequestValidationError, handle)
