"""Content negotiation and encoding of array responses."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson
from starlette.responses import Response

from service._decode import JSON_TYPE, NPY_TYPE, NPZ_TYPE
from service._errors import ApiError

__all__ = ["choose_media_type", "encode_arrays", "json_response"]

_SUPPORTED = (JSON_TYPE, NPY_TYPE, NPZ_TYPE)
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def _parse_accept(accept: str) -> list[tuple[float, int, str]]:
    """Return ``(q, position, media range)`` for each entry of an Accept header."""
    entries: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept.split(",")):
        pieces = [piece.strip() for piece in part.split(";")]
        media_range = pieces[0].lower()
        if not media_range:
            continue
        quality = 1.0
        for parameter in pieces[1:]:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        entries.append((quality, position, media_range))
    return entries


def _matches(media_range: str, media_type: str) -> bool:
    if media_range in ("*/*", media_type):
        return True
    major, _, minor = media_range.partition("/")
    return minor == "*" and media_type.startswith(major + "/")


def choose_media_type(
    accept: str | None, *, array_count: int, binary_allowed: bool = True
) -> str:
    """Pick the response media type for an ``Accept`` header.

    Candidates are tried by falling q value, then by position in the header;
    ``.npy`` only fits a response of exactly one array.

    Raises:
        ApiError: 406 ``not_acceptable`` when no acceptable type can carry the
            response.
    """
    if not accept or not accept.strip():
        return JSON_TYPE
    entries = sorted(_parse_accept(accept), key=lambda entry: (-entry[0], entry[1]))
    offered = _SUPPORTED if binary_allowed else (JSON_TYPE,)
    wanted_npy = False
    for quality, _, media_range in entries:
        if quality <= 0:
            continue
        for media_type in offered:
            if not _matches(media_range, media_type):
                continue
            if media_type == NPY_TYPE and array_count != 1:
                wanted_npy = True
                continue
            return media_type
    if wanted_npy:
        raise ApiError(
            406,
            "not_acceptable",
            f"the response has {array_count} arrays, so it cannot be one "
            f"{NPY_TYPE}; accept {NPZ_TYPE} or {JSON_TYPE}",
        )
    served = ", ".join(offered)
    raise ApiError(
        406,
        "not_acceptable",
        f"Accept {accept!r} matches no response type of this route; accept {served}",
    )


def encode_arrays(
    arrays: Mapping[str, np.ndarray], media_type: str, dtype: np.dtype[Any]
) -> bytes:
    """Serialize named arrays, cast to ``dtype``, in ``media_type``."""
    cast = {
        name: np.ascontiguousarray(array, dtype=dtype) for name, array in arrays.items()
    }
    if media_type == JSON_TYPE:
        return orjson.dumps(cast, option=_JSON_OPTIONS)
    buffer = io.BytesIO()
    if media_type == NPY_TYPE:
        (only,) = cast.values()
        np.save(buffer, only, allow_pickle=False)
    else:
        np.savez(buffer, allow_pickle=False, **cast)
    return buffer.getvalue()


def json_response(
    content: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """Serialize ``content`` with orjson, rejecting NaN and infinity.

    orjson writes non-finite floats as ``null``; callers pass only finite data,
    which is checked where results are computed.
    """
    return Response(
        orjson.dumps(content, option=_JSON_OPTIONS),
        status_code=status,
        media_type=JSON_TYPE,
        headers=dict(headers) if headers else None,
    )
