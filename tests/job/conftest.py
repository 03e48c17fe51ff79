"""Fixtures of the training-job tests: CSV writers and a gaussprobe runner."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

SUBPROCESS_TIMEOUT_SECONDS = 900
"""Upper bound on one gaussprobe run in a test."""


def gaussprobe_command() -> list[str]:
    """Return the installed console script, or ``python -m flow`` without one."""
    script = Path(sys.executable).parent / "gaussprobe"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "flow"]


RunGaussprobe = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_gaussprobe(tmp_path: Path) -> RunGaussprobe:
    """Run ``gaussprobe ARGS`` in a subprocess with a clean environment."""

    def run(
        *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        environment = dict(os.environ)
        environment.pop("GAUSSPROBE_STORE", None)
        environment["KERAS_BACKEND"] = "jax"
        environment["JAX_PLATFORMS"] = "cpu"
        environment["PYTHONPATH"] = str(REPO_ROOT)
        if env:
            environment.update(env)
        return subprocess.run(
            [*gaussprobe_command(), *args],
            capture_output=True,
            text=True,
            env=environment,
            cwd=cwd if cwd is not None else tmp_path,
            timeout=SUBPROCESS_TIMEOUT_SECONDS,
            check=False,
        )

    return run


WriteCsv = Callable[[str, Sequence[str], Sequence[Sequence[object]]], Path]


@pytest.fixture
def write_csv(tmp_path: Path) -> WriteCsv:
    """Write a CSV file with a header row into the test's directory."""

    def write(
        filename: str, header: Sequence[str], rows: Sequence[Sequence[object]]
    ) -> Path:
        path = tmp_path / filename
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        return path

    return write
