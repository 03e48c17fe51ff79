"""Real parts for client tests: trained models in a store and uvicorn processes."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "ASGI_BASE_URL",
    "SERVER_START_TIMEOUT_SECONDS",
    "TEST_WARMUP_MAX_ROWS",
    "ClientStore",
    "ServerProcess",
    "TrainedModel",
    "free_port",
    "make_app",
    "open_test_client",
    "train_models",
]

# Host name of the in-process app; requests never leave the process.
ASGI_BASE_URL = "http://asgi.test"
# Start-up imports JAX and Keras, loads, verifies and warms up every model;
# on a busy 2-core machine the first warm-up takes minutes.
SERVER_START_TIMEOUT_SECONDS = 600.0
# Tests send at most this many rows per request, except the batch-split test,
# so servers warm up only the buckets up to it.
TEST_WARMUP_MAX_ROWS = 512
SERVER_STOP_TIMEOUT_SECONDS = 30.0
TRAIN_TIMEOUT_SECONDS = 600.0
_POLL_INTERVAL_SECONDS = 0.2


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """A model version published in the test store."""

    name: str
    version: int
    digest: str
    dtype: str

    @property
    def ref(self) -> str:
        """Store reference ``name:version``."""
        return f"{self.name}:{self.version}"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _subprocess_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAUSSPROBE_")}
    env.setdefault("KERAS_BACKEND", "jax")
    env["JAX_PLATFORMS"] = "cpu"
    env.update(extra)
    return env


def train_models(
    store: Path, seeds: dict[str, int], log_dir: Path, *, epochs: int = 3
) -> dict[str, TrainedModel]:
    """Train small flows on the built-in moons data with ``gaussprobe train``.

    The runs are concurrent (one process per model) because each spends most
    of its time in JIT compilation and report figures.

    Args:
        store: Store directory.
        seeds: Model name to training seed; other seeds give other digests.
        log_dir: Directory that receives one ``train-NAME.log`` per model.
        epochs: Training epochs. The tests need a frozen flow, not a good one.

    Returns:
        The published version of each model, by name.
    """
    from flow.store import ArtifactStore

    runs = {}
    for name, seed in seeds.items():
        command = [
            sys.executable, "-m", "flow", "--store", str(store), "train", "moons",
            "--name", name, "--blocks", "2", "--components", "4",
            "--epochs", str(epochs), "--seed", str(seed),
        ]  # fmt: skip
        log_path = log_dir / f"train-{name}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=_subprocess_env({})
            )
        runs[name] = (process, log_path)

    for name, (process, log_path) in runs.items():
        return_code = process.wait(timeout=TRAIN_TIMEOUT_SECONDS)
        if return_code != 0:
            raise RuntimeError(
                f"gaussprobe train for {name!r} failed with exit code {return_code}; "
                f"output:\n{log_path.read_text(errors='replace')[-4000:]}"
            )

    store_reader = ArtifactStore(store, read_only=True)
    trained = {}
    for name in seeds:
        version = store_reader.list_versions(name)[-1]
        manifest = store_reader.open(f"{name}:{version}").manifest
        trained[name] = TrainedModel(
            name, version, manifest["weights_digest"], manifest["dtype"]
        )
    return trained


@dataclasses.dataclass(frozen=True)
class ClientStore:
    """Store with the models the client tests call.

    Attributes:
        root: Store directory.
        moons: float32 moons model ``moons:1``, the default model of servers.
        moons_retrained: Another float32 moons model, with another seed and
            so another digest.
        log_dir: Directory for training and server output.
        compilation_cache: JAX compilation cache shared by test servers.
    """

    root: Path
    moons: TrainedModel
    moons_retrained: TrainedModel
    log_dir: Path
    compilation_cache: Path

    def served_refs(self) -> list[str]:
        """References that test servers load; ``moons:1`` is the default."""
        return [self.moons.ref, self.moons_retrained.ref]


def make_app(client_store: ClientStore, refs: list[str], api_key: str | None) -> Any:
    """Create the service's FastAPI app for the test store (not started)."""
    from service import Settings, create_app

    settings = Settings(
        store=client_store.root,
        models=tuple(refs),
        install_signal_handlers=False,
        api_key=api_key,
        warmup_max_rows=TEST_WARMUP_MAX_ROWS,
        compilation_cache=client_store.compilation_cache,
    )
    return create_app(settings)


def open_test_client(app: Any) -> Any:
    """Return ``starlette.testclient.TestClient(app)``, an ``httpx.Client``.

    Starlette 1.x warns that its TestClient should use httpx2. The client
    needs the httpx-based one, whose class is an ``httpx.Client`` subclass.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Using `httpx` with `starlette.testclient`"
        )
        from starlette.testclient import TestClient

    return TestClient(app, base_url=ASGI_BASE_URL)


class ServerProcess:
    """``gaussprobe serve`` in a subprocess on 127.0.0.1.

    Args:
        store: Store directory.
        models: Model references to serve; the first is the default model.
        log_path: File that receives the server's output.
        compilation_cache: JAX compilation cache directory shared by the
            test servers, so restarts skip recompiling.
        port: Port to bind; a free one when None.
        extra_env: More ``GAUSSPROBE_*`` settings, e.g. an API key.
    """

    def __init__(
        self,
        store: Path,
        models: list[str],
        log_path: Path,
        compilation_cache: Path,
        *,
        port: int | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.store = store
        self.compilation_cache = compilation_cache
        self.models = models
        self.log_path = log_path
        self.port = port if port is not None else free_port()
        self.extra_env = extra_env or {}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> None:
        """Start the process and, when ``wait``, block until it is ready."""
        env = _subprocess_env(
            {
                "GAUSSPROBE_STORE": str(self.store),
                "GAUSSPROBE_MODELS": ",".join(self.models),
                "GAUSSPROBE_HOST": "127.0.0.1",
                "GAUSSPROBE_PORT": str(self.port),
                "GAUSSPROBE_LOG_LEVEL": "info",
                "GAUSSPROBE_WARMUP_MAX_ROWS": str(TEST_WARMUP_MAX_ROWS),
                "GAUSSPROBE_COMPILATION_CACHE": str(self.compilation_cache),
                **self.extra_env,
            }
        )
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                # `python -m service` runs the same code as `gaussprobe serve`.
                [sys.executable, "-m", "service"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Poll ``/health/ready`` until 200, failing if the process exits."""
        deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(
                    f"server exited during start-up; output:\n{self._tail()}"
                )
            try:
                response = httpx.get(f"{self.url}/health/ready", timeout=2.0)
            except httpx.TransportError:
                pass
            else:
                if response.status_code == 200:
                    return
            time.sleep(_POLL_INTERVAL_SECONDS)
        raise RuntimeError(
            f"server not ready after {SERVER_START_TIMEOUT_SECONDS} s; "
            f"output:\n{self._tail()}"
        )

    def stop(self) -> None:
        """Send SIGTERM, wait for the exit, and kill the process if it hangs."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=SERVER_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=SERVER_STOP_TIMEOUT_SECONDS)

    def _tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]
