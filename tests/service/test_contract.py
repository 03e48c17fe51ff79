"""Contract tests against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import io
import itertools
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.service.conftest import ServerProcess, TrainedModel

pytestmark = pytest.mark.slow

NUM_MIXED_REQUESTS = 10_000
MIXED_CLIENT_THREADS = 4
MIXED_DEADLINE_SECONDS = 300.0
ROUND_TRIP_TOLERANCE = 1e-4
DERIVATIVE_TOLERANCE = 1e-5
LOG_PROB_TOLERANCE = 1e-5
NPY = "application/x-npy"
NPZ = "application/x-npz"


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _digest_now(base_url: str) -> tuple[str, str]:
    body = httpx.get(base_url + "/diagnostics", timeout=30).json()
    return body["weights_digest_at_load"], body["weights_digest_now"]


def _mixed_request(client: httpx.Client, index: int, rows: np.ndarray) -> int:
    size = 1 + index % 16
    x = rows[:size]
    kind = index % 6
    if kind == 0:
        response = client.post(
            "/transform", json={"x": x.tolist(), "return_log_det": True}
        )
    elif kind == 1:
        response = client.post(
            "/v1/models/moons/invert",
            content=_npy(x),
            headers={"Content-Type": NPY, "Accept": NPY},
        )
    elif kind == 2:
        response = client.post("/logprob", json={"x": x.tolist(), "return_score": True})
    elif kind == 3:
        response = client.post(
            "/v1/models/moons/versions/1/transform",
            content=_npz(x=x, cotangent=np.ones_like(x)),
            headers={"Content-Type": NPZ, "Accept": NPZ},
        )
    elif kind == 4:
        response = client.post(
            "/transform", json={"x": x.tolist(), "return_jacobian": True}
        )
    else:
        response = (
            client.get("/diagnostics")
            if index % 60 == 5
            else client.post("/transform", json={"x": [[float("1e30"), 0.0]]})
        )
    return response.status_code


def test_digest_stable_over_mixed_requests(
    server: ServerProcess, trained: TrainedModel
) -> None:
    at_load, before = _digest_now(server.base_url)
    assert at_load == trained.digest
    assert before == trained.digest
    deadline = time.monotonic() + MIXED_DEADLINE_SECONDS
    rows = trained.held_out

    def worker(indices: range) -> list[int]:
        statuses = []
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            for index in indices:
                if time.monotonic() > deadline:
                    break
                statuses.append(_mixed_request(client, index, rows))
        return statuses

    share = NUM_MIXED_REQUESTS // MIXED_CLIENT_THREADS
    ranges = [range(i * share, (i + 1) * share) for i in range(MIXED_CLIENT_THREADS)]
    with ThreadPoolExecutor(MIXED_CLIENT_THREADS) as pool:
        statuses = list(itertools.chain.from_iterable(pool.map(worker, ranges)))
    assert len(statuses) == NUM_MIXED_REQUESTS
    unexpected = {status for status in statuses if status not in (200, 422)}
    assert not unexpected
    assert _digest_now(server.base_url) == (trained.digest, trained.digest)


def test_round_trip_held_out(server: ServerProcess, trained: TrainedModel) -> None:
    x = trained.held_out
    z = httpx.post(
        server.base_url + "/transform", json={"x": x.tolist()}, timeout=30
    ).json()["z"]
    back = httpx.post(server.base_url + "/invert", json={"z": z}, timeout=30).json()[
        "x"
    ]
    np.testing.assert_allclose(
        np.asarray(back, np.float32), x, rtol=0, atol=ROUND_TRIP_TOLERANCE
    )


def test_logprob_matches_library(server: ServerProcess, trained: TrainedModel) -> None:
    x = trained.held_out
    served = httpx.post(
        server.base_url + "/logprob",
        content=_npy(x),
        headers={"Content-Type": NPY, "Accept": NPY},
        timeout=30,
    )
    assert served.status_code == 200, served.text
    log_prob = np.load(io.BytesIO(served.content))
    expected = np.asarray(trained.flow.log_prob(x))
    assert log_prob.dtype == np.float32
    np.testing.assert_allclose(
        log_prob, expected, rtol=LOG_PROB_TOLERANCE, atol=LOG_PROB_TOLERANCE
    )


def _forward(flow_model: Any, x: jax.Array) -> jax.Array:
    return jnp.asarray(flow_model(x))


def test_derivatives_match_jax(server: ServerProcess, trained: TrainedModel) -> None:
    x = trained.held_out[:16]
    cotangent = np.random.default_rng(0).normal(size=x.shape).astype(np.float32)
    response = httpx.post(
        server.base_url + "/transform",
        content=_npz(x=x, cotangent=cotangent),
        params={"return_jacobian": "true"},
        headers={"Content-Type": NPZ, "Accept": NPZ},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    served = np.load(io.BytesIO(response.content))
    score = httpx.post(
        server.base_url + "/logprob",
        json={"x": x.tolist(), "return_score": True},
        timeout=30,
    ).json()["score"]

    flow_model = trained.flow
    _, pullback = jax.vjp(lambda value: _forward(flow_model, value), jnp.asarray(x))
    (expected_dx,) = pullback(jnp.asarray(cotangent))
    expected_jacobian = jax.vmap(
        jax.jacfwd(lambda row: _forward(flow_model, row[None, :])[0])
    )(jnp.asarray(x))
    expected_score = jax.grad(
        lambda value: jnp.sum(jnp.asarray(flow_model.log_prob(value)))
    )(jnp.asarray(x))

    tolerance = {"rtol": DERIVATIVE_TOLERANCE, "atol": DERIVATIVE_TOLERANCE}
    np.testing.assert_allclose(served["dx"], np.asarray(expected_dx), **tolerance)
    np.testing.assert_allclose(
        served["jacobian"], np.asarray(expected_jacobian), **tolerance
    )
    np.testing.assert_allclose(
        np.asarray(score, np.float32), np.asarray(expected_score), **tolerance
    )


JSON = {"Content-Type": "application/json"}
BAD_INPUTS = [
    pytest.param(
        "POST", "/transform", b"{oops", JSON, 400, "invalid_json", id="invalid-json"
    ),
    pytest.param(
        "POST", "/transform", b"[1, 2]", JSON, 400, "invalid_json", id="json-not-object"
    ),
    pytest.param("POST", "/transform", b"", JSON, 400, "empty_body", id="empty-body"),
    pytest.param(
        "POST",
        "/transform",
        b"\x93NUMPY garbage",
        {"Content-Type": NPY},
        400,
        "invalid_npy",
        id="invalid-npy",
    ),
    pytest.param(
        "POST",
        "/transform",
        b'{"z": [[0, 0]]}',
        JSON,
        422,
        "invalid_option",
        id="unknown-field",
    ),
    pytest.param(
        "POST",
        "/invert",
        b'{"dtype": "float32"}',
        JSON,
        422,
        "missing_field",
        id="missing-z",
    ),
    pytest.param(
        "POST", "/transform", b'{"x": [0, 0]}', JSON, 422, "invalid_shape", id="rank-1"
    ),
    pytest.param(
        "POST",
        "/transform",
        b'{"x": [[0, 0, 0]]}',
        JSON,
        422,
        "invalid_shape",
        id="wrong-d",
    ),
    pytest.param(
        "POST",
        "/transform",
        b'{"x": [[]]}',
        JSON,
        422,
        "invalid_shape",
        id="empty-features",
    ),
    pytest.param(
        "POST",
        "/transform",
        b'{"x": [[0, 0]], "cotangent": [[1, 1], [1, 1]]}',
        JSON,
        422,
        "invalid_shape",
        id="cotangent-rows",
    ),
    pytest.param(
        "POST",
        "/transform",
        b'{"x": [[0, 0], [1]]}',
        JSON,
        422,
        "ragged_rows",
        id="ragged",
    ),
    pytest.param(
        "POST",
        "/transform",
        b'{"x": [[0, "a"]]}',
        JSON,
        422,
        "invalid_value",
        id="string",
    ),
    pytest.param(
        "POST",
        "/transform",
        b'{"x": [[0, null]]}',
        JSON,
        422,
        "invalid_value",
        id="null",
    ),
    pytest.param(
        "POST",
        "/transform",
        b'{"x": [[0, true]]}',
        JSON,
        422,
        "invalid_value",
        id="bool",
    ),
    pytest.param(
        "POST",
        "/transform",
        _npy(np.array([[0.0, np.nan]])),
        {"Content-Type": NPY},
        422,
        "non_finite",
        id="nan",
    ),
    pytest.param(
        "POST",
        "/transform",
        _npy(np.array([[1.0, 0.0], [np.inf, 0.0]])),
        {"Content-Type": NPY},
        422,
        "non_finite",
        id="inf",
    ),
    pytest.param(
        "POST",
        "/transform",
        _npy(np.zeros((1, 2), np.int32)),
        {"Content-Type": NPY},
        422,
        "invalid_dtype",
        id="int-npy",
    ),
    pytest.param(
        "POST",
        "/transform",
        b'{"x": [[0, 0]], "dtype": "int8"}',
        JSON,
        422,
        "invalid_dtype",
        id="dtype-option",
    ),
    pytest.param(
        "POST",
        "/transform",
        b'{"x": [[0, 0]], "return_log_det": "yes"}',
        JSON,
        422,
        "invalid_option",
        id="option-type",
    ),
    pytest.param(
        "POST",
        "/v1/models/other/transform",
        b'{"x": [[0, 0]]}',
        JSON,
        404,
        "model_not_found",
        id="model",
    ),
    pytest.param(
        "POST",
        "/v1/models/moons/versions/9/transform",
        b'{"x": [[0, 0]]}',
        JSON,
        404,
        "version_not_found",
        id="version",
    ),
    pytest.param("GET", "/no/such/route", b"", {}, 404, "not_found", id="route"),
    pytest.param("PUT", "/transform", b"", {}, 405, "method_not_allowed", id="method"),
    pytest.param(
        "POST",
        "/transform",
        b'{"x": [[0, 0]], "return_log_det": true}',
        {"Content-Type": "application/json", "Accept": NPY},
        406,
        "not_acceptable",
        id="npy-two-arrays",
    ),
    pytest.param(
        "POST",
        "/transform",
        b"x=1",
        {"Content-Type": "text/plain"},
        415,
        "unsupported_media_type",
        id="media-type",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "content", "headers", "status", "code"), BAD_INPUTS
)
def test_bad_input_table(
    server: ServerProcess,
    method: str,
    path: str,
    content: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = httpx.request(
        method, server.base_url + path, content=content, headers=headers, timeout=30
    )
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert body["message"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    healthy = httpx.post(
        server.base_url + "/transform", json={"x": [[0.1, 0.2]]}, timeout=30
    )
    assert healthy.status_code == 200


def test_oversized_batch(server: ServerProcess) -> None:
    rows = np.zeros((262_145, 2), np.float32)
    response = httpx.post(
        server.base_url + "/logprob",
        content=_npy(rows),
        headers={"Content-Type": NPY},
        timeout=60,
    )
    assert response.status_code == 413
    assert response.json()["code"] == "batch_too_large"
    assert "GAUSSPROBE_MAX_BATCH_ROWS" in response.json()["message"]


def test_large_npy_batch_chunks(server: ServerProcess, trained: TrainedModel) -> None:
    rows = np.tile(trained.held_out, (100, 1)).astype(np.float64)
    response = httpx.post(
        server.base_url + "/logprob",
        content=_npy(rows),
        headers={"Content-Type": NPY, "Accept": NPY},
        timeout=300,
    )
    assert response.status_code == 200, response.text
    log_prob = np.load(io.BytesIO(response.content))
    assert log_prob.dtype == np.float64
    assert log_prob.shape == (rows.shape[0],)
    np.testing.assert_allclose(log_prob[:200], log_prob[200:400])


def test_server_skips_optional_keras_imports(server: ServerProcess) -> None:
    # keras imports scikit-learn and matplotlib when installed; the service
    # imports keras without them, so none of their files is mapped.
    maps = Path(f"/proc/{server.process.pid}/maps")
    if not maps.exists():
        pytest.skip("needs /proc/<pid>/maps (Linux)")
    mapped = maps.read_text()
    assert "/site-packages/sklearn/" not in mapped
    assert "/site-packages/matplotlib/" not in mapped
    assert "/site-packages/jaxlib/" in mapped


def test_load_log_times_each_step(server: ServerProcess) -> None:
    log = server.log()
    loaded = re.search(r"loaded model moons version 1 .* in [0-9.]+ s \((.*)\)", log)
    assert loaded is not None, log
    for step in ("verify", "load", "digest", "compile", "self-test", "report"):
        assert re.search(rf"\b{step} [0-9.]+ s", loaded.group(1)), loaded.group(1)
    assert "warm-up of model moons version 1 compiled" in log
