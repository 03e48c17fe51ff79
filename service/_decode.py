"""Decode request bodies (JSON, .npy, .npz) into named arrays and options."""

from __future__ import annotations

import dataclasses
import io
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from service._errors import ApiError

__all__ = [
    "JSON_TYPE",
    "NPY_TYPE",
    "NPZ_TYPE",
    "Payload",
    "RouteSpec",
    "decode_payload",
]

JSON_TYPE = "application/json"
NPY_TYPE = "application/x-npy"
NPZ_TYPE = "application/x-npz"
DTYPE_OPTION = "dtype"
SUPPORTED_DTYPES = ("float32", "float64")
_TRUE_QUERY = "true"
_FALSE_QUERY = "false"
# Largest .npy header numpy itself reads without ``max_header_size``.
MAX_NPY_HEADER_BYTES = 10_000


@dataclasses.dataclass(frozen=True)
class RouteSpec:
    """Inputs one model route accepts.

    Attributes:
        name: Route name, such as ``transform``.
        primary: Name of the input array, ``x`` or ``z``.
        extra_arrays: Optional array options such as ``cotangent``.
        bool_options: Names of boolean options.
        binary_response: Whether the response may be .npy/.npz.
    """

    name: str
    primary: str
    extra_arrays: tuple[str, ...] = ()
    bool_options: tuple[str, ...] = ()
    binary_response: bool = True

    @property
    def array_names(self) -> tuple[str, ...]:
        """Names of every array the route reads."""
        return (self.primary, *self.extra_arrays)

    @property
    def option_names(self) -> tuple[str, ...]:
        """Names of every non-array option, sorted."""
        names = list(self.bool_options)
        if self.binary_response:
            names.append(DTYPE_OPTION)
        return tuple(sorted(names))


@dataclasses.dataclass
class Payload:
    """A decoded request.

    Attributes:
        arrays: Input arrays by name, as sent (any numeric dtype, not yet
            validated for shape or finiteness).
        options: Options from the JSON body and the query string.
        binary_dtype: Dtype of the primary array of a .npy/.npz body; None
            for JSON.
    """

    arrays: dict[str, np.ndarray]
    options: dict[str, Any]
    binary_dtype: np.dtype[Any] | None


def media_type_of(content_type: str | None) -> str:
    """Return the lower-case media type without parameters (JSON when absent)."""
    if not content_type:
        return JSON_TYPE
    return content_type.split(";", 1)[0].strip().lower()


def decode_payload(
    spec: RouteSpec,
    body: bytes,
    content_type: str | None,
    query: Mapping[str, str],
    max_body_bytes: int,
) -> Payload:
    """Decode ``body`` by its media type and check option names and types.

    Raises:
        ApiError: 415 for another media type, 400 for unreadable bodies, 422
            for unknown or mistyped options and non-numeric array entries.
    """
    media_type = media_type_of(content_type)
    query_options = _parse_query(spec, query)
    if media_type == JSON_TYPE or media_type.endswith("+json"):
        payload = _decode_json(spec, body)
    elif media_type == NPY_TYPE:
        array = _load_npy(body, spec.primary)
        payload = Payload({spec.primary: array}, {}, array.dtype)
    elif media_type == NPZ_TYPE:
        payload = _decode_npz(spec, body, max_body_bytes)
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type {content_type!r} is not supported; send "
            f"{JSON_TYPE}, {NPY_TYPE} or {NPZ_TYPE}",
        )
    for name, value in query_options.items():
        if name in payload.options:
            raise ApiError(
                422,
                "invalid_option",
                f"option {name!r} is given both in the body and in the query "
                "string; give it once",
            )
        payload.options[name] = value
    if spec.primary not in payload.arrays:
        raise ApiError(
            422,
            "missing_field",
            f"the request has no {spec.primary!r} array; send "
            f'{{"{spec.primary}": [[...], ...]}} or a .npy/.npz body',
        )
    return payload


def _unknown_option(name: str, spec: RouteSpec) -> ApiError:
    accepted = ", ".join((*spec.array_names, *spec.option_names))
    return ApiError(
        422,
        "invalid_option",
        f"unknown option {name!r} for /{spec.name}; accepted fields: {accepted}",
        detail={"option": name},
    )


def _check_dtype_option(value: object) -> str:
    if value not in SUPPORTED_DTYPES:
        raise ApiError(
            422,
            "invalid_dtype",
            f"dtype {value!r} is not supported; use 'float32' or 'float64'",
            detail={"option": DTYPE_OPTION},
        )
    return str(value)


