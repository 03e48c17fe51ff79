"""Settings from environment variables and command-line flags."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from service import Settings
from service.cli import add_serve_parser, build_parser, settings_from_args


def test_from_env_reads_every_variable() -> None:
    settings = Settings.from_env(
        {
            "GAUSSPROBE_STORE": "/data/store",
            "GAUSSPROBE_MODELS": "adult, credit:3,iris@production",
            "GAUSSPROBE_HOST": "0.0.0.0",
            "GAUSSPROBE_PORT": "9000",
            "GAUSSPROBE_WORKERS": "2",
            "GAUSSPROBE_MAX_BATCH_ROWS": "1024",
            "GAUSSPROBE_MAX_BODY_BYTES": "2048",
            "GAUSSPROBE_API_KEY": "secret",
            "GAUSSPROBE_LOG_LEVEL": "DEBUG",
            "GAUSSPROBE_ACCESS_LOG": "false",
        }
    )
    assert settings.store == Path("/data/store")
    assert settings.models == ("adult", "credit:3", "iris@production")
    assert (settings.host, settings.port, settings.workers) == ("0.0.0.0", 9000, 2)
    assert (settings.max_batch_rows, settings.max_body_bytes) == (1024, 2048)
    assert settings.api_key == "secret"
    assert settings.log_level == "debug"
    assert settings.access_log is False


def test_defaults_match_contract() -> None:
    settings = Settings.from_env({})
    assert settings.store == Path("./store")
    assert settings.models == ()
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert settings.max_batch_rows == 262_144
    assert settings.max_body_bytes == 268_435_456
    assert settings.api_key is None
    assert settings.log_level == "info"


def test_api_key_hidden_from_repr() -> None:
    assert "secret" not in repr(Settings(api_key="secret"))


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        pytest.param(
            {"GAUSSPROBE_PORT": "eighty"},
            "GAUSSPROBE_PORT='eighty' is not an integer",
            id="port-text",
        ),
        pytest.param(
            {"GAUSSPROBE_PORT": "70000"},
            "GAUSSPROBE_PORT=70000 is out of range",
            id="port-range",
        ),
        pytest.param(
            {"GAUSSPROBE_MAX_BATCH_ROWS": "0"},
            "GAUSSPROBE_MAX_BATCH_ROWS=0",
            id="rows-zero",
        ),
        pytest.param(
            {"GAUSSPROBE_LOG_LEVEL": "loud"}, "not a log level", id="log-level"
        ),
        pytest.param(
            {"GAUSSPROBE_API_KEY": " "},
            "GAUSSPROBE_API_KEY is set but empty",
            id="empty-key",
        ),
        pytest.param({"GAUSSPROBE_ACCESS_LOG": "maybe"}, "not a boolean", id="bool"),
    ],
)
def test_from_env_rejects(environ: dict[str, str], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(")):
        Settings.from_env(environ)


def test_env_round_trip() -> None:
    settings = Settings(models=("a", "b:2"), port=9100, api_key="k", access_log=False)
    assert Settings.from_env(settings.to_env()) == settings.replace(
        install_signal_handlers=True
    )


def test_flags_override_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GAUSSPROBE_PORT", "9000")
    monkeypatch.setenv("GAUSSPROBE_MODELS", "envmodel")
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n", encoding="utf-8")
    args = build_parser().parse_args(
        [
            "--port",
            "9001",
            "--model",
            "a",
            "--model",
            "b@production",
            "--api-key-file",
            str(key_file),
        ]
    )
    settings = settings_from_args(args)
    assert settings.port == 9001
    assert settings.models == ("a", "b@production")
    assert settings.api_key == "from-file"


def test_serve_subcommand_registers() -> None:
    parser = argparse.ArgumentParser(prog="gaussprobe")
    subparsers = parser.add_subparsers(dest="command")
    add_serve_parser(subparsers)
    args = parser.parse_args(["serve", "--store", "/tmp/s", "--workers", "2"])
    assert args.command == "serve"
    assert args.store == Path("/tmp/s")
    assert args.workers == 2


def test_gaussprobe_serve_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "flow", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--model NAME[:VERSION|@ALIAS]" in result.stdout
    assert "--compilation-cache" in result.stdout
