"""Start-up, verification failures, read-only stores and the SIGTERM drain."""

from __future__ import annotations

import io
import shutil
import signal
import stat
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.service.conftest import (
    MODEL_NAME,
    TrainedModel,
    make_settings,
    running_app,
    snapshot_tree,
    start_server,
)

pytestmark = pytest.mark.slow

NPY = "application/x-npy"
DRAIN_BATCH_ROWS = 262_144
DRAIN_REQUESTS = 3
POLL_SECONDS = 0.02
WORKER_PROBES = 20
WORKER_READY_TIMEOUT_SECONDS = 600.0


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _copy_store(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, copy_function=shutil.copy2)
    return target


def _make_read_only(root: Path) -> None:
    write_bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode & ~write_bits)


def test_read_only_store_unchanged(
    trained: TrainedModel, compilation_cache: Path, tmp_path: Path
) -> None:
    store = _copy_store(trained.store, tmp_path / "store")
    _make_read_only(store)
    before = snapshot_tree(store)
    server = start_server(
        store, compilation_cache, tmp_path, "--model", f"{MODEL_NAME}@latest"
    )
    try:
        server.wait_ready()
        base = server.base_url
        assert (
            httpx.post(
                base + "/transform", json={"x": [[0.1, 0.2]]}, timeout=30
            ).status_code
            == 200
        )
        assert httpx.get(base + "/diagnostics/report", timeout=30).status_code == 200
        assert httpx.get(base + "/diagnostics", timeout=30).status_code == 200
    finally:
        exit_status = server.stop()
    assert exit_status in (0, -signal.SIGTERM)
    assert snapshot_tree(store) == before
    assert "loaded model moons version 1 digest " + trained.digest in server.log()


@pytest.mark.asyncio
async def test_tampered_file_fails_readiness(
    trained: TrainedModel, compilation_cache: Path, tmp_path: Path
) -> None:
    store = _copy_store(trained.store, tmp_path / "store")
    figure = store / MODEL_NAME / "1" / "report" / "figures" / "density.png"
    figure.write_bytes(figure.read_bytes() + b"tampered")
    settings = make_settings(store, compilation_cache)
    async with running_app(settings) as (_, client):
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "failed"
        assert "report/figures/density.png" in body["error"]
        live = await client.get("/health/live")
        assert live.status_code == 200
        blocked = await client.post("/transform", json={"x": [[0.0, 0.0]]})
        assert blocked.status_code == 503
        assert blocked.json()["code"] == "not_ready"


