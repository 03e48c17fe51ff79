"""Load, validate, dequantize and split the data of a training run."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from flow.job._dequantize import (
    ColumnQuantization,
    apply_dequantization,
    plan_dequantization,
)
from flow.job._errors import TrainingInputError
from flow.job._settings import TrainSettings
from flow.job._sources import load_source
from flow.job._split import fingerprint_array, split_indices
from flow.job._validation import drop_or_reject_missing, validate_data

__all__ = ["MIN_FITTING_ROWS", "PreparedData", "prepare_data", "validation_rows"]

logger = logging.getLogger(__name__)

MIN_FITTING_ROWS = 10
"""Fewest rows left for gradient steps after the validation split."""


@dataclass(frozen=True)
class PreparedData:
    """Data of a training run, ready for ``fit_and_freeze``.

    Attributes:
        raw: `(rows, features)` float64 complete rows before dequantization.
        used: `(rows, features)` in the model dtype after dequantization: what
            the flow and the baselines see.
        train_index: `(train_rows,)` rows passed to ``fit_and_freeze``.
        test_index: `(test_rows,)` held-out rows for diagnostics and baselines.
        feature_names: One name per feature.
        dataset_name: Default model name.
        source: JSON description of the data source.
        dropped_rows: Rows dropped for missing values.
        dequantization: Dequantized columns, in column order.
        fingerprint: Hex SHA-256 of ``used`` with its shape and dtype.
    """

    raw: np.ndarray
    used: np.ndarray
    train_index: np.ndarray
    test_index: np.ndarray
    feature_names: list[str]
    dataset_name: str
    source: dict[str, Any]
    dropped_rows: int
    dequantization: list[ColumnQuantization]
    fingerprint: str

    @property
    def train(self) -> np.ndarray:
        """`(train_rows, features)` rows passed to ``fit_and_freeze``."""
        return self.used[self.train_index]

    @property
    def test(self) -> np.ndarray:
        """`(test_rows, features)` held-out rows."""
        return self.used[self.test_index]


def prepare_data(settings: TrainSettings) -> PreparedData:
    """Load and check the data, dequantize tied columns and split off a test set.

    The dequantization noise is drawn for every row before the split, so train
    and test rows get the same treatment and the baselines score exactly the
    rows that the flow scores.

    Raises:
        TrainingInputError: naming the bad file, column, value or count.
    """
    loaded = load_source(settings.source, settings.columns, settings.array_key)
    values, dropped = drop_or_reject_missing(
        loaded.values, loaded.feature_names, settings.drop_missing
    )
    validate_data(values, loaded.feature_names, settings.min_rows, dropped)

    plan: list[ColumnQuantization] = []
    if settings.dequantize == "auto":
        plan = plan_dequantization(values, loaded.feature_names, settings.tie_fraction)
    for entry in plan:
        logger.info(
            "dequantizing column %r with quantum %g: %s",
            entry.name,
            entry.quantum,
            entry.reason,
        )
    used = apply_dequantization(values, plan, settings.seed).astype(settings.dtype)
    _reject_overflow(used, loaded.feature_names, settings.dtype)

    try:
        train_index, test_index = split_indices(
            used.shape[0], settings.test_fraction, settings.seed
        )
    except ValueError as error:
        raise TrainingInputError(str(error)) from error
    _check_validation_rows(train_index.size, settings.validation_split)

    return PreparedData(
        raw=values,
        used=used,
        train_index=train_index,
        test_index=test_index,
        feature_names=list(loaded.feature_names),
        dataset_name=loaded.dataset_name,
        source=loaded.source,
        dropped_rows=dropped,
        dequantization=plan,
        fingerprint=fingerprint_array(used),
    )


def _reject_overflow(used: np.ndarray, feature_names: list[str], dtype: str) -> None:
    if np.isfinite(used).all():
        return
    row, column = (int(i) for i in np.argwhere(~np.isfinite(used))[0])
    raise TrainingInputError(
        f"column {feature_names[column]!r} row {row} overflows {dtype}; "
        "rescale the column or train with --dtype float64"
    )


def validation_rows(num_train: int, validation_split: float) -> int:
    """Return how many of ``num_train`` rows ``fit_and_freeze`` holds out.

    This mirrors ``fit_and_freeze``: round to nearest, and at least one row.
    """
    return max(1, round(validation_split * num_train))


def _check_validation_rows(num_train: int, validation_split: float) -> None:
    num_validation = validation_rows(num_train, validation_split)
    if num_train - num_validation < MIN_FITTING_ROWS:
        raise TrainingInputError(
            f"--validation-split {validation_split} of {num_train} training rows "
            f"leaves {num_train - num_validation} rows to fit on, fewer than "
            f"{MIN_FITTING_ROWS}; lower --validation-split or provide more rows"
        )
