"""``gaussprobe models`` commands against a real store."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pytest
from store_helpers import make_writable, publish_sample

from flow.store import ArtifactStore
from flow.store.cli import EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS, add_models_parser


def run_models(*argv: str) -> int:
    """Parse ``gaussprobe`` arguments with the models parser and run the handler."""
    parser = argparse.ArgumentParser(prog="gaussprobe")
    add_models_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    exit_code: int = args.func(args)
    return exit_code


@pytest.fixture
def published(store: ArtifactStore, model_file: Path) -> ArtifactStore:
    publish_sample(store, model_file)
    publish_sample(store, model_file)
    publish_sample(store, model_file, name="credit")
    store.set_alias("adult", 1, "production")
    return store


def test_list_models_table(
    published: ArtifactStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_models("models", "list", "--store", str(published.root)) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["MODEL", "VERSIONS", "LATEST", "ALIASES", "CREATED"]
    assert lines[1].split()[:4] == ["adult", "2", "2", "production=1"]
    assert lines[2].split()[:4] == ["credit", "1", "1", "-"]


def test_list_models_json(
    published: ArtifactStore, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = run_models("models", "list", "--json", "--store", str(published.root))
    assert exit_code == EXIT_OK
    payload = json.loads(capsys.readouterr().out)
    assert [model["name"] for model in payload["models"]] == ["adult", "credit"]
    assert payload["models"][0]["versions"] == [1, 2]
    assert payload["models"][0]["aliases"] == {"latest": 2, "production": 1}


def test_list_versions_table(
    published: ArtifactStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_models("models", "--store", str(published.root), "list", "adult") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "VERSION",
        "CREATED",
        "ALIASES",
        "SIZE",
        "WEIGHTS",
        "DIGEST",
    ]
    assert lines[1].split()[0] == "1"
    assert "production" in lines[1]
    assert "abababababababab" in lines[1]
    assert "latest" in lines[2]


def test_show_version(
    published: ArtifactStore, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = run_models(
        "models", "show", "adult@production", "--store", str(published.root)
    )
    assert exit_code == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("adult:1\n")
    rows = {
        line.split(maxsplit=1)[0]: line.split(maxsplit=1)[-1]
        for line in out.splitlines()
        if line
    }
    assert rows["feature_names"] == "age, income"
    assert rows["dim"] == "2"
    assert "report/index.html" in out


def test_show_json(
    published: ArtifactStore, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = run_models(
        "models", "show", "adult", "--json", "--store", str(published.root)
    )
    assert exit_code == EXIT_OK
    payload = json.loads(capsys.readouterr().out)
    assert payload["version"] == 2
    assert payload["aliases"] == ["latest"]
    assert payload["manifest"]["files"]["model.keras"]["bytes"] == 10240


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        pytest.param("adult:9", "version 9 of model 'adult' not found", id="version"),
        pytest.param("nobody", "model 'nobody' not found", id="model"),
        pytest.param("adult@staging", "alias 'staging'", id="alias"),
        pytest.param("../etc", "invalid model name", id="traversal"),
    ],
)
def test_show_missing_exits_2(
    published: ArtifactStore, capsys: pytest.CaptureFixture[str], ref: str, message: str
) -> None:
    exit_code = run_models("models", "show", ref, "--store", str(published.root))
    assert exit_code == EXIT_ERROR
    assert message in capsys.readouterr().err


def test_verify_clean_store(
    published: ArtifactStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_models("models", "verify", "--store", str(published.root)) == EXIT_OK
    assert "checked 3 version(s)" in capsys.readouterr().out


def test_verify_flipped_byte_exits_1(
    published: ArtifactStore, capsys: pytest.CaptureFixture[str]
) -> None:
    target = published.root / "adult" / "2" / "report" / "index.html"
    make_writable(target)
    target.write_bytes(b"<html>changed</html>\n")
    assert (
        run_models("models", "verify", "--store", str(published.root)) == EXIT_PROBLEMS
    )
    out = capsys.readouterr().out
    assert "FAIL adult:2 report/index.html: report/index.html has" in out
    assert "1 problem(s)" in out
    assert (
        run_models("models", "verify", "adult:1", "--store", str(published.root)) == 0
    )


def test_verify_missing_file_json(
    published: ArtifactStore, capsys: pytest.CaptureFixture[str]
) -> None:
    version_dir = published.root / "credit" / "1"
    make_writable(version_dir)
    (version_dir / "model.keras").unlink()
    exit_code = run_models(
        "models", "verify", "credit", "--json", "--store", str(published.root)
    )
    assert exit_code == EXIT_PROBLEMS
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] is False
    assert payload["checked"] == ["credit:1"]
    assert [(p["file"], p["kind"]) for p in payload["problems"]] == [
        ("model.keras", "missing_file")
    ]


def test_verify_missing_store_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = run_models("models", "verify", "--store", str(tmp_path / "absent"))
    assert exit_code == EXIT_ERROR
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "absent").exists()


def test_alias_sets_pointer(
    published: ArtifactStore, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = run_models(
        "models", "alias", "adult", "2", "production", "--store", str(published.root)
    )
    assert exit_code == EXIT_OK
    assert capsys.readouterr().out == "adult@production -> 2 (was 1)\n"
    assert published.resolve("adult@production").version == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(("adult", "2", "latest"), "publish moves it", id="latest"),
        pytest.param(("adult", "02", "prod"), "invalid version '02'", id="version"),
        pytest.param(("adult", "7", "prod"), "version 7 of model", id="missing"),
        pytest.param(("adult", "1", "../x"), "invalid alias", id="traversal"),
    ],
)
def test_alias_rejects_invalid(
    published: ArtifactStore,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    message: str,
) -> None:
    exit_code = run_models("models", "alias", *argv, "--store", str(published.root))
    assert exit_code == EXIT_ERROR
    assert message in capsys.readouterr().err
    assert published.aliases("adult") == {"latest": 2, "production": 1}


def test_store_from_env(
    published: ArtifactStore,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GAUSSPROBE_STORE", str(published.root))
    assert run_models("models", "list", "--json") == EXIT_OK
    payload = json.loads(capsys.readouterr().out)
    assert payload["store"] == str(published.root)


def test_gc_removes_stale_temporary(
    published: ArtifactStore, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = published.root / "adult" / ".tmp-dead"
    stale.mkdir()
    old = time.time() - 10
    os.utime(stale, (old, old))
    exit_code = run_models(
        "models", "gc", "--min-age-seconds", "5", "--store", str(published.root)
    )
    assert exit_code == EXIT_OK
    assert f"removed {stale}" in capsys.readouterr().out
    assert not stale.exists()


def test_console_script_runs_models(
    published: ArtifactStore, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = pytest.importorskip("flow.cli")
    exit_code = cli.main(["--store", str(published.root), "models", "list", "--json"])
    assert exit_code == EXIT_OK
    payload = json.loads(capsys.readouterr().out)
    assert [model["name"] for model in payload["models"]] == ["adult", "credit"]
