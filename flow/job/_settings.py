"""Options of one training run and their validation."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from flow.job._dequantize import DEFAULT_TIE_FRACTION
from flow.job._errors import TrainingInputError
from flow.job._split import DEFAULT_TEST_FRACTION
from flow.job._validation import DEFAULT_MIN_ROWS

__all__ = ["SUPPORTED_DTYPES", "TrainSettings"]

SUPPORTED_DTYPES = ("float32", "float64")
"""Model dtypes the training job accepts."""

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
"""Valid model names and aliases of the artifact store."""

RESERVED_ALIASES = frozenset({"latest"})
"""Aliases the store moves by itself, which ``--alias`` must not set."""


@dataclass(frozen=True)
class TrainSettings:
    """Every option of a training run; the defaults are the CLI defaults.

    Attributes:
        source: Built-in data set name or path to a .csv, .npy or .npz file.
        columns: Columns to use; None keeps the data set's default columns.
        array_key: Array inside an .npz file.
        drop_missing: Drop rows with missing values instead of rejecting them.
        min_rows: Minimum number of complete rows.
        dequantize: ``"auto"`` detects integer-valued and tied columns,
            ``"off"`` never adds noise.
        tie_fraction: Share of rows one value must exceed to count as tied.
        test_fraction: Fraction of rows held out for diagnostics and baselines.
        num_blocks: Flow blocks.
        num_components: Mixture components per marginal layer.
        marginal_first: Gaussianize each feature before the first rotation,
            which keeps the atoms of dequantized columns intact.
        epochs: Maximum training epochs.
        batch_size: Rows per gradient step.
        learning_rate: Adam learning rate.
        patience: Epochs without validation improvement before stopping.
        validation_split: Fraction of training rows used for early stopping.
        seed: Seed of splits, dequantization noise and initialisation.
        dtype: Model dtype, ``float32`` or ``float64``.
        name: Model name in the store; None uses the data set name.
        alias: Extra alias to point at the new version.
    """

    source: str
    columns: tuple[str, ...] | None = None
    array_key: str | None = None
    drop_missing: bool = False
    min_rows: int = DEFAULT_MIN_ROWS
    dequantize: str = "auto"
    tie_fraction: float = DEFAULT_TIE_FRACTION
    test_fraction: float = DEFAULT_TEST_FRACTION
    num_blocks: int = 6
    num_components: int = 10
    marginal_first: bool = True
    epochs: int = 50
    batch_size: int = 256
    learning_rate: float = 1e-3
    patience: int = 10
    validation_split: float = 0.1
    seed: int = 0
    dtype: str = "float32"
    name: str | None = None
    alias: str | None = None

    def validate(self) -> None:
        """Raise TrainingInputError naming the first invalid option and a fix."""
        _require_int_at_least("--blocks", self.num_blocks, 1)
        _require_int_at_least("--components", self.num_components, 1)
        _require_int_at_least("--epochs", self.epochs, 1)
        _require_int_at_least("--batch-size", self.batch_size, 1)
        _require_int_at_least("--patience", self.patience, 1)
        _require_int_at_least("--min-rows", self.min_rows, 1)
        _require_int_at_least("--seed", self.seed, 0)
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0.0):
            raise TrainingInputError(
                f"--lr must be a positive finite number, got {self.learning_rate}; "
                "try 1e-3"
            )
        _require_open_fraction("--validation-split", self.validation_split)
        _require_open_fraction("--test-fraction", self.test_fraction)
        _require_open_fraction("--tie-fraction", self.tie_fraction)
        if self.dtype not in SUPPORTED_DTYPES:
            raise TrainingInputError(
                f"--dtype {self.dtype!r} is not supported; use one of "
                f"{', '.join(SUPPORTED_DTYPES)}"
            )
        if self.dequantize not in ("auto", "off"):
            raise TrainingInputError(
                f"--dequantize {self.dequantize!r} is not supported; use auto or off"
            )
        if self.name is not None:
            _require_store_name("--name", self.name)
        if self.alias is not None:
            _require_store_name("--alias", self.alias)
            if self.alias in RESERVED_ALIASES:
                raise TrainingInputError(
                    f"--alias {self.alias!r} is set by the store on every publish; "
                    "choose another alias, e.g. production"
                )

    def to_manifest(self) -> dict[str, Any]:
        """Return the options as a JSON-serializable dict for the manifest."""
        record = asdict(self)
        record["columns"] = list(self.columns) if self.columns is not None else None
        return record


def _require_int_at_least(flag: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TrainingInputError(
            f"{flag} must be an integer >= {minimum}, got {value!r}"
        )


def _require_open_fraction(flag: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise TrainingInputError(
            f"{flag} must be a fraction strictly between 0 and 1, got {value!r}"
        )


def _require_store_name(flag: str, value: str) -> None:
    if NAME_PATTERN.fullmatch(value) is None:
        raise TrainingInputError(
            f"{flag} {value!r} is not a valid store name; use 1-64 characters from "
            "a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
        )