@pytest.mark.asyncio
async def test_wrong_reference_fails_self_test(
    trained: TrainedModel,
    compilation_cache: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = _copy_store(trained.store, tmp_path / "store")
    # Version 2 claims outputs shifted by 0.5, which the weights cannot produce.
    from flow.store import ArtifactStore

    version = ArtifactStore(store).resolve(f"{MODEL_NAME}:1")
    shifted = dict(version.manifest)
    for key in ("name", "version", "created_at", "files"):
        shifted.pop(key, None)
    shifted["reference"] = dict(shifted["reference"])
    shifted["reference"]["z"] = (np.asarray(shifted["reference"]["z"]) + 0.5).tolist()
    ArtifactStore(store).publish(
        MODEL_NAME, files={"model.keras": version.file("model.keras")}, manifest=shifted
    )
    settings = make_settings(store, compilation_cache, models=(f"{MODEL_NAME}:2",))
    async with running_app(settings) as (_, client):
        body = (await client.get("/health/ready")).json()
    assert body["status"] == "failed"
    assert "self-test z error" in body["error"]
    assert "manifest.json" in body["error"]


@pytest.mark.asyncio
async def test_digest_mismatch_fails(
    trained: TrainedModel, compilation_cache: Path, tmp_path: Path
) -> None:
    store = _copy_store(trained.store, tmp_path / "store")
    from flow.store import ArtifactStore

    version = ArtifactStore(store).resolve(f"{MODEL_NAME}:1")
    manifest = {
        k: v
        for k, v in version.manifest.items()
        if k not in ("name", "version", "created_at", "files")
    }
    manifest["weights_digest"] = "sha256:" + "0" * 64
    ArtifactStore(store).publish(
        MODEL_NAME,
        files={"model.keras": version.file("model.keras")},
        manifest=manifest,
    )
    settings = make_settings(store, compilation_cache)
    async with running_app(settings) as (_, client):
        body = (await client.get("/health/ready")).json()
    assert body["status"] == "failed"
    assert "model.keras" in body["error"]
    assert "weights digest" in body["error"]


@pytest.mark.asyncio
async def test_empty_store_fails(compilation_cache: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, compilation_cache)
    async with running_app(settings) as (_, client):
        body = (await client.get("/health/ready")).json()
    assert body["status"] == "failed"
    assert "has no models" in body["error"]


def test_readiness_and_sigterm_drain(
    trained: TrainedModel, compilation_cache: Path, tmp_path: Path
) -> None:
    server = start_server(trained.store, compilation_cache, tmp_path)
    base = server.base_url
    try:
        seen_starting = False
        while True:
            try:
                ready = httpx.get(base + "/health/ready", timeout=5)
            except httpx.TransportError:
                assert server.process.poll() is None, server.log()
                time.sleep(POLL_SECONDS)
                continue
            if ready.status_code == 200:
                break
            assert ready.json()["status"] == "starting"
            if not seen_starting:
                seen_starting = True
                assert httpx.get(base + "/health/live", timeout=5).status_code == 200
                early = httpx.post(
                    base + "/transform", json={"x": [[0.0, 0.0]]}, timeout=5
                )
                assert early.status_code == 503
                assert early.json()["code"] == "not_ready"
            time.sleep(POLL_SECONDS)
        assert seen_starting
        # Once warmed up, the first heavy request compiles the 4096-row
        # buckets above the test's warm-up cap instead of running 16-row calls.
        server.wait_warmup()

        rows = np.tile(
            trained.held_out, (DRAIN_BATCH_ROWS // len(trained.held_out) + 1, 1)
        )[:DRAIN_BATCH_ROWS]
        body = _npy(rows)

        def heavy_request(_: int) -> int:
            response = httpx.post(
                base + "/logprob?return_score=true",
                content=body,
                headers={"Content-Type": NPY, "Accept": "application/x-npz"},
                timeout=600,
            )
            return response.status_code

        with ThreadPoolExecutor(DRAIN_REQUESTS) as pool:
            futures = [pool.submit(heavy_request, i) for i in range(DRAIN_REQUESTS)]
            # Signal only once every request has reached the server: one that
            # arrives after SIGTERM is rightly rejected with 503.
            while (
                httpx.get(base + "/health/ready", timeout=5).json()["in_flight"]
                < DRAIN_REQUESTS
            ):
                assert not all(future.done() for future in futures)
                time.sleep(POLL_SECONDS)
            server.process.send_signal(signal.SIGTERM)
            draining = httpx.get(base + "/health/ready", timeout=5)
            assert draining.status_code == 503
            assert draining.json()["status"] == "draining"
            rejected = httpx.post(
                base + "/transform", json={"x": [[0.0, 0.0]]}, timeout=5
            )
            assert rejected.status_code == 503
            assert rejected.json()["code"] == "not_ready"
            statuses = [future.result() for future in futures]
        assert statuses == [200] * DRAIN_REQUESTS
        server.process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"server did not exit after the drain:\n{server.log()}")
    finally:
        server.stop()
    assert server.process.returncode in (0, -signal.SIGTERM)
    log = server.log()
    assert "draining" in log
    assert "drain finished" in log


def test_two_workers_serve(
    trained: TrainedModel, compilation_cache: Path, tmp_path: Path
) -> None:
    server = start_server(trained.store, compilation_cache, tmp_path, "--workers", "2")
    try:
        server.wait_ready()
        # Each request may reach either worker, so every one must answer.
        for _ in range(WORKER_PROBES):
            response = httpx.post(
                server.base_url + "/transform", json={"x": [[0.1, 0.2]]}, timeout=300
            )
            assert response.status_code in (200, 503), response.text
        deadline = time.monotonic() + WORKER_READY_TIMEOUT_SECONDS
        statuses: list[int] = []
        while (
            time.monotonic() < deadline
            and statuses[-WORKER_PROBES:] != [200] * WORKER_PROBES
        ):
            statuses.append(
                httpx.get(server.base_url + "/health/ready", timeout=30).status_code
            )
            time.sleep(POLL_SECONDS)
        assert statuses[-WORKER_PROBES:] == [200] * WORKER_PROBES
    finally:
        exit_status = server.stop()
    assert exit_status in (0, -signal.SIGTERM)
    assert server.log().count("service stopped") == 2
