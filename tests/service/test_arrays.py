"""Input shape, limit and finiteness checks."""

from __future__ import annotations

import numpy as np
import pytest

from service._arrays import prepare_input, require_finite_output
from service._errors import ApiError


def _prepare(array: np.ndarray, **overrides: object) -> np.ndarray:
    options: dict[str, object] = {
        "dim": 2,
        "dtype": np.dtype(np.float32),
        "max_batch_rows": 8,
    }
    options.update(overrides)
    return prepare_input("x", array, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("array", "status", "code", "fragment"),
    [
        pytest.param(np.ones(3), 422, "invalid_shape", "rank 1", id="rank-1"),
        pytest.param(np.ones((2, 3)), 422, "invalid_shape", "3 features", id="wrong-d"),
        pytest.param(np.ones((0, 2)), 422, "invalid_shape", "no rows", id="no-rows"),
        pytest.param(
            np.ones((2, 0)), 422, "invalid_shape", "0 features", id="empty-features"
        ),
        pytest.param(
            np.ones((9, 2)),
            413,
            "batch_too_large",
            "GAUSSPROBE_MAX_BATCH_ROWS",
            id="rows",
        ),
        pytest.param(
            np.array([[1.0, 2.0], [3.0, np.nan]]),
            422,
            "non_finite",
            "x[1][1] is nan",
            id="nan",
        ),
        pytest.param(
            np.array([[np.inf, 2.0]]), 422, "non_finite", "x[0][0] is inf", id="inf"
        ),
        pytest.param(
            np.array([[1.0, 1e39]]),
            422,
            "non_finite",
            "overflows",
            id="float32-overflow",
        ),
    ],
)
def test_prepare_rejections(
    array: np.ndarray, status: int, code: str, fragment: str
) -> None:
    with pytest.raises(
        ApiError, match=fragment.replace("[", r"\[").replace("]", r"\]")
    ) as caught:
        _prepare(array)
    assert caught.value.status == status
    assert caught.value.code == code


def test_prepare_casts_contiguously() -> None:
    array = np.asfortranarray(np.arange(6, dtype=np.float64).reshape(3, 2))
    prepared = _prepare(array)
    assert prepared.dtype == np.float32
    assert prepared.flags.c_contiguous
    np.testing.assert_array_equal(prepared, array)


def test_cotangent_rows_must_match() -> None:
    with pytest.raises(ApiError, match="one cotangent row per input row") as caught:
        _prepare(np.ones((3, 2)), expected_rows=2)
    assert caught.value.code == "invalid_shape"


def test_output_non_finite_names_position() -> None:
    with pytest.raises(ApiError, match=r"jacobian\[1\]\[0\]\[1\]") as caught:
        require_finite_output(
            "jacobian", np.array([np.zeros((2, 2)), [[0, np.inf], [0, 0]]])
        )
    assert caught.value.code == "non_finite"
