"""Loading built-in data sets, CSV, .npy and .npz files."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from flow.job import BUILTIN_DATASETS, TrainingInputError, load_source
from flow.job._sources import builtin_dataset_path, parse_column_list

WriteCsv = Callable[..., Path]


def test_adult_default_columns() -> None:
    loaded = load_source("adult")
    assert loaded.feature_names == list(BUILTIN_DATASETS["adult"].default_columns)
    assert loaded.values.shape == (30162, 6)
    assert loaded.dataset_name == "adult"
    assert "CC BY 4.0" in loaded.source["attribution"]


def test_german_credit_default_columns() -> None:
    loaded = load_source("german_credit")
    assert loaded.feature_names == ["credit_amount", "duration", "age"]
    assert loaded.values.shape == (1000, 3)
    assert "Database Contents License 1.0" in loaded.source["attribution"]


def test_moons_matches_sklearn_recipe() -> None:
    from sklearn.datasets import make_moons

    expected, _ = make_moons(4000, noise=0.07, random_state=0)
    loaded = load_source("moons")
    np.testing.assert_array_equal(loaded.values, expected)
    assert loaded.feature_names == ["x0", "x1"]


def test_shipped_files_have_licence_notes() -> None:
    licences = builtin_dataset_path("DATA_LICENSES.md").read_text(encoding="utf-8")
    assert "Becker & Kohavi, 1996" in licences
    assert "CC BY 4.0" in licences
    assert "Hofmann, 1994" in licences
    assert "Database Contents License 1.0" in licences


def test_csv_selects_columns_in_order(write_csv: WriteCsv) -> None:
    path = write_csv("data.csv", ["a", "b", "c"], [[1, 2.5, "x"], [3, 4.5, "y"]])
    loaded = load_source(str(path), columns=["b", "a"])
    assert loaded.feature_names == ["b", "a"]
    np.testing.assert_array_equal(loaded.values, [[2.5, 1.0], [4.5, 3.0]])
    assert loaded.dataset_name == "data"
    assert loaded.source["kind"] == "csv"


def test_csv_missing_tokens_become_nan(write_csv: WriteCsv) -> None:
    path = write_csv("data.csv", ["a", "b"], [[1, ""], ["NA", 2], ["?", "nan"]])
    loaded = load_source(str(path))
    assert np.isnan(loaded.values).sum() == 4
    assert loaded.values[0, 0] == 1.0


def test_csv_unknown_column_lists_available(write_csv: WriteCsv) -> None:
    path = write_csv("data.csv", ["age", "income"], [[1, 2]])
    with pytest.raises(TrainingInputError, match=r"unknown column 'agee'.*age, income"):
        load_source(str(path), columns=["agee"])


def test_csv_non_numeric_column_names_value(write_csv: WriteCsv) -> None:
    path = write_csv("data.csv", ["age", "sex"], [[30, "male"], [40, "female"]])
    with pytest.raises(
        TrainingInputError,
        match=r"column 'sex' .* not numeric: line 2 has 'male'.*numeric columns: age",
    ):
        load_source(str(path))


def test_csv_infinite_value_rejected(write_csv: WriteCsv) -> None:
    path = write_csv("data.csv", ["a"], [[1], ["inf"]])
    with pytest.raises(TrainingInputError, match=r"non-finite value 'inf' on line 3"):
        load_source(str(path))


def test_csv_ragged_row_rejected(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3\n", encoding="utf-8")
    with pytest.raises(TrainingInputError, match=r"line 3 has 1 fields"):
        load_source(str(path))


def test_csv_empty_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(TrainingInputError, match=r"is empty"):
        load_source(str(path))


def test_missing_file_rejected(tmp_path: Path) -> None:
    with pytest.raises(TrainingInputError, match=r"data file .*nope\.csv' not found"):
        load_source(str(tmp_path / "nope.csv"))


def test_unsupported_suffix_rejected() -> None:
    with pytest.raises(TrainingInputError, match=r"neither a built-in data set"):
        load_source("data.parquet")


def test_npy_columns_by_name_and_index(tmp_path: Path) -> None:
    path = tmp_path / "features.npy"
    np.save(path, np.arange(12, dtype=np.float32).reshape(4, 3))
    loaded = load_source(str(path), columns=["x2", "0"])
    assert loaded.feature_names == ["x2", "x0"]
    np.testing.assert_array_equal(loaded.values[:, 0], [2.0, 5.0, 8.0, 11.0])
    assert loaded.values.dtype == np.float64


def test_npy_one_dimensional_rejected(tmp_path: Path) -> None:
    path = tmp_path / "vector.npy"
    np.save(path, np.arange(5.0))
    with pytest.raises(TrainingInputError, match=r"shape \(5,\).*must be 2-D"):
        load_source(str(path))


def test_npy_string_array_rejected(tmp_path: Path) -> None:
    path = tmp_path / "strings.npy"
    np.save(path, np.array([["a", "b"]]))
    with pytest.raises(TrainingInputError, match=r"dtype <U1, which is not numeric"):
        load_source(str(path))


def test_npz_requires_key_when_several(tmp_path: Path) -> None:
    path = tmp_path / "arrays.npz"
    np.savez(path, x=np.ones((3, 2)), y=np.ones((3, 1)))
    with pytest.raises(
        TrainingInputError, match=r"several arrays \(x, y\).*--array-key"
    ):
        load_source(str(path))


def test_npz_unknown_key_lists_available(tmp_path: Path) -> None:
    path = tmp_path / "arrays.npz"
    np.savez(path, x=np.ones((3, 2)), y=np.ones((3, 1)))
    with pytest.raises(TrainingInputError, match=r"array 'z' not found.*x, y"):
        load_source(str(path), array_key="z")


def test_npz_selected_key(tmp_path: Path) -> None:
    path = tmp_path / "arrays.npz"
    np.savez(path, x=np.ones((3, 2)), y=np.full((3, 1), 7.0))
    loaded = load_source(str(path), array_key="y")
    assert loaded.values.shape == (3, 1)
    assert loaded.source["array_key"] == "y"


def test_array_key_on_csv_rejected(write_csv: WriteCsv) -> None:
    path = write_csv("data.csv", ["a"], [[1]])
    with pytest.raises(TrainingInputError, match=r"--array-key 'x' applies only"):
        load_source(str(path), array_key="x")


def test_npy_nan_kept_as_missing(tmp_path: Path) -> None:
    path = tmp_path / "holes.npy"
    np.save(path, np.array([[1.0, math.nan], [2.0, 3.0]]))
    loaded = load_source(str(path))
    assert np.isnan(loaded.values).sum() == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("a,,b", r"empty column name", id="empty"),
        pytest.param("a,b,a", r"names a more than once", id="duplicate"),
    ],
)
def test_column_list_rejects(text: str, message: str) -> None:
    with pytest.raises(TrainingInputError, match=message):
        parse_column_list(text)


def test_model_name_from_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "My Data!.npy"
    np.save(path, np.ones((2, 2)))
    assert load_source(str(path)).dataset_name == "my-data-"
