"""A built wheel ships the data sets, and an installed copy finds them."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

BUILD_TIMEOUT_SECONDS = 300

pytestmark = pytest.mark.slow

SHIPPED_FILES = (
    "flow/job/datasets/adult.csv",
    "flow/job/datasets/german_credit.csv",
    "flow/job/datasets/DATA_LICENSES.md",
)


def test_wheel_contains_datasets_and_installed_copy_loads_them(
    tmp_path: Path,
) -> None:
    wheel_dir = tmp_path / "wheel"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO_ROOT),
            "--no-deps",
            "--wheel-dir",
            str(wheel_dir),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    (wheel,) = wheel_dir.glob("gaussprobe-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for shipped in SHIPPED_FILES:
        assert shipped in names

    target = tmp_path / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-4000:]

    # Run outside the source tree so only the installed copy is importable.
    probe = (
        "import flow.job._sources as s\n"
        "loaded = s.load_source('adult')\n"
        "print(s.__file__)\n"
        "print(loaded.values.shape)\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(target), "KERAS_BACKEND": "jax"}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=BUILD_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    module_path, shape = result.stdout.splitlines()[-2:]
    assert module_path.startswith(str(target))
    assert shape == "(30162, 6)"
