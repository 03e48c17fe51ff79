"""Shape, size and finiteness checks of input arrays and the cast to the model dtype."""

from __future__ import annotations

from typing import Any

import numpy as np

from service._errors import ApiError

__all__ = ["first_non_finite", "prepare_input", "require_finite_output"]

MAX_BATCH_SETTING = "max_batch_rows (GAUSSPROBE_MAX_BATCH_ROWS)"


def first_non_finite(array: np.ndarray) -> tuple[int, ...] | None:
    """Return the index of the first NaN or infinity in ``array``, or None."""
    finite = np.isfinite(array)
    if finite.all():
        return None
    flat_index = int(np.argmin(finite.reshape(-1)))
    return tuple(int(i) for i in np.unravel_index(flat_index, array.shape))


def prepare_input(
    name: str,
    array: np.ndarray,
    *,
    dim: int,
    dtype: np.dtype[Any],
    max_batch_rows: int,
    expected_rows: int | None = None,
) -> np.ndarray:
    """Validate one input array and return it as a C-contiguous ``dtype`` array.

    Args:
        name: Field name used in error messages (``x``, ``z``, ``cotangent``).
        array: Decoded array of any numeric dtype.
        dim: Feature count ``d`` of the model.
        dtype: Model dtype.
        max_batch_rows: Row limit of the service.
        expected_rows: Rows the array must have (cotangent must match ``x``).

    Returns:
        ``(batch, d)`` array of the model dtype.

    Raises:
        ApiError: 422 ``invalid_shape`` or ``non_finite``, 413 ``batch_too_large``.
    """
    if array.ndim != 2:
        raise ApiError(
            422,
            "invalid_shape",
            f"{name!r} has shape {list(array.shape)} (rank {array.ndim}); send a "
            f"2-D array of shape (batch, {dim})",
            detail={"array": name, "shape": list(array.shape)},
        )
    rows, columns = array.shape
    if rows > max_batch_rows:
        raise ApiError(
            413,
            "batch_too_large",
            f"{name!r} has {rows} rows, over the limit of {max_batch_rows} set by "
            f"{MAX_BATCH_SETTING}; split the batch into smaller requests",
            detail={"array": name, "rows": rows, "max_batch_rows": max_batch_rows},
        )
    if columns != dim or rows == 0:
        problem = "no rows" if rows == 0 else f"{columns} features"
        raise ApiError(
            422,
            "invalid_shape",
            f"{name!r} has shape {list(array.shape)} ({problem}) but the model expects "
            f"shape (batch, {dim}) with at least one row",
            detail={"array": name, "shape": list(array.shape), "dim": dim},
        )
    if expected_rows is not None and rows != expected_rows:
        raise ApiError(
            422,
            "invalid_shape",
            f"{name!r} has {rows} rows but the input has {expected_rows}; send one "
            "cotangent row per input row",
            detail={"array": name, "shape": list(array.shape)},
        )
    bad = first_non_finite(array) if array.dtype.kind == "f" else None
    if bad is not None:
        row, column = bad
        raise ApiError(
            422,
            "non_finite",
            f"{name}[{row}][{column}] is {float(array[row, column])!r}; send only "
            "finite numbers",
            detail={"array": name, "row": row, "column": column},
        )
    with np.errstate(over="ignore", invalid="ignore"):
        converted = np.ascontiguousarray(array, dtype=dtype)
    if converted.dtype != array.dtype:
        bad = first_non_finite(converted)
        if bad is not None:
            row, column = bad
            raise ApiError(
                422,
                "non_finite",
                f"{name}[{row}][{column}] = {float(array[row, column])!r} overflows "
                f"the model dtype {dtype}; send values within its range",
                detail={"array": name, "row": row, "column": column},
            )
    return converted


def require_finite_output(name: str, array: np.ndarray) -> None:
    """Reject a result that is not finite, so no response contains NaN or infinity.

    Raises:
        ApiError: 422 ``non_finite`` naming the output array, row and column.
    """
    bad = first_non_finite(array)
    if bad is None:
        return
    position = "".join(f"[{i}]" for i in bad)
    row = bad[0]
    raise ApiError(
        422,
        "non_finite",
        f"the output {name}{position} is not finite for input row {row}; the input "
        "is outside the range where the model is numerically stable, so send values "
        "closer to the training data",
        detail={"output": name, "index": list(bad), "row": row},
    )
