"""Content negotiation and response encoding."""

from __future__ import annotations

import io

import numpy as np
import orjson
import pytest

from service._decode import JSON_TYPE, NPY_TYPE, NPZ_TYPE
from service._encode import choose_media_type, encode_arrays
from service._errors import ApiError


@pytest.mark.parametrize(
    ("accept", "count", "expected"),
    [
        pytest.param(None, 1, JSON_TYPE, id="absent"),
        pytest.param("*/*", 2, JSON_TYPE, id="any"),
        pytest.param("application/x-npy", 1, NPY_TYPE, id="npy"),
        pytest.param("application/x-npz", 2, NPZ_TYPE, id="npz"),
        pytest.param(
            "application/x-npy, application/json;q=0.5", 2, JSON_TYPE, id="npy-fallback"
        ),
        pytest.param(
            "application/json;q=0.1, application/x-npz", 1, NPZ_TYPE, id="q-order"
        ),
        pytest.param("application/*", 1, JSON_TYPE, id="wildcard-subtype"),
    ],
)
def test_choose_media_type(accept: str | None, count: int, expected: str) -> None:
    assert choose_media_type(accept, array_count=count) == expected


def test_npy_for_two_arrays_names_npz() -> None:
    with pytest.raises(ApiError, match="application/x-npz") as caught:
        choose_media_type("application/x-npy", array_count=2)
    assert caught.value.status == 406
    assert caught.value.code == "not_acceptable"


def test_unserved_type() -> None:
    with pytest.raises(ApiError, match="text/csv") as caught:
        choose_media_type("text/csv", array_count=1)
    assert caught.value.code == "not_acceptable"


def test_json_only_route_rejects_npy() -> None:
    with pytest.raises(ApiError, match="application/json") as caught:
        choose_media_type("application/x-npy", array_count=1, binary_allowed=False)
    assert caught.value.code == "not_acceptable"


def test_encode_round_trips_dtype() -> None:
    arrays = {
        "z": np.array([[1.5, -2.25]], dtype=np.float64),
        "log_det": np.array([0.5]),
    }
    as_json = orjson.loads(encode_arrays(arrays, JSON_TYPE, np.dtype(np.float32)))
    assert as_json == {"z": [[1.5, -2.25]], "log_det": [0.5]}
    npz = np.load(io.BytesIO(encode_arrays(arrays, NPZ_TYPE, np.dtype(np.float32))))
    assert npz["z"].dtype == np.float32
    npy = np.load(
        io.BytesIO(encode_arrays({"z": arrays["z"]}, NPY_TYPE, np.dtype(np.float64)))
    )
    np.testing.assert_array_equal(npy, arrays["z"])
