"""Read request bodies with a byte limit enforced while streaming."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from service._errors import ApiError

__all__ = ["read_body"]

MAX_BODY_SETTING = "max_body_bytes (GAUSSPROBE_MAX_BODY_BYTES)"


def _too_large(size_text: str, max_bytes: int) -> ApiError:
    return ApiError(
        413,
        "payload_too_large",
        f"the request body is {size_text} bytes, over the limit of {max_bytes} bytes "
        f"set by {MAX_BODY_SETTING}; split the batch into smaller requests",
        detail={"max_body_bytes": max_bytes},
    )


async def read_body(request: Request, max_bytes: int) -> bytes:
    """Read the whole body, rejecting it as soon as it passes ``max_bytes``.

    ``Content-Length`` is checked before reading. Bodies without it (chunked
    transfer) are counted chunk by chunk, so at most ``max_bytes`` plus one
    chunk is ever buffered.

    Raises:
        ApiError: 413 ``payload_too_large`` or 400 ``empty_body``.
    """
    declared = request.headers.get("content-length")
    # The HTTP server rejects a malformed Content-Length before the app runs,
    # so a value that is not a number is left to the streamed count below.
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(declared, max_bytes)
    chunks: list[bytes] = []
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise _too_large(f"more than {max_bytes}", max_bytes)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(
            400, "empty_body", "the client disconnected before sending the whole body"
        ) from None
    if received == 0:
        raise ApiError(
            400,
            "empty_body",
            "the request has no body; send a JSON object such as "
            '{"x": [[0.1, 0.2]]} or a .npy/.npz array',
        )
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
