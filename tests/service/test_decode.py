"""Request decoding: JSON fast path, .npy/.npz parsing, options and error codes."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import orjson
import pytest

from service._decode import JSON_TYPE, NPY_TYPE, NPZ_TYPE, RouteSpec, decode_payload
from service._errors import ApiError

TRANSFORM = RouteSpec(
    "transform",
    "x",
    extra_arrays=("cotangent",),
    bool_options=("return_jacobian", "return_log_det"),
)
MAX_BODY = 1 << 20


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _decode(
    body: bytes, content_type: str = JSON_TYPE, query: dict[str, str] | None = None
):
    return decode_payload(TRANSFORM, body, content_type, query or {}, MAX_BODY)


def _error(
    body: bytes, content_type: str = JSON_TYPE, query: dict[str, str] | None = None
) -> ApiError:
    with pytest.raises(ApiError) as caught:
        _decode(body, content_type, query)
    return caught.value


def test_json_numbers_keep_values() -> None:
    payload = _decode(b'{"x": [[1, 2.5], [-3e-3, 4]], "return_log_det": true}')
    assert payload.arrays["x"].tolist() == [[1.0, 2.5], [-0.003, 4.0]]
    assert payload.options == {"return_log_det": True}
    assert payload.binary_dtype is None


@pytest.mark.parametrize(
    ("body", "status", "code", "fragment"),
    [
        pytest.param(
            b"{not json", 400, "invalid_json", "not valid JSON", id="malformed"
        ),
        pytest.param(
            b"[[1, 2]]", 400, "invalid_json", "not an object", id="top-level-list"
        ),
        pytest.param(
            b'{"z": [[1, 2]]}',
            422,
            "invalid_option",
            "unknown option 'z'",
            id="wrong-field",
        ),
        pytest.param(
            b'{"return_log_det": true}', 422, "missing_field", "'x'", id="missing-x"
        ),
        pytest.param(b'{"x": [[1, 2], [3]]}', 422, "ragged_rows", "row 1", id="ragged"),
        pytest.param(
            b'{"x": [[1, 2], 3]}', 422, "ragged_rows", "row 1", id="scalar-row"
        ),
        pytest.param(
            b'{"x": [[1, "2"]]}', 422, "invalid_value", 'x[0][1] is "2"', id="string"
        ),
        pytest.param(
            b'{"x": [[1, null]]}', 422, "invalid_value", "x[0][1] is null", id="null"
        ),
        pytest.param(
            b'{"x": [[1, true]]}',
            422,
            "invalid_value",
            "x[0][1] is true",
            id="bool-int",
        ),
        pytest.param(
            b'{"x": [[1.5, false]]}',
            422,
            "invalid_value",
            "x[0][1] is false",
            id="bool-float",
        ),
        pytest.param(
            b'{"x": [[1.5, false]], "return_log_det": true}',
            422,
            "invalid_value",
            "x[0][1] is false",
            id="bool-beside-option",
        ),
        pytest.param(
            b'{"x": [[1, {}]]}', 422, "invalid_value", "x[0][1] is {}", id="object"
        ),
        pytest.param(b'{"x": 3}', 422, "invalid_shape", "list of rows", id="scalar"),
        pytest.param(
            b'{"x": [[1]], "return_log_det": 1}',
            422,
            "invalid_option",
            "true or false",
            id="int-option",
        ),
        pytest.param(
            b'{"x": [[1]], "dtype": "float16"}',
            422,
            "invalid_dtype",
            "float16",
            id="dtype",
        ),
        pytest.param(
            b'{"x": [[1]], "extra": 1}',
            422,
            "invalid_option",
            "unknown option 'extra'",
            id="unknown",
        ),
        pytest.param(
            b'{"x": [[1e400]]}', 400, "invalid_json", "infinity", id="overflow-literal"
        ),
    ],
)
def test_json_rejections(body: bytes, status: int, code: str, fragment: str) -> None:
    error = _error(body)
    assert error.status == status
    assert error.code == code
    assert fragment in error.message


def test_bool_scan_ignores_strings_with_true() -> None:
    payload = _decode(b'{"x": [[1, 2]], "dtype": "float32"}')
    assert payload.arrays["x"].dtype.kind == "i"


def test_mixed_large_integers_become_float() -> None:
    payload = _decode(b'{"x": [[18446744073709551615, -1]]}')
    assert payload.arrays["x"].dtype == np.float64


def test_npy_keeps_dtype_and_values() -> None:
    array = np.arange(6, dtype=np.float32).reshape(3, 2)
    payload = _decode(_npy(array), NPY_TYPE, {"return_log_det": "true"})
    assert payload.arrays["x"].dtype == np.float32
    np.testing.assert_array_equal(payload.arrays["x"], array)
    assert payload.options == {"return_log_det": True}
    assert payload.binary_dtype == np.float32


def test_npy_fortran_and_big_endian() -> None:
    array = np.asfortranarray(np.arange(6, dtype=">f8").reshape(3, 2))
    payload = _decode(_npy(array), NPY_TYPE)
    assert payload.arrays["x"].dtype == np.float64
    assert payload.arrays["x"].dtype.isnative
    np.testing.assert_array_equal(payload.arrays["x"], array)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param(b"garbage", 400, "invalid_npy", id="garbage"),
        pytest.param(_npy(np.zeros((2, 2)))[:-3], 400, "invalid_npy", id="truncated"),
        pytest.param(
            _npy(np.zeros((2, 2), dtype=np.int64)), 422, "invalid_dtype", id="int"
        ),
        pytest.param(
            _npy(np.zeros((2, 2), dtype=np.float16)), 422, "invalid_dtype", id="float16"
        ),
        pytest.param(
            _npy(np.array([[1.0, None]], dtype=object)),
            422,
            "invalid_dtype",
            id="object",
        ),
        pytest.param(_npy(np.array([[True]])), 422, "invalid_dtype", id="bool"),
    ],
)
def test_npy_rejections(body: bytes, status: int, code: str) -> None:
    error = _error(body, NPY_TYPE)
    assert error.status == status
    assert error.code == code


def test_npz_named_arrays() -> None:
    x = np.ones((4, 2))
    cotangent = np.full((4, 2), 2.0)
    payload = _decode(_npz(x=x, cotangent=cotangent), NPZ_TYPE)
    assert sorted(payload.arrays) == ["cotangent", "x"]
    np.testing.assert_array_equal(payload.arrays["cotangent"], cotangent)


def test_npz_unknown_array() -> None:
    error = _error(_npz(x=np.ones((1, 2)), weights=np.ones(2)), NPZ_TYPE)
    assert error.code == "invalid_option"
    assert "'weights'" in error.message


def test_npz_expansion_limit() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", _npy(np.zeros((MAX_BODY // 8 + 10, 1))))
    error = _error(buffer.getvalue(), NPZ_TYPE)
    assert error.status == 413
    assert error.code == "payload_too_large"
    assert "GAUSSPROBE_MAX_BODY_BYTES" in error.message


def test_npz_garbage() -> None:
    error = _error(b"PK-not-a-zip", NPZ_TYPE)
    assert error.code == "invalid_npy"


@pytest.mark.parametrize(
    ("query", "code", "fragment"),
    [
        pytest.param(
            {"return_log_det": "yes"}, "invalid_option", "true or false", id="bool-word"
        ),
        pytest.param({"cotangent": "1"}, "invalid_option", "npz", id="array-in-query"),
        pytest.param(
            {"bogus": "1"}, "invalid_option", "unknown option 'bogus'", id="unknown"
        ),
        pytest.param({"dtype": "int8"}, "invalid_dtype", "int8", id="dtype"),
    ],
)
def test_query_rejections(query: dict[str, str], code: str, fragment: str) -> None:
    error = _error(_npy(np.ones((1, 2))), NPY_TYPE, query)
    assert error.code == code
    assert fragment in error.message


def test_option_in_body_and_query() -> None:
    error = _error(
        b'{"x": [[1, 2]], "return_log_det": true}',
        JSON_TYPE,
        {"return_log_det": "true"},
    )
    assert error.code == "invalid_option"
    assert "both" in error.message


def test_other_media_type() -> None:
    error = _error(b"x=1", "application/x-www-form-urlencoded")
    assert error.status == 415
    assert error.code == "unsupported_media_type"


def test_json_charset_parameter() -> None:
    payload = _decode(
        orjson.dumps({"x": [[1.0, 2.0]]}), "application/json; charset=utf-8"
    )
    assert payload.arrays["x"].shape == (1, 2)
