"""Fixtures of the service tests: a trained model in a real store, apps and servers."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_NAME = "moons"
NUM_TRAIN_ROWS = 2000
NUM_HELD_OUT_ROWS = 200
NUM_REFERENCE_ROWS = 8
# Small architecture and few epochs: the tests check serving, not fit quality.
TRAIN_OPTIONS: dict[str, Any] = {
    "num_blocks": 2,
    "num_components": 4,
    "epochs": 3,
    "seed": 0,
    "standardize": True,
}
# Warm-up compiles the 16-row bucket only, to keep server start-up short.
TEST_WARMUP_MAX_ROWS = 16
SERVER_READY_TIMEOUT_SECONDS = 600.0
SERVER_EXIT_TIMEOUT_SECONDS = 60.0
REPORT_HTML = (
    b"<!doctype html><html><head><title>moons</title></head>"
    b'<body><img src="figures/density.png"></body></html>'
)


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """A model published to a store, plus the in-process flow and held-out rows."""

    store: Path
    flow: Any
    held_out: np.ndarray
    digest: str
    figure: bytes


def _figure_png() -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(2, 2))
    axis.plot([0, 1], [0, 1])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def publish_moons(store_root: Path, flow_model: Any, reference_rows: np.ndarray) -> str:
    """Publish ``flow_model`` as ``moons`` with a reference block and a report."""
    from flow import compute_diagnostics, weights_digest
    from flow.store import ArtifactStore

    digest = weights_digest(flow_model)
    manifest = {
        "format_version": 1,
        "feature_names": ["x0", "x1"],
        "dim": 2,
        "dtype": "float32",
        "flow_config": flow_model.get_config(),
        "preprocessing": {"standardization": "first layer of the model"},
        "diagnostics": {"test": compute_diagnostics(flow_model, reference_rows)},
        "weights_digest": digest,
        "reference": {
            "x": reference_rows.astype(np.float64).tolist(),
            "z": np.asarray(flow_model(reference_rows), np.float64).tolist(),
            "log_prob": np.asarray(
                flow_model.log_prob(reference_rows), np.float64
            ).tolist(),
        },
    }
    with tempfile.TemporaryDirectory() as workdir:
        model_path = Path(workdir) / "model.keras"
        with warnings.catch_warnings():
            # keras 3.15 (keras/src/backend/jax/core.py, convert_to_numpy) calls
            # np.array on a variable whose __array__ lacks the copy keyword, and
            # NumPy 2 warns about it while saving.
            warnings.filterwarnings(
                "ignore",
                message="__array__ implementation doesn't accept a copy keyword",
                category=DeprecationWarning,
            )
            flow_model.save(str(model_path))
        ArtifactStore(store_root).publish(
            MODEL_NAME,
            files={
                "model.keras": model_path,
                "report/index.html": REPORT_HTML,
                "report/figures/density.png": _figure_png(),
            },
            manifest=manifest,
        )
    return digest


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """Train a small flow on two moons once and publish it to a fresh store."""
    from sklearn.datasets import make_moons

    import flow

    flow.enable_float64()
    data, _ = make_moons(
        n_samples=NUM_TRAIN_ROWS + NUM_HELD_OUT_ROWS, noise=0.1, random_state=0
    )
    data = data.astype(np.float32)
    train_rows, held_out = data[:NUM_TRAIN_ROWS], data[NUM_TRAIN_ROWS:]
    flow_model, _ = flow.fit_and_freeze(train_rows, **TRAIN_OPTIONS)
    store = tmp_path_factory.mktemp("store")
    digest = publish_moons(store, flow_model, held_out[:NUM_REFERENCE_ROWS])
    figure = (
        store / MODEL_NAME / "1" / "report" / "figures" / "density.png"
    ).read_bytes()
    return TrainedModel(
        store=store, flow=flow_model, held_out=held_out, digest=digest, figure=figure
    )


@pytest.fixture(scope="session")
def compilation_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """XLA cache shared by every app and server, so each program compiles once."""
    return tmp_path_factory.mktemp("xla-cache")


def make_settings(store: Path, cache: Path, **overrides: Any) -> Any:
    """Settings for an in-process app: no signal handlers, small warm-up."""
    from service import Settings

    values: dict[str, Any] = {
        "store": store,
        "warmup_max_rows": TEST_WARMUP_MAX_ROWS,
        "compilation_cache": cache,
        "install_signal_handlers": False,
        "access_log": False,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def running_app(
    settings: Any, *, wait_ready: bool = True
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """Run an app's lifespan in process and yield it with an ASGI client.

    With ``wait_ready``, wait until start-up ends and, when the app became
    ready, until its background warm-up finished too.
    """
    import anyio

    from service import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        if wait_ready:
            state = app.state.service.state
            deadline = time.monotonic() + SERVER_READY_TIMEOUT_SECONDS
            while str(state.phase) == "starting" and time.monotonic() < deadline:
                await anyio.sleep(0.05)
            while (
                str(state.phase) == "ready"
                and not state.warmup_finished
                and time.monotonic() < deadline
            ):
                await anyio.sleep(0.05)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://service"
        ) as client:
            yield app, client


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def app_client(
    trained: TrainedModel, compilation_cache: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """In-process client of an app serving the trained model, ready."""
    async with running_app(make_settings(trained.store, compilation_cache)) as (
        app,
        client,
    ):
        assert str(app.state.service.state.phase) == "ready", (
            app.state.service.state.failure
        )
        yield client


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclasses.dataclass
class ServerProcess:
    """A ``python -m service`` process on 127.0.0.1."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log(self) -> str:
        """Return what the server logged so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = SERVER_READY_TIMEOUT_SECONDS) -> None:
        """Poll ``/health/ready`` until 200; fail with the log on exit or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"server exited with {self.process.returncode}:\n{self.log()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if (
                    httpx.get(self.base_url + "/health/ready", timeout=5).status_code
                    == 200
                ):
                    return
            time.sleep(0.1)
        pytest.fail(f"server not ready after {timeout} s:\n{self.log()}")

    def wait_warmup(self, timeout: float = SERVER_READY_TIMEOUT_SECONDS) -> None:
        """Poll ``/health/ready`` until the background warm-up finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = httpx.get(self.base_url + "/health/ready", timeout=5).json()
            if body["warmup_finished"]:
                return
            time.sleep(0.1)
        pytest.fail(f"warm-up not finished after {timeout} s:\n{self.log()}")

    def stop(self) -> int:
        """Send SIGTERM and wait for the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(SERVER_EXIT_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(
    store: Path,
    cache: Path,
    log_dir: Path,
    *extra_args: str,
    env: dict[str, str] | None = None,
) -> ServerProcess:
    """Start ``python -m service`` on a free port; the caller waits for readiness."""
    port = free_port()
    log_path = log_dir / f"server-{port}.log"
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GAUSSPROBE_")
    }
    environment.update(env or {})
    command = [
        sys.executable,
        "-m",
        "service",
        "--store",
        str(store),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--warmup-max-rows",
        str(TEST_WARMUP_MAX_ROWS),
        "--compilation-cache",
        str(cache),
        *extra_args,
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=environment,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return ServerProcess(
        process=process, base_url=f"http://127.0.0.1:{port}", log_path=log_path
    )


@pytest.fixture(scope="session")
def server(
    trained: TrainedModel,
    compilation_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    """A real uvicorn server on 127.0.0.1 serving the trained model, warmed up."""
    running = start_server(
        trained.store, compilation_cache, tmp_path_factory.mktemp("logs")
    )
    try:
        running.wait_ready()
        running.wait_warmup()
        yield running
    finally:
        running.stop()


def snapshot_tree(root: Path) -> dict[str, tuple[int, int, str]]:
    """Map every path below ``root`` to (mode, mtime_ns, sha256 of file bytes)."""
    entries: dict[str, tuple[int, int, str]] = {}
    for path in sorted(root.rglob("*")):
        status = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        entries[str(path.relative_to(root))] = (
            status.st_mode,
            status.st_mtime_ns,
            digest,
        )
    root_status = root.lstat()
    entries["."] = (root_status.st_mode, root_status.st_mtime_ns, "")
    return entries
