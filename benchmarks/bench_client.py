"""Client-side throughput of gaussprobe-client: rows/s per method, npy vs JSON.

Starts ``gaussprobe serve`` on a free port on 127.0.0.1 (or uses ``--url``),
sends batches of ``--rows`` rows through ``ProbeClient`` and prints a Markdown
table. Times are wall-clock seconds of the whole client call: encoding,
HTTP round trip, server compute and decoding. Without ``--store``, a small
moons flow (2 blocks) is trained into a temporary store first.

Rerun:
    .venv/bin/python benchmarks/bench_client.py --rows 65536 --repeats 5
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from gaussprobe_client import ProbeClient

SERVER_START_TIMEOUT_SECONDS = 180.0
REQUEST_TIMEOUT_SECONDS = 300.0
METHODS = ("transform", "log_prob", "transform_with_log_det", "invert")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=65536, help="rows per call")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per cell")
    parser.add_argument(
        "--url", default=None, help="use a running server instead of starting one"
    )
    parser.add_argument(
        "--store", type=Path, default=None, help="store with the model to serve"
    )
    parser.add_argument("--model", default="moons", help="model name (default moons)")
    parser.add_argument(
        "--dtype", choices=("float32", "float64"), default="float32", help="input dtype"
    )
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def train_small_model(store: Path, name: str) -> None:
    command = [
        sys.executable, "-m", "flow", "--store", str(store), "train", "moons",
        "--name", name, "--blocks", "2", "--components", "4", "--epochs", "3",
        "--seed", "0",
    ]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def start_server(
    store: Path, model: str, log_path: Path
) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    env = dict(os.environ)
    env.update(
        GAUSSPROBE_STORE=str(store),
        GAUSSPROBE_MODELS=model,
        GAUSSPROBE_HOST="127.0.0.1",
        GAUSSPROBE_PORT=str(port),
        GAUSSPROBE_LOG_LEVEL="warning",
    )
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "flow", "serve"], stdout=log, stderr=log, env=env
        )
    url = f"http://127.0.0.1:{port}"
    with ProbeClient(url) as probe:
        probe.wait_until_ready(timeout=SERVER_START_TIMEOUT_SECONDS)
    return url, process


def time_calls(call: Callable[[], object], repeats: int) -> list[float]:
    call()  # warm-up: first-call metadata fetch and server bucket compile
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds


def run_benchmark(
    url: str, args: argparse.Namespace
) -> list[tuple[str, str, float, float]]:
    x = np.random.default_rng(0).normal(size=(args.rows, 2)).astype(args.dtype)
    rows = []
    for transport in ("npy", "json"):
        with ProbeClient(
            url,
            model=args.model,
            transport=transport,
            timeout=REQUEST_TIMEOUT_SECONDS,  # type: ignore[arg-type]
        ) as probe:
            z = probe.transform(x)
            calls: dict[str, Callable[[], object]] = {
                "transform": functools.partial(probe.transform, x),
                "log_prob": functools.partial(probe.log_prob, x),
                "transform_with_log_det": functools.partial(
                    probe.transform_with_log_det, x
                ),
                "invert": functools.partial(probe.invert, z),
            }
            for method in METHODS:
                seconds = time_calls(calls[method], args.repeats)
                median = statistics.median(seconds)
                rows.append((method, transport, args.rows / median, median))
    return rows


def print_table(
    rows: list[tuple[str, str, float, float]], args: argparse.Namespace
) -> None:
    print(
        f"\n{args.rows} rows x 2 features, {args.dtype}, median of {args.repeats} "
        f"calls; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}\n"
    )
    print("| method | transport | rows/s | seconds per call |")
    print("| --- | --- | ---: | ---: |")
    for method, transport, rate, median in rows:
        print(f"| {method} | {transport} | {rate:,.0f} | {median:.3f} |")


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp:
        tmp_path = Path(tmp)
        process = None
        url = args.url
        try:
            if url is None:
                store = args.store
                if store is None:
                    store = tmp_path / "store"
                    train_small_model(store, args.model)
                url, process = start_server(store, args.model, tmp_path / "server.log")
            print_table(run_benchmark(url, args), args)
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=30)


if __name__ == "__main__":
    main()
