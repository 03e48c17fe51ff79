"""Input checks shared by the flow, the compiled runner and the training job."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

SUPPORTED_DTYPES = ("float32", "float64")


def is_traced(value: Any) -> bool:
    """Return True for a JAX tracer, whose values cannot be inspected."""
    return isinstance(value, jax.core.Tracer)


def first_non_finite(x: np.ndarray) -> tuple[int, int] | None:
    """Return the (row, column) of the first NaN or infinity in x, or None."""
    bad = ~np.isfinite(x)
    if not bad.any():
        return None
    row, column = np.argwhere(bad)[0]
    return int(row), int(column)


def check_shape(shape: tuple[int, ...], dim: int | None, name: str) -> None:
    """Raise ValueError unless shape is `(batch, dim)` with dim >= 1."""
    if len(shape) != 2:
        hint = f" (for one row use {name}[None, :])" if len(shape) == 1 else ""
        raise ValueError(
            f"{name} must have shape (batch, features); received rank-{len(shape)} "
            f"shape {tuple(shape)}{hint}"
        )
    if shape[1] == 0:
        raise ValueError(
            f"{name} has an empty feature axis, shape {tuple(shape)}; at "
            "least one feature is needed"
        )
    if dim is not None and shape[1] != dim:
        raise ValueError(
            f"{name} must have {dim} features per row; received shape {tuple(shape)}"
        )


def check_array(x: Any, dim: int | None, dtype: str, name: str = "x") -> Any:
    """Validate x and return it as an array of ``dtype``.

    Concrete inputs (numpy, lists, concrete JAX arrays) are checked for shape
    and for finite values and returned as numpy arrays. JAX tracers, met when
    a caller differentiates or jits through the flow, are checked for shape
    only and returned unchanged.

    Raises:
        ValueError: wrong rank, empty feature axis, wrong number of features,
            or a non-finite value (the message names the first bad row and
            column).
    """
    if is_traced(x):
        check_shape(tuple(x.shape), dim, name)
        return x.astype(dtype)
    try:
        array = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{name} must be a numeric array of shape (batch, features); "
            f"conversion failed: {error}"
        ) from error
    check_shape(array.shape, dim, name)
    bad = first_non_finite(array)
    if bad is not None:
        row, column = bad
        raise ValueError(
            f"{name} contains a non-finite value {array[row, column]} "
            f"at row {row}, column {column}; "
            "remove or impute non-finite values first"
        )
    return array
