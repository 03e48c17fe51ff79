"""Benchmark the HTTP service on loopback: latency, batch throughput, start-up, memory.

Trains a small two-moons flow into a temporary store, or serves the models of
``--store`` (for example the default moons model of ``gaussprobe train
moons``), starts ``python -m service`` on a free 127.0.0.1 port and measures:

- cold start (empty XLA compilation cache) and warm-cache restart: seconds
  to ready, seconds until the background warm-up finished, resident memory
  (VmRSS) at ready, and the server's per-step load times from its log;
- single-row ``/transform`` p50/p99 with a keep-alive httpx client;
- rows/s of 65,536-row ``/transform`` batches in JSON and .npy, next to the
  in-process ``CompiledFlow.transform`` rows/s measured in the same run;
- resident memory of the server with one model after the runs.

Latency and throughput are measured after the warm-up finished, so the
background compilation does not share the CPU with them.

Run::

    .venv/bin/python benchmarks/bench_service.py [--store DIR] [--output results.json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _common import resident_megabytes

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_NAME = "moons"
TRAIN_ROWS = 2000
BATCH_ROWS = 65_536
NPY = "application/x-npy"
READY_TIMEOUT_SECONDS = 3600.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _train_store(root: Path, num_blocks: int, num_components: int, epochs: int) -> Any:
    from sklearn.datasets import make_moons

    import flow
    from flow import fit_and_freeze, weights_digest
    from flow.store import ArtifactStore

    flow.enable_float64()
    data, _ = make_moons(TRAIN_ROWS + 8, noise=0.1, random_state=0)
    data = data.astype(np.float32)
    model, _ = fit_and_freeze(
        data[:TRAIN_ROWS],
        num_blocks=num_blocks,
        num_components=num_components,
        epochs=epochs,
        seed=0,
        standardize=True,
    )
    reference = data[TRAIN_ROWS:]
    manifest = {
        "format_version": 1,
        "feature_names": ["x0", "x1"],
        "dim": 2,
        "dtype": "float32",
        "weights_digest": weights_digest(model),
        "reference": {
            "x": reference.astype(np.float64).tolist(),
            "z": np.asarray(model(reference), np.float64).tolist(),
            "log_prob": np.asarray(model.log_prob(reference), np.float64).tolist(),
        },
    }
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "model.keras"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            model.save(str(path))
        ArtifactStore(root).publish(
            MODEL_NAME, files={"model.keras": path}, manifest=manifest
        )
    return model


class Server:
    """A ``python -m service`` process on 127.0.0.1."""

    def __init__(
        self, store: Path, cache: Path, log_path: Path, extra: list[str]
    ) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GAUSSPROBE_")}
        env["GAUSSPROBE_ACCESS_LOG"] = "false"
        command = [
            sys.executable,
            "-m",
            "service",
            "--store",
            str(store),
            "--port",
            str(self.port),
            "--compilation-cache",
            str(cache),
            *extra,
        ]
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.started = time.perf_counter()
            self.process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def _wait_for(self, condition: str) -> float:
        # Returns seconds from process start until /health/ready is 200 and,
        # for "warmup", until its body reports warmup_finished.
        deadline = self.started + READY_TIMEOUT_SECONDS
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                response = httpx.get(self.base_url + "/health/ready", timeout=5)
                if response.status_code == 200 and (
                    condition == "ready" or response.json()["warmup_finished"]
                ):
                    return time.perf_counter() - self.started
            time.sleep(0.05)
        what = "readiness" if condition == "ready" else "the end of the warm-up"
        raise RuntimeError(
            f"timed out after {READY_TIMEOUT_SECONDS:.0f} s waiting for {what}; "
            f"end of the server log:\n{self.log_path.read_text()[-4000:]}"
        )

    def start_up(self) -> dict[str, Any]:
        """Wait for readiness and the warm-up; return times, memory and log lines."""
        result: dict[str, Any] = {"ready_seconds": self._wait_for("ready")}
        result["rss_at_ready_megabytes"] = self.rss_megabytes()
        result["warmup_finished_seconds"] = self._wait_for("warmup")
        result["rss_after_warmup_megabytes"] = self.rss_megabytes()
        result["log"] = [
            line.split(": ", 1)[-1]
            for line in self.log_path.read_text().splitlines()
            if "loaded model" in line or "warm-up of model" in line
        ]
        return result

    def rss_megabytes(self) -> float:
        return resident_megabytes(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(120)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _latency(base_url: str, requests: int, warmup: int) -> dict[str, float]:
    payload = {"x": [[0.25, -0.5]]}
    samples = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for index in range(warmup + requests):
            began = time.perf_counter()
            response = client.post("/transform", json=payload)
            elapsed = time.perf_counter() - began
            if response.status_code != 200:
                raise RuntimeError(response.text)
            if index >= warmup:
                samples.append(elapsed)
    millis = np.asarray(samples) * 1000.0
    return {
        "p50_ms": float(np.percentile(millis, 50)),
        "p99_ms": float(np.percentile(millis, 99)),
        "requests": requests,
    }


def _throughput(base_url: str, rows: np.ndarray, repeats: int) -> dict[str, float]:
    json_body = json.dumps({"x": rows.tolist()}).encode()
    npy_body = _npy(rows)
    results: dict[str, float] = {}
    with httpx.Client(base_url=base_url, timeout=600) as client:
        for label, body, headers in (
            ("json", json_body, {"Content-Type": "application/json"}),
            ("npy", npy_body, {"Content-Type": NPY, "Accept": NPY}),
        ):
            client.post("/transform", content=body, headers=headers).raise_for_status()
            began = time.perf_counter()
            for _ in range(repeats):
                client.post(
                    "/transform", content=body, headers=headers
                ).raise_for_status()
            results[f"{label}_rows_per_second"] = (
                repeats * rows.shape[0] / (time.perf_counter() - began)
            )
    return results


def _in_process(model: Any, rows: np.ndarray, repeats: int) -> float:
    from flow import CompiledFlow

    runner = CompiledFlow(model)
    runner.transform(rows)
    began = time.perf_counter()
    for _ in range(repeats):
        runner.transform(rows)
    return repeats * rows.shape[0] / (time.perf_counter() - began)


def _load_store_model(store: Path) -> Any:
    import flow
    from flow.store import ArtifactStore

    flow.enable_float64()
    opened = ArtifactStore(store, read_only=True)
    name = sorted(opened.list_models())[0]
    return opened.open(f"{name}@latest").load_flow()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--num-blocks", type=int, default=2, help="flow blocks of the benchmark model"
    )
    parser.add_argument(
        "--num-components", type=int, default=4, help="mixture components per block"
    )
    parser.add_argument("--epochs", type=int, default=2, help="training epochs")
    parser.add_argument(
        "--warmup-max-rows",
        type=int,
        default=None,
        help="server warm-up cap (default: every bucket)",
    )
    parser.add_argument(
        "--latency-requests", type=int, default=2000, help="timed single-row requests"
    )
    parser.add_argument(
        "--batch-repeats",
        type=int,
        default=5,
        help="timed 65,536-row requests per format",
    )
    parser.add_argument(
        "--store",
        type=Path,
        help="serve this store's models instead of training a small flow; the "
        "in-process comparison uses the latest version of the first model",
    )
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "model": (
            {"store": str(args.store)}
            if args.store is not None
            else {
                "num_blocks": args.num_blocks,
                "num_components": args.num_components,
                "dim": 2,
            }
        ),
        "load_average_at_start": os.getloadavg(),
    }
    extra = (
        []
        if args.warmup_max_rows is None
        else ["--warmup-max-rows", str(args.warmup_max_rows)]
    )
    with tempfile.TemporaryDirectory(prefix="bench-service-") as workdir:
        work = Path(workdir)
        cache = work / "xla-cache"
        if args.store is not None:
            store = args.store
            model = _load_store_model(store)
        else:
            store = work / "store"
            model = _train_store(
                store, args.num_blocks, args.num_components, args.epochs
            )

        cold = Server(store, cache, work / "cold.log", extra)
        try:
            results["cold_start"] = cold.start_up()
        finally:
            cold.stop()
        server = Server(store, cache, work / "warm.log", extra)
        try:
            results["warm_cache_start"] = server.start_up()
            results["single_row_transform"] = _latency(
                server.base_url, args.latency_requests, warmup=200
            )
            rows = (
                np.random.default_rng(0).normal(size=(BATCH_ROWS, 2)).astype(np.float32)
            )
            results["batch_65536_transform"] = _throughput(
                server.base_url, rows, args.batch_repeats
            )
            results["batch_65536_transform"]["in_process_rows_per_second"] = (
                _in_process(model, rows, args.batch_repeats)
            )
            results["server_rss_megabytes"] = server.rss_megabytes()
        finally:
            server.stop()
    results["load_average_at_end"] = os.getloadavg()
    text = json.dumps(results, indent=2)
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
