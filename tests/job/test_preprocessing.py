"""Missing values, data checks, dequantization, splits and fingerprints."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flow.job import (
    TrainingInputError,
    apply_dequantization,
    estimate_quantum,
    load_source,
    plan_dequantization,
)
from flow.job._split import fingerprint_array, split_indices
from flow.job._validation import drop_or_reject_missing, validate_data


def test_missing_values_rejected_with_counts() -> None:
    values = np.array([[1.0, math.nan], [math.nan, math.nan], [3.0, 4.0]])
    with pytest.raises(
        TrainingInputError,
        match=r"2 of 3 rows have missing values \(missing per column: 'a': 1, "
        r"'b': 2\); pass --drop-missing",
    ):
        drop_or_reject_missing(values, ["a", "b"], drop_missing=False)


def test_missing_values_dropped_on_request() -> None:
    values = np.array([[1.0, math.nan], [2.0, 5.0], [3.0, 4.0]])
    kept, dropped = drop_or_reject_missing(values, ["a", "b"], drop_missing=True)
    assert dropped == 1
    np.testing.assert_array_equal(kept, [[2.0, 5.0], [3.0, 4.0]])


def test_complete_data_unchanged() -> None:
    values = np.ones((3, 2))
    kept, dropped = drop_or_reject_missing(values, ["a", "b"], drop_missing=False)
    assert dropped == 0
    assert kept is values


def test_too_few_rows_rejected() -> None:
    values = np.arange(20.0).reshape(10, 2)
    with pytest.raises(
        TrainingInputError, match=r"10 usable rows, fewer than the minimum of 100"
    ):
        validate_data(values, ["a", "b"], min_rows=100)


def test_constant_column_rejected() -> None:
    values = np.column_stack([np.arange(200.0), np.full(200, 3.0)])
    with pytest.raises(
        TrainingInputError, match=r"column 'b' is constant \(every row is 3\)"
    ):
        validate_data(values, ["a", "b"], min_rows=100)


@pytest.mark.parametrize(
    ("values", "quantum"),
    [
        pytest.param([0.0, 1.0, 5.0, 7.0], 1.0, id="integers"),
        pytest.param([0.0, 10.0, 30.0, 100.0], 10.0, id="tens"),
        pytest.param([1.25, 1.5, 2.0, 3.75], 0.25, id="quarters"),
        pytest.param([0.01, 0.02, 0.05, 1.11], 0.01, id="cents"),
        pytest.param([0.0, math.pi, 2 * math.pi + 1e-3], math.pi, id="off-grid"),
    ],
)
def test_estimate_quantum(values: list[float], quantum: float) -> None:
    assert estimate_quantum(np.array(values)) == pytest.approx(quantum, rel=1e-9)


def test_estimate_quantum_needs_two_values() -> None:
    with pytest.raises(ValueError, match=r"at least two distinct values"):
        estimate_quantum(np.array([2.0, 2.0]))


def test_plan_flags_integer_and_tied_columns() -> None:
    rng = np.random.default_rng(0)
    continuous = rng.normal(size=1000)
    integers = rng.integers(0, 50, size=1000).astype(np.float64)
    tied = np.where(rng.random(1000) < 0.3, 0.0, rng.normal(size=1000))
    values = np.column_stack([continuous, integers, tied])
    plan = plan_dequantization(values, ["c", "i", "t"], tie_fraction=0.01)
    assert [entry.name for entry in plan] == ["i", "t"]
    assert plan[0].quantum == 1.0
    assert plan[0].reason == "every value is an integer"
    assert "covers 3" in plan[1].reason
    assert plan[1].most_frequent_value == 0.0


def test_plan_on_adult_flags_every_column() -> None:
    loaded = load_source("adult")
    plan = plan_dequantization(loaded.values, loaded.feature_names)
    assert [entry.name for entry in plan] == loaded.feature_names
    assert all(entry.quantum == 1.0 for entry in plan)


def test_plan_on_moons_is_empty() -> None:
    loaded = load_source("moons")
    assert plan_dequantization(loaded.values, loaded.feature_names) == []


def test_dequantization_stays_in_cell_and_is_deterministic() -> None:
    values = np.column_stack([np.arange(500.0), np.linspace(0.0, 1.0, 500)])
    plan = plan_dequantization(values, ["i", "c"])
    first = apply_dequantization(values, plan, seed=3)
    second = apply_dequantization(values, plan, seed=3)
    other_seed = apply_dequantization(values, plan, seed=4)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other_seed)
    assert np.all(np.abs(first[:, 0] - values[:, 0]) <= 0.5)
    assert len(np.unique(first[:, 0])) == 500
    np.testing.assert_array_equal(first[:, 1], values[:, 1])


def test_dequantization_breaks_ties() -> None:
    values = np.repeat(np.array([[0.0], [1.0], [2.0]]), 100, axis=0)
    plan = plan_dequantization(values, ["a"])
    dequantized = apply_dequantization(values, plan, seed=0)
    assert np.unique(dequantized).size == 300


def test_split_is_deterministic_partition() -> None:
    train, test = split_indices(1000, 0.2, seed=7)
    train_again, test_again = split_indices(1000, 0.2, seed=7)
    np.testing.assert_array_equal(train, train_again)
    np.testing.assert_array_equal(test, test_again)
    assert test.size == 200
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(1000))


def test_split_depends_on_seed() -> None:
    _, test_a = split_indices(1000, 0.2, seed=1)
    _, test_b = split_indices(1000, 0.2, seed=2)
    assert not np.array_equal(test_a, test_b)


def test_split_rejects_empty_part() -> None:
    with pytest.raises(ValueError, match=r"leaves an empty split"):
        split_indices(2, 0.1, seed=0)


def test_fingerprint_covers_dtype_shape_and_values() -> None:
    values = np.arange(6.0).reshape(3, 2)
    base = fingerprint_array(values)
    assert base == fingerprint_array(values.copy())
    assert len(base) == 64
    assert base != fingerprint_array(values.astype(np.float32))
    assert base != fingerprint_array(values.reshape(2, 3))
    changed = values.copy()
    changed[2, 1] = np.nextafter(changed[2, 1], 10.0)
    assert base != fingerprint_array(changed)
    big_endian = values.astype(">f8")
    assert base == fingerprint_array(big_endian)
