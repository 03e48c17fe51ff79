"""The ``gaussprobe`` command line: subcommands, store resolution, lazy imports."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from flow.cli import _resolve_store, build_parser, main
from flow.store import ArtifactStore

RunGaussprobe = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def store_with_model(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    ArtifactStore(root).publish(
        "demo", files={"model.keras": b"placeholder"}, manifest={"dim": 2}
    )
    return root


def test_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="0"):
        main(["--help"])
    out = capsys.readouterr().out
    assert "train" in out
    assert "models" in out
    assert "serve" in out
    assert "GAUSSPROBE_STORE" in out


def test_missing_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="2"):
        main([])
    assert "required: COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize(
    "position",
    [pytest.param("before", id="before-command"), pytest.param("after", id="after")],
)
def test_models_list_uses_store_flag(
    store_with_model: Path, capsys: pytest.CaptureFixture[str], position: str
) -> None:
    store = str(store_with_model)
    if position == "before":
        argv = ["--store", store, "models", "list"]
    else:
        argv = ["models", "list", "--store", store]
    assert main(argv) == 0
    assert "demo" in capsys.readouterr().out


def test_models_list_uses_env_store(
    store_with_model: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GAUSSPROBE_STORE", str(store_with_model))
    assert main(["models", "list"]) == 0
    assert "demo" in capsys.readouterr().out


def test_default_store_is_relative(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GAUSSPROBE_STORE", raising=False)
    args = build_parser("train").parse_args(["train", "moons"])
    _resolve_store(args)
    assert args.store == Path("./store")


def test_serve_keeps_global_store() -> None:
    args = build_parser("serve").parse_args(["--store", "/srv/models", "serve"])
    _resolve_store(args)
    assert args.store == Path("/srv/models")
    assert callable(args.func)


def test_train_does_not_import_web_stack() -> None:
    probe = (
        "import sys\n"
        "from flow.cli import build_parser\n"
        "build_parser('train').parse_args(['train', 'moons'])\n"
        "web = ('fastapi', 'uvicorn', 'service')\n"
        "print(sorted(m for m in web if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_console_script_serve_help(run_gaussprobe: RunGaussprobe) -> None:
    result = run_gaussprobe("serve", "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--model" in result.stdout
    assert "--port" in result.stdout


def test_module_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flow", "train", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--drop-missing" in result.stdout
    assert "--validation-split" in result.stdout
