"""Validation of training options."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from flow.job import TrainingInputError, TrainSettings

BASE = TrainSettings(source="moons")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"epochs": 0}, r"--epochs must be an integer >= 1, got 0", id="epochs"
        ),
        pytest.param(
            {"num_blocks": 0}, r"--blocks must be an integer >= 1", id="blocks"
        ),
        pytest.param(
            {"num_components": -2},
            r"--components must be an integer >= 1",
            id="components",
        ),
        pytest.param(
            {"batch_size": 0}, r"--batch-size must be an integer >= 1", id="batch"
        ),
        pytest.param(
            {"patience": 0}, r"--patience must be an integer >= 1", id="patience"
        ),
        pytest.param(
            {"min_rows": 0}, r"--min-rows must be an integer >= 1", id="min-rows"
        ),
        pytest.param({"seed": -1}, r"--seed must be an integer >= 0", id="seed"),
        pytest.param(
            {"learning_rate": 0.0}, r"--lr must be a positive finite", id="lr-zero"
        ),
        pytest.param(
            {"learning_rate": math.nan}, r"--lr must be a positive", id="lr-nan"
        ),
        pytest.param(
            {"validation_split": 1.0},
            r"--validation-split must be a fraction",
            id="val",
        ),
        pytest.param(
            {"test_fraction": 0.0}, r"--test-fraction must be a fraction", id="test"
        ),
        pytest.param(
            {"tie_fraction": 2.0}, r"--tie-fraction must be a fraction", id="tie"
        ),
        pytest.param(
            {"dtype": "float16"}, r"--dtype 'float16' is not supported", id="dtype"
        ),
        pytest.param(
            {"dequantize": "always"}, r"--dequantize 'always'", id="dequantize"
        ),
        pytest.param(
            {"name": "Bad Name"}, r"--name 'Bad Name' is not a valid", id="name"
        ),
        pytest.param({"alias": "-x"}, r"--alias '-x' is not a valid", id="alias"),
        pytest.param(
            {"alias": "latest"}, r"--alias 'latest' is set by the store", id="latest"
        ),
    ],
)
def test_invalid_option_rejected(changes: dict[str, Any], message: str) -> None:
    settings = dataclasses.replace(BASE, **changes)
    with pytest.raises(TrainingInputError, match=message):
        settings.validate()


def test_defaults_are_valid() -> None:
    BASE.validate()


def test_manifest_record_is_plain_data() -> None:
    settings = dataclasses.replace(BASE, columns=("x0", "x1"))
    record = settings.to_manifest()
    assert record["columns"] == ["x0", "x1"]
    assert record["epochs"] == BASE.epochs
