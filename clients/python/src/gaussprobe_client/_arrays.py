"""Client-side checks and dtype rules for input arrays.

The client checks only what it needs to build a request: rank, dtype kind and
the cotangent's shape. The service checks the feature count and finiteness
and names the offending row and column in its error.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["SUPPORTED_DTYPES", "as_batch", "as_cotangent", "check_finite_for_json"]

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _result_dtype(dtype: np.dtype, name: str) -> np.dtype:
    """Pick the wire dtype for an input dtype (see ``as_batch``)."""
    if dtype in SUPPORTED_DTYPES:
        return dtype
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype.kind in "iu":
        return np.dtype(np.float64)
    raise ValueError(
        f"{name} has dtype {dtype}, which the probe cannot take; pass float32 or "
        f"float64 values, e.g. {name}.astype(np.float32)"
    )


def as_batch(value: npt.ArrayLike, name: str = "x") -> np.ndarray:
    """Convert ``value`` to a C-contiguous float32 or float64 batch.

    float32 and float64 inputs keep their dtype, so results come back in it.
    float16 becomes float32, integer inputs become float64, and other dtypes
    (bool, complex, strings, objects) raise.

    Args:
        value: Anything ``np.asarray`` accepts (lists, numpy or JAX arrays).
        name: Argument name used in error messages.

    Returns:
        ``(batch, features)`` array.

    Raises:
        ValueError: If ``value`` is not 2-D or has an unsupported dtype.
    """
    array = np.asarray(value)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D with shape (batch, features); got shape "
            f"{array.shape}. For a batch of scalar values use "
            f"{name}.reshape(-1, 1); for a single row use {name}[None, :]"
        )
    dtype = _result_dtype(array.dtype, name)
    return np.ascontiguousarray(array, dtype=dtype)


def as_cotangent(value: npt.ArrayLike, x: np.ndarray) -> np.ndarray:
    """Check a cotangent against ``x`` and convert it to ``x``'s dtype.

    Args:
        value: Cotangent ``(batch, features)``, shaped like the output ``z``.
        x: The checked input batch ``(batch, features)``.

    Returns:
        The cotangent as a C-contiguous array of ``x.dtype``.

    Raises:
        ValueError: If the shape differs from ``x.shape``.
    """
    array = np.asarray(value)
    if array.shape != x.shape:
        raise ValueError(
            f"cotangent must have the shape of x, {x.shape}; got {array.shape}"
        )
    _result_dtype(array.dtype, "cotangent")
    return np.ascontiguousarray(array, dtype=x.dtype)


def check_finite_for_json(array: np.ndarray, name: str) -> None:
    """Raise if ``array`` contains NaN or infinity, which JSON cannot carry.

    Args:
        array: ``(batch, features)`` array about to be sent as JSON.
        name: Argument name used in the error message.

    Raises:
        ValueError: Naming the first non-finite (row, column).
    """
    finite = np.isfinite(array)
    if finite.all():
        return
    row, column = (int(i) for i in np.argwhere(~finite)[0])
    raise ValueError(
        f"{name}[{row}, {column}] is {array[row, column]}, but the probe takes "
        f"only finite values; drop or impute that row"
    )
