"""The client distribution installs alone, without Keras or JAX."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CLIENT_SOURCE = Path(__file__).resolve().parents[2] / "clients" / "python"
INSTALL_TIMEOUT_SECONDS = 600
HEAVY_PACKAGES = ("jax", "jaxlib", "keras", "tensorflow", "torch", "fastapi")


def run(command: list[str], cwd: Path) -> str:
    completed = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, (
        f"{' '.join(command)} failed with exit code {completed.returncode}:\n"
        f"{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    )
    return completed.stdout


def test_client_installs_without_keras_or_jax(tmp_path: Path) -> None:
    # Installing from a copy keeps build and egg-info folders out of the tree.
    source = tmp_path / "client-source"
    shutil.copytree(
        CLIENT_SOURCE,
        source,
        ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"),
    )
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = str(env_dir / "bin" / "python")

    run([python, "-m", "pip", "install", "--quiet", str(source)], tmp_path)
    listing = json.loads(run([python, "-m", "pip", "list", "--format=json"], tmp_path))
    installed = {item["name"].lower() for item in listing}
    probe_script = (
        "import sys, gaussprobe_client\n"
        "from gaussprobe_client import ProbeClient\n"
        "client = ProbeClient('http://127.0.0.1:9')\n"
        "try:\n"
        "    client.as_jax_function('transform')\n"
        "except ImportError as exc:\n"
        "    print('jax-missing:', exc)\n"
        "print('modules:', sorted(m for m in sys.modules if m.split('.')[0] in "
        "('jax', 'keras')))\n"
    )
    output = run([python, "-c", probe_script], tmp_path)

    assert "gaussprobe-client" in installed
    assert "httpx" in installed
    assert "numpy" in installed
    for package in HEAVY_PACKAGES:
        assert package not in installed, f"{package} was installed with the client"
    assert "pip install 'gaussprobe-client[jax]'" in output
    assert "modules: []" in output
    assert sys.executable != python
