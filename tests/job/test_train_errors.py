"""``gaussprobe train`` rejects bad input with exit status 2 and publishes nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from flow.cli import main

WriteCsv = Callable[..., Path]

EXIT_INPUT_ERROR = 2


def _nothing_published(store: Path) -> bool:
    if not store.exists():
        return True
    return not any(path.name == "manifest.json" for path in store.rglob("*"))


def _run(
    store: Path, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    try:
        status = main(["train", "--store", str(store), *args])
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
    return status, capsys.readouterr().err


@pytest.fixture
def good_rows() -> list[list[object]]:
    rng = np.random.default_rng(0)
    return [[float(a), float(b), "x"] for a, b in rng.normal(size=(150, 2))]


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    status, err = _run(store, capsys, str(tmp_path / "absent.csv"))
    assert status == EXIT_INPUT_ERROR
    assert "absent.csv' not found; check the path" in err
    assert _nothing_published(store)


def test_unknown_column_lists_available(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    write_csv: WriteCsv,
    good_rows: list[list[object]],
) -> None:
    store = tmp_path / "store"
    path = write_csv("data.csv", ["a", "b", "label"], good_rows)
    status, err = _run(store, capsys, str(path), "--columns", "a,c")
    assert status == EXIT_INPUT_ERROR
    assert "unknown column 'c'" in err
    assert "available columns: a, b, label" in err
    assert _nothing_published(store)


def test_unknown_column_of_builtin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    status, err = _run(store, capsys, "adult", "--columns", "age,salary")
    assert status == EXIT_INPUT_ERROR
    assert "unknown column 'salary'" in err
    assert "capital_gain" in err
    assert _nothing_published(store)


def test_non_numeric_column(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    write_csv: WriteCsv,
    good_rows: list[list[object]],
) -> None:
    store = tmp_path / "store"
    path = write_csv("data.csv", ["a", "b", "label"], good_rows)
    status, err = _run(store, capsys, str(path))
    assert status == EXIT_INPUT_ERROR
    assert "column 'label'" in err
    assert "is not numeric: line 2 has 'x'" in err
    assert "numeric columns: a, b" in err
    assert _nothing_published(store)


def test_categorical_builtin_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    status, err = _run(store, capsys, "german_credit", "--columns", "age,sex")
    assert status == EXIT_INPUT_ERROR
    assert "column 'sex'" in err
    assert "numeric columns: risk, job, credit_amount, duration, age" in err
    assert _nothing_published(store)


def test_missing_values_rejected(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    write_csv: WriteCsv,
    good_rows: list[list[object]],
) -> None:
    store = tmp_path / "store"
    for row in good_rows[:7]:
        row[1] = "NA"
    path = write_csv("data.csv", ["a", "b", "label"], good_rows)
    status, err = _run(store, capsys, str(path), "--columns", "a,b")
    assert status == EXIT_INPUT_ERROR
    assert "7 of 150 rows have missing values" in err
    assert "'b': 7" in err
    assert "pass --drop-missing" in err
    assert _nothing_published(store)


def test_drop_missing_then_too_few_rows(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    write_csv: WriteCsv,
    good_rows: list[list[object]],
) -> None:
    store = tmp_path / "store"
    for row in good_rows[:60]:
        row[0] = ""
    path = write_csv("data.csv", ["a", "b", "label"], good_rows)
    status, err = _run(store, capsys, str(path), "--columns", "a,b", "--drop-missing")
    assert status == EXIT_INPUT_ERROR
    assert (
        "the data has 90 usable rows (60 rows with missing values dropped), "
        "fewer than the minimum of 100" in err
    )
    assert "lower --min-rows" in err
    assert _nothing_published(store)


def test_too_few_rows_with_min_rows(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "store"
    status, err = _run(store, capsys, "german_credit", "--min-rows", "5000")
    assert status == EXIT_INPUT_ERROR
    assert "the data has 1000 usable rows, fewer than the minimum of 5000" in err
    assert _nothing_published(store)


def test_constant_column(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    write_csv: WriteCsv,
    good_rows: list[list[object]],
) -> None:
    store = tmp_path / "store"
    rows = [[a, 4.5, label] for a, _, label in good_rows]
    path = write_csv("data.csv", ["a", "b", "label"], rows)
    status, err = _run(store, capsys, str(path), "--columns", "a,b")
    assert status == EXIT_INPUT_ERROR
    assert "column 'b' is constant (every row is 4.5)" in err
    assert "remove it from --columns" in err
    assert _nothing_published(store)


def test_npz_without_array_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    path = tmp_path / "arrays.npz"
    np.savez(path, features=np.ones((200, 2)), labels=np.ones(200))
    status, err = _run(store, capsys, str(path))
    assert status == EXIT_INPUT_ERROR
    assert "several arrays (features, labels); choose one with --array-key" in err
    assert _nothing_published(store)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            ["--epochs", "0"], "--epochs must be an integer >= 1, got 0", id="epochs"
        ),
        pytest.param(
            ["--lr", "-0.1"], "--lr must be a positive finite number", id="lr"
        ),
        pytest.param(
            ["--batch-size", "0"], "--batch-size must be an integer >= 1", id="batch"
        ),
        pytest.param(
            ["--blocks", "0"], "--blocks must be an integer >= 1", id="blocks"
        ),
        pytest.param(
            ["--validation-split", "1.5"],
            "--validation-split must be a fraction strictly between 0 and 1",
            id="validation-split",
        ),
        pytest.param(
            ["--name", "Adult Model"], "--name 'Adult Model' is not a valid", id="name"
        ),
        pytest.param(["--epochs", "ten"], "invalid int value: 'ten'", id="epochs-text"),
        pytest.param(["--dtype", "float16"], "invalid choice: 'float16'", id="dtype"),
    ],
)
def test_bad_hyperparameter(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    message: str,
) -> None:
    store = tmp_path / "store"
    status, err = _run(store, capsys, "moons", *options)
    assert status == EXIT_INPUT_ERROR
    assert message in err
    assert _nothing_published(store)


def test_validation_split_leaves_too_few_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    path = tmp_path / "small.npy"
    np.save(path, np.random.default_rng(0).normal(size=(100, 2)))
    status, err = _run(store, capsys, str(path), "--validation-split", "0.95")
    assert status == EXIT_INPUT_ERROR
    assert "--validation-split 0.95 of 80 training rows leaves 4 rows" in err
    assert _nothing_published(store)


def test_console_script_exit_status(
    run_gaussprobe: Callable[..., object], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    result = run_gaussprobe("train", "--store", str(store), "missing.npy")
    assert result.returncode == EXIT_INPUT_ERROR  # type: ignore[attr-defined]
    assert "missing.npy' not found" in result.stderr  # type: ignore[attr-defined]
    assert result.stdout == ""  # type: ignore[attr-defined]
    assert _nothing_published(store)


def test_store_path_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    store.write_text("not a store", encoding="utf-8")
    status, err = _run(store, capsys, "moons")
    assert status == EXIT_INPUT_ERROR
    assert "exists and is not a directory" in err
    assert store.read_text(encoding="utf-8") == "not a store"
