"""Run the compose file's trainer and api commands as local processes.

The commands, environment and healthcheck come from docker-compose.yml. The
test replaces only the store path (a temporary directory instead of the
`/store` volume), the bind address (127.0.0.1) and the port (a free one).
The store is made read-only for the api run, as the compose file mounts it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from deploy_files import (
    README_PATH,
    STORE_MOUNT,
    interpolate_tree,
    load_compose,
    replace_option,
)

MODEL_NAME = "moons"
# Tiny training through the compose variables: the test checks the wiring,
# not the fit.
TRAIN_VARIABLES = {
    "GAUSSPROBE_TRAIN_SOURCE": MODEL_NAME,
    "GAUSSPROBE_TRAIN_EPOCHS": "2",
    "GAUSSPROBE_TRAIN_BLOCKS": "2",
    "GAUSSPROBE_TRAIN_COMPONENTS": "4",
}
# Warm-up compiles the 16-row bucket only, to keep start-up short.
API_VARIABLES = {"GAUSSPROBE_WARMUP_MAX_ROWS": "16"}
TRAIN_TIMEOUT_SECONDS = 900.0
READY_TIMEOUT_SECONDS = 600.0
EXIT_TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 1.0
HEALTHCHECK_TIMEOUT_SECONDS = 30.0
ROUND_TRIP_TOLERANCE = 1e-4
LOG_PROB_TOLERANCE = 1e-4
QUICKSTART_BASE = "http://127.0.0.1:8000"
CONTAINER_HEALTH_URL = "http://127.0.0.1:8000/"
WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH

pytestmark = pytest.mark.slow


def _script(name: str) -> str:
    """Path of a console script installed next to this interpreter."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(f"console script {name!r} not found next to {sys.executable}")
    return str(path)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        return int(listener.getsockname()[1])


def _local_command(command: list[str], store: Path) -> list[str]:
    """Replace the store mount with ``store`` and the script with its path."""
    replaced = [str(store) if part == STORE_MOUNT else part for part in command]
    return [_script(replaced[0]), *replaced[1:]]


def _snapshot(root: Path) -> dict[str, tuple[int, int, int, str]]:
    """Map every path below ``root`` to (mode, size, mtime_ns, sha256)."""
    entries: dict[str, tuple[int, int, int, str]] = {}
    for path in sorted([root, *root.rglob("*")]):
        status = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        entries[str(path.relative_to(root))] = (
            status.st_mode,
            status.st_size,
            status.st_mtime_ns,
            digest,
        )
    return entries


def _set_writable(root: Path, writable: bool) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        path.chmod(mode | stat.S_IWUSR if writable else mode & ~WRITE_BITS)


def _readme_curl_commands() -> list[list[str]]:
    """Every `curl` command in README.md's bash blocks, split into words."""
    text = README_PATH.read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    commands: list[list[str]] = []
    for block in blocks:
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            if line.strip().startswith("curl "):
                commands.append(shlex.split(line))
    return commands


def _curl_request(words: list[str], base_url: str) -> httpx.Request:
    """Build the request a README `curl` command sends, aimed at ``base_url``."""
    method = "GET"
    headers: dict[str, str] = {}
    body: str | None = None
    url: str | None = None
    index = 1
    while index < len(words):
        word = words[index]
        if word == "-X":
            method = words[index + 1]
            index += 2
        elif word == "-H":
            name, _, value = words[index + 1].partition(":")
            headers[name.strip()] = value.strip()
            index += 2
        elif word == "-d":
            body = words[index + 1]
            method = "POST" if method == "GET" else method
            index += 2
        elif word.startswith("-"):
            index += 1
        else:
            url = word
            index += 1
    if url is None or not url.startswith(QUICKSTART_BASE):
        raise ValueError(
            f"README curl command without a {QUICKSTART_BASE} URL: {words}"
        )
    return httpx.Request(
        method,
        base_url + url.removeprefix(QUICKSTART_BASE),
        headers=headers,
        content=body,
    )


class ApiProcess:
    """The compose api command running as a local process, with its log."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            command, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, base_url: str) -> dict[str, Any]:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        last = "no response"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"api exited with {self.process.returncode} before ready:\n"
                    f"{self.log()}"
                )
            try:
                response = httpx.get(base_url + "/health/ready", timeout=5)
            except httpx.TransportError as error:
                last = repr(error)
            else:
                if response.status_code == 200:
                    return response.json()
                last = f"{response.status_code} {response.text}"
                if response.json().get("status") == "failed":
                    pytest.fail(f"api readiness failed: {last}\n{self.log()}")
            time.sleep(POLL_SECONDS)
        pytest.fail(
            f"api not ready after {READY_TIMEOUT_SECONDS} s ({last}):\n{self.log()}"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=EXIT_TIMEOUT_SECONDS)
        self._log.close()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """Compose services interpolated with the test's variables."""
    environ = {**TRAIN_VARIABLES, **API_VARIABLES}
    return interpolate_tree(load_compose()["services"], environ)