def _parse_query(spec: RouteSpec, query: Mapping[str, str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, raw in query.items():
        if name in spec.extra_arrays:
            raise ApiError(
                422,
                "invalid_option",
                f"array option {name!r} cannot be sent in the query string; put it "
                f"in a JSON body or as a named array in an {NPZ_TYPE} body",
                detail={"option": name},
            )
        if name == DTYPE_OPTION and spec.binary_response:
            options[name] = _check_dtype_option(raw)
        elif name in spec.bool_options:
            lowered = raw.lower()
            if lowered not in (_TRUE_QUERY, _FALSE_QUERY):
                raise ApiError(
                    422,
                    "invalid_option",
                    f"option {name}={raw!r} is not a boolean; use true or false",
                    detail={"option": name},
                )
            options[name] = lowered == _TRUE_QUERY
        else:
            raise _unknown_option(name, spec)
    return options


def _decode_json(spec: RouteSpec, body: bytes) -> Payload:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ApiError(
            400,
            "invalid_json",
            f"the body is not valid JSON ({error}); send a JSON object such as "
            '{"x": [[0.1, 0.2]]}',
        ) from None
    if not isinstance(document, dict):
        raise ApiError(
            400,
            "invalid_json",
            f"the JSON body is a {type(document).__name__}, not an object; send "
            f'an object such as {{"{spec.primary}": [[0.1, 0.2]]}}',
        )
    options: dict[str, Any] = {}
    raw_arrays: dict[str, object] = {}
    for name, value in document.items():
        if name in spec.array_names:
            raw_arrays[name] = value
        elif name == DTYPE_OPTION and spec.binary_response:
            options[name] = _check_dtype_option(value)
        elif name in spec.bool_options:
            if not isinstance(value, bool):
                raise ApiError(
                    422,
                    "invalid_option",
                    f"option {name!r} must be true or false, got {value!r}",
                    detail={"option": name},
                )
            options[name] = value
        else:
            raise _unknown_option(name, spec)
    # Every JSON true/false literal appears as these bytes, so when the body has
    # no more of them than the boolean options account for, no array entry is
    # a boolean and the per-element scan can be skipped.
    literal_count = body.count(b"true") + body.count(b"false")
    option_bools = sum(1 for value in options.values() if isinstance(value, bool))
    may_hide_bools = literal_count > option_bools
    arrays = {
        name: json_to_array(name, value, check_bools=may_hide_bools)
        for name, value in raw_arrays.items()
    }
    return Payload(arrays, options, None)


def json_to_array(name: str, value: object, *, check_bools: bool) -> np.ndarray:
    """Convert a parsed JSON value to a numeric array.

    numpy infers the dtype, so strings, nulls and nested objects show up as a
    non-numeric dtype and ragged rows as a ValueError; booleans, which numpy
    would silently turn into 0 and 1, are searched for only when
    ``check_bools`` is set.

    Raises:
        ApiError: 422 ``ragged_rows``, ``invalid_value`` or ``invalid_shape``.
    """
    if not isinstance(value, list):
        raise ApiError(
            422,
            "invalid_shape",
            f"{name!r} must be a list of rows (a 2-D array), got "
            f"{type(value).__name__}",
            detail={"array": name},
        )
    try:
        array = np.array(value)
    except (ValueError, OverflowError):
        _raise_ragged_or_invalid(name, value)
    kind = array.dtype.kind
    if kind in "iuf":
        if check_bools:
            _raise_first_bad_entry(name, value, booleans_only=True)
        return array
    if kind == "O":
        _raise_first_bad_entry(name, value, booleans_only=False)
        # Only numbers: a mix numpy could not fit into one integer type.
        return np.asarray(value, dtype=np.float64)
    _raise_first_bad_entry(name, value, booleans_only=False)
    raise ApiError(
        422, "invalid_value", f"{name!r} contains non-numeric entries", detail={}
    )


def _bad_entry_error(name: str, where: str, entry: object) -> ApiError:
    return ApiError(
        422,
        "invalid_value",
        f"{name}{where} is {orjson.dumps(entry).decode()!s}, not a number; send "
        "only finite numbers",
        detail={"array": name, "position": where},
    )


def _raise_first_bad_entry(name: str, value: list[Any], *, booleans_only: bool) -> None:
    for row_index, row in enumerate(value):
        if not isinstance(row, list):
            if booleans_only and not isinstance(row, bool):
                continue
            if isinstance(row, bool) or not isinstance(row, int | float):
                raise _bad_entry_error(name, f"[{row_index}]", row)
            continue
        for column_index, entry in enumerate(row):
            if isinstance(entry, bool):
                raise _bad_entry_error(name, f"[{row_index}][{column_index}]", entry)
            if booleans_only:
                continue
            if not isinstance(entry, int | float):
                raise _bad_entry_error(name, f"[{row_index}][{column_index}]", entry)


def _raise_ragged_or_invalid(name: str, value: list[Any]) -> None:
    row_lengths = [len(row) if isinstance(row, list) else None for row in value]
    if all(length is not None for length in row_lengths) and row_lengths:
        expected = row_lengths[0]
        for row_index, length in enumerate(row_lengths):
            if length != expected:
                raise ApiError(
                    422,
                    "ragged_rows",
                    f"row {row_index} of {name!r} has {length} values but row 0 has "
                    f"{expected}; send rows of equal length",
                    detail={"array": name, "row": row_index},
                )
    if not all(length is not None for length in row_lengths) and any(
        length is not None for length in row_lengths
    ):
        first_scalar = row_lengths.index(None)
        raise ApiError(
            422,
            "ragged_rows",
            f"row {first_scalar} of {name!r} is a single value while other rows are "
            "lists; send a list of equal-length rows",
            detail={"array": name, "row": first_scalar},
        )
    _raise_first_bad_entry(name, value, booleans_only=False)
    raise ApiError(
        422,
        "invalid_value",
        f"{name!r} is not a rectangular array of numbers; send a list of "
        "equal-length rows of numbers",
        detail={"array": name},
    )


def _check_binary_dtype(name: str, array: np.ndarray) -> np.ndarray:
    if array.dtype.kind != "f" or array.dtype.itemsize not in (4, 8):
        raise ApiError(
            422,
            "invalid_dtype",
            f"array {name!r} has dtype {array.dtype.str!r}; send float32 or float64",
            detail={"array": name, "dtype": array.dtype.str},
        )
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def _load_npy(body: bytes, name: str) -> np.ndarray:
    """Read one .npy array without pickles, viewing the body's bytes when possible."""
    stream = io.BytesIO(body)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(
                stream, max_header_size=MAX_NPY_HEADER_BYTES
            )
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(
                stream, max_header_size=MAX_NPY_HEADER_BYTES
            )
        else:
            stream.seek(0)
            array = np.load(stream, allow_pickle=False)
            return _check_binary_dtype(name, _npy_result(array, name))
    except ApiError:
        raise
    except ValueError as error:
        if "allow_pickle" in str(error) or "Object arrays" in str(error):
            raise ApiError(
                422,
                "invalid_dtype",
                f"array {name!r} has an object dtype; send float32 or float64",
                detail={"array": name},
            ) from None
        raise _invalid_npy(name, str(error)) from None
    except (OSError, EOFError, SyntaxError) as error:
        raise _invalid_npy(name, str(error)) from None
    if dtype.hasobject:
        raise ApiError(
            422,
            "invalid_dtype",
            f"array {name!r} has an object dtype; send float32 or float64",
            detail={"array": name},
        )
    offset = stream.tell()
    count = int(np.prod(shape, dtype=np.int64))
    expected = count * dtype.itemsize
    if len(body) - offset != expected:
        raise _invalid_npy(
            name,
            f"the header declares shape {shape} of {dtype.str} ({expected} data "
            f"bytes) but {len(body) - offset} data bytes follow",
        )
    _check_binary_dtype(name, np.empty(0, dtype=dtype))
    array = np.frombuffer(body, dtype=dtype, count=count, offset=offset)
    array = array.reshape(shape, order="F" if fortran_order else "C")
    return _check_binary_dtype(name, array)


def _npy_result(array: object, name: str) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise _invalid_npy(name, "the body is not a single .npy array")
    return array


def _invalid_npy(name: str, reason: str) -> ApiError:
    return ApiError(
        400,
        "invalid_npy",
        f"the body is not a readable .npy array for {name!r} ({reason}); write it "
        "with numpy.save",
        detail={"array": name},
    )


def _decode_npz(spec: RouteSpec, body: bytes, max_body_bytes: int) -> Payload:
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise ApiError(
            400,
            "invalid_npy",
            f"the body is not a readable .npz archive ({error}); write it with "
            "numpy.savez",
        ) from None
    with archive:
        members = archive.infolist()
        expanded = sum(member.file_size for member in members)
        if expanded > max_body_bytes:
            raise ApiError(
                413,
                "payload_too_large",
                f"the .npz archive expands to {expanded} bytes, over the limit of "
                f"{max_body_bytes} bytes set by max_body_bytes "
                "(GAUSSPROBE_MAX_BODY_BYTES); send smaller batches",
                detail={"max_body_bytes": max_body_bytes},
            )
        arrays: dict[str, np.ndarray] = {}
        for member in members:
            if not member.filename.endswith(".npy"):
                raise ApiError(
                    400,
                    "invalid_npy",
                    f"the .npz archive contains {member.filename!r}, which is not a "
                    ".npy member; write the archive with numpy.savez",
                )
            name = member.filename[: -len(".npy")]
            if name not in spec.array_names:
                raise _unknown_option(name, spec)
            try:
                data = archive.read(member)
            except (zipfile.BadZipFile, OSError, RuntimeError) as error:
                raise _invalid_npy(name, str(error)) from None
            arrays[name] = _load_npy(data, name)
    primary = arrays.get(spec.primary)
    return Payload(arrays, {}, None if primary is None else primary.dtype)
