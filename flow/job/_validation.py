"""Checks on loaded training data: missing values, row count, constant columns."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from flow.job._errors import TrainingInputError

__all__ = ["DEFAULT_MIN_ROWS", "drop_or_reject_missing", "validate_data"]

logger = logging.getLogger(__name__)

DEFAULT_MIN_ROWS = 100
"""Default minimum number of complete rows a data set needs to be trained on."""


def drop_or_reject_missing(
    values: np.ndarray, feature_names: Sequence[str], drop_missing: bool
) -> tuple[np.ndarray, int]:
    """Drop the rows with a missing value (NaN), or raise if dropping is not allowed.

    Args:
        values: `(rows, features)` float64 with NaN for missing values.
        feature_names: One name per column.
        drop_missing: Drop incomplete rows instead of raising.

    Returns:
        The complete rows and the number of rows dropped.

    Raises:
        TrainingInputError: if rows have missing values and ``drop_missing`` is False.
    """
    missing = np.isnan(values)
    incomplete_rows = missing.any(axis=1)
    num_incomplete = int(incomplete_rows.sum())
    if num_incomplete == 0:
        return values, 0
    per_column = ", ".join(
        f"{name!r}: {int(count)}"
        for name, count in zip(feature_names, missing.sum(axis=0), strict=True)
        if count
    )
    if not drop_missing:
        raise TrainingInputError(
            f"{num_incomplete} of {values.shape[0]} rows have missing values "
            f"(missing per column: {per_column}); pass --drop-missing to drop those "
            "rows, or fill them in"
        )
    logger.warning(
        "dropped %d of %d rows with missing values (%s)",
        num_incomplete,
        values.shape[0],
        per_column,
    )
    return values[~incomplete_rows], num_incomplete


def validate_data(
    values: np.ndarray,
    feature_names: Sequence[str],
    min_rows: int,
    dropped_rows: int = 0,
) -> None:
    """Raise unless the data has enough rows and no constant column.

    Args:
        values: `(rows, features)` finite float64.
        feature_names: One name per column.
        min_rows: Minimum number of rows.
        dropped_rows: Rows already dropped for missing values, for the message.

    Raises:
        TrainingInputError: naming the column or the row count.
    """
    if values.shape[1] == 0:
        raise TrainingInputError(
            "the data has no columns; select at least one numeric column with --columns"
        )
    num_rows = values.shape[0]
    if num_rows < min_rows:
        dropped = (
            f" ({dropped_rows} rows with missing values dropped)"
            if dropped_rows
            else ""
        )
        raise TrainingInputError(
            f"the data has {num_rows} usable rows{dropped}, fewer than the minimum of "
            f"{min_rows}; provide more rows or lower --min-rows"
        )
    spread = values.max(axis=0) - values.min(axis=0)
    for name, column_spread, first in zip(
        feature_names, spread, values[0], strict=True
    ):
        if column_spread == 0.0:
            raise TrainingInputError(
                f"column {name!r} is constant (every row is {first:g}); a constant "
                "column has no density, remove it from --columns"
            )