@pytest.fixture(scope="module")
def trained_store(
    compose: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Run the trainer command into a fresh store."""
    store = tmp_path_factory.mktemp("store")
    command = _local_command(compose["trainer"]["command"], store)
    env = {**os.environ, "GAUSSPROBE_STORE": str(store)}
    result = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=TRAIN_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"published {MODEL_NAME}:1" in result.stdout + result.stderr
    return store


@pytest.fixture(scope="module")
def api(
    compose: dict[str, Any],
    trained_store: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ApiProcess, str, Path]]:
    """Serve the trained store read-only with the api command and environment."""
    port = _free_port()
    command = _local_command(compose["api"]["command"], trained_store)
    command = replace_option(command, "--host", "127.0.0.1")
    command = replace_option(command, "--port", str(port))
    env = {
        **os.environ,
        **compose["api"]["environment"],
        "GAUSSPROBE_STORE": str(trained_store),
    }
    logs = tmp_path_factory.mktemp("api-log")
    _set_writable(trained_store, writable=False)
    server = ApiProcess(command, env, logs / "api.log")
    try:
        yield server, f"http://127.0.0.1:{port}", trained_store
    finally:
        server.stop()
        _set_writable(trained_store, writable=True)


def test_trainer_then_api(
    api: tuple[ApiProcess, str, Path], compose: dict[str, Any]
) -> None:
    from gaussprobe_client import ProbeClient

    server, base_url, store = api
    before = _snapshot(store)
    ready = server.wait_ready(base_url)
    assert ready["status"] == "ready"

    # The compose healthcheck, aimed at this server's port.
    healthcheck = [
        part.replace(CONTAINER_HEALTH_URL, base_url + "/")
        for part in compose["api"]["healthcheck"]["test"][1:]
    ]
    healthcheck[0] = sys.executable
    probe_result = subprocess.run(
        healthcheck,
        capture_output=True,
        text=True,
        timeout=HEALTHCHECK_TIMEOUT_SECONDS,
        check=False,
    )
    assert probe_result.returncode == 0, probe_result.stderr

    rows = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    with ProbeClient(base_url) as probe:
        metadata = probe.metadata()
        assert metadata["name"] == MODEL_NAME
        assert metadata["version"] == 1
        z, log_det = probe.transform_with_log_det(rows)
        assert z.shape == rows.shape
        np.testing.assert_allclose(probe.transform(rows), z)
        np.testing.assert_allclose(probe.invert(z), rows, atol=ROUND_TRIP_TOLERANCE)
        log_prob = probe.log_prob(rows)
        gaussian = -0.5 * np.sum(z.astype(np.float64) ** 2, axis=1) - np.log(2 * np.pi)
        np.testing.assert_allclose(
            log_prob,
            gaussian + log_det,
            rtol=LOG_PROB_TOLERANCE,
            atol=LOG_PROB_TOLERANCE,
        )

    # Each curl command of the README's serving section, as written.
    commands = _readme_curl_commands()
    paths = [words for words in commands if "/health/ready" in " ".join(words)]
    assert paths, "README has no /health/ready curl command"
    with httpx.Client(timeout=30) as http:
        for words in commands:
            response = http.send(_curl_request(words, base_url))
            assert response.status_code == 200, (words, response.text)
            if "/transform" in response.url.path:
                assert set(response.json()) >= {"z", "log_det"}
            if "/logprob" in response.url.path:
                assert len(response.json()["log_prob"]) == 1

    server.process.send_signal(signal.SIGTERM)
    try:
        exit_status = server.process.wait(timeout=EXIT_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"api did not exit after SIGTERM:\n{server.log()}")
    # uvicorn 0.55 (uvicorn/server.py) re-raises the captured SIGTERM after
    # its graceful shutdown, so a clean stop ends with -SIGTERM (143 in Docker).
    assert exit_status in (0, -signal.SIGTERM), server.log()
    log = server.log()
    assert "drain finished" in log
    assert "gaussprobe service stopped" in log
    assert "Application shutdown complete" in log
    assert "Traceback" not in log
    assert _snapshot(store) == before
