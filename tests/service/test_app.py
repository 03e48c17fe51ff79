"""In-process tests of routing, codecs, headers and error bodies (ASGI transport)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import pytest_asyncio

from tests.service.conftest import TrainedModel, make_settings, running_app

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

NPY = "application/x-npy"
NPZ = "application/x-npz"
ERROR_KEYS = {"code", "message", "request_id"}
SMALL_BODY_BYTES = 4096
SMALL_BATCH_ROWS = 32
API_KEY = "test-key-0123456789"


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _assert_error(
    response: httpx.Response, status: int, code: str
) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= ERROR_KEYS
    assert body["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return body


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def limited_client(
    trained: TrainedModel, compilation_cache: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """Client of an app with small limits and an API key."""
    settings = make_settings(
        trained.store,
        compilation_cache,
        max_body_bytes=SMALL_BODY_BYTES,
        max_batch_rows=SMALL_BATCH_ROWS,
        api_key=API_KEY,
    )
    async with running_app(settings) as (_, client):
        client.headers["Authorization"] = f"Bearer {API_KEY}"
        yield client


async def test_transform_json_headers(
    app_client: httpx.AsyncClient, trained: TrainedModel
) -> None:
    x = trained.held_out[:3]
    response = await app_client.post(
        "/transform",
        json={"x": x.tolist(), "return_log_det": True},
        headers={"X-Request-ID": "abc-123"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "abc-123"
    assert response.headers["x-model-name"] == "moons"
    assert response.headers["x-model-version"] == "1"
    assert response.headers["x-model-digest"] == trained.digest
    body = response.json()
    assert sorted(body) == ["log_det", "z"]
    np.testing.assert_allclose(
        body["z"], np.asarray(trained.flow(x)), rtol=1e-5, atol=1e-5
    )


async def test_request_id_generated(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/health/live")
    assert response.json() == {"status": "alive"}
    assert len(response.headers["x-request-id"]) == 32


async def test_npy_keeps_float64(
    app_client: httpx.AsyncClient, trained: TrainedModel
) -> None:
    x = trained.held_out[:5].astype(np.float64)
    response = await app_client.post(
        "/invert", content=_npy(x), headers={"Content-Type": NPY, "Accept": NPY}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == NPY
    result = np.load(io.BytesIO(response.content))
    assert result.dtype == np.float64
    assert result.shape == (5, 2)


async def test_npz_cotangent(
    app_client: httpx.AsyncClient, trained: TrainedModel
) -> None:
    x = trained.held_out[:4]
    cotangent = np.ones_like(x)
    response = await app_client.post(
        "/transform?return_log_det=true",
        content=_npz(x=x, cotangent=cotangent),
        headers={"Content-Type": NPZ, "Accept": NPZ},
    )
    assert response.status_code == 200, response.text
    archive = np.load(io.BytesIO(response.content))
    assert sorted(archive.files) == ["dx", "log_det", "z"]
    assert archive["dx"].dtype == np.float32


async def test_json_dtype_option(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post(
        "/logprob", json={"x": [[0.5, 0.25]], "dtype": "float64"}
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["log_prob"]) == 1


async def test_npy_two_arrays_not_acceptable(app_client: httpx.AsyncClient) -> None:
    response = await app_client.post(
        "/logprob",
        json={"x": [[0.5, 0.25]], "return_score": True},
        headers={"Accept": NPY},
    )
    body = _assert_error(response, 406, "not_acceptable")
    assert "application/x-npz" in str(body["message"])


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        pytest.param("/v1/models/nope/transform", 404, "model_not_found", id="model"),
        pytest.param(
            "/v1/models/moons/versions/7/transform",
            404,
            "version_not_found",
            id="version",
        ),
        pytest.param(
            "/v1/models/moons/versions/abc/transform",
            404,
            "version_not_found",
            id="alias",
        ),
        pytest.param("/nothing/here", 404, "not_found", id="route"),
    ],
)
async def test_lookup_errors(
    app_client: httpx.AsyncClient, path: str, status: int, code: str
) -> None:
    response = await app_client.post(path, json={"x": [[0.0, 0.0]]})
    _assert_error(response, status, code)


async def test_method_not_allowed(app_client: httpx.AsyncClient) -> None:
    response = await app_client.delete("/transform")
    body = _assert_error(response, 405, "method_not_allowed")
    assert "POST" in str(body["message"])


async def test_versioned_routes_agree(app_client: httpx.AsyncClient) -> None:
    payload = {"x": [[0.1, -0.2]]}
    bare = (await app_client.post("/logprob", json=payload)).json()
    named = (await app_client.post("/v1/models/moons/logprob", json=payload)).json()
    versioned = (
        await app_client.post("/v1/models/moons/versions/1/logprob", json=payload)
    ).json()
    assert bare == named
    assert bare == versioned


async def test_models_listing(
    app_client: httpx.AsyncClient, trained: TrainedModel
) -> None:
    listing = (await app_client.get("/v1/models")).json()
    assert listing["default_model"] == "moons"
    assert listing["limits"]["max_batch_rows"] == 262_144
    (metadata,) = listing["models"]
    assert metadata["digest"] == trained.digest
    assert metadata["aliases"] == ["latest"]
    assert metadata["dim"] == 2
    assert metadata["dtype"] == "float32"
    assert metadata["feature_names"] == ["x0", "x1"]
    assert metadata["ready"] is True
    single = (await app_client.get("/v1/models/moons/versions/1")).json()
    assert single == metadata


async def test_diagnostics_get(
    app_client: httpx.AsyncClient, trained: TrainedModel
) -> None:
    body = (await app_client.get("/diagnostics")).json()
    assert body["weights_digest_at_load"] == trained.digest
    assert body["weights_digest_now"] == trained.digest
    assert body["freeze_time"]["test"]["num_rows"] > 0
    assert body["uptime_seconds"] > 0
    assert body["name"] == "moons"


async def test_no_compilation_after_warmup(
    app_client: httpx.AsyncClient, trained: TrainedModel
) -> None:
    before = (await app_client.get("/diagnostics")).json()["num_compilations"]
    for rows in (1, 2, 3, 5, 7, 9, 13, 16):
        x = trained.held_out[:rows].tolist()
        for path, payload in (
            (
                "/transform",
                {
                    "x": x,
                    "return_log_det": True,
                    "return_jacobian": True,
                    "cotangent": x,
                },
            ),
            ("/invert", {"z": x}),
            ("/logprob", {"x": x, "return_score": True}),
        ):
            response = await app_client.post(path, json=payload)
            assert response.status_code == 200, response.text
    after = (await app_client.get("/diagnostics")).json()
    assert after["num_compilations"] == before
    assert after["request_counts"]["transform"] >= 8


async def test_warmup_compiles_buckets_up_to_cap(
    app_client: httpx.AsyncClient,
) -> None:
    ready = (await app_client.get("/health/ready")).json()
    assert ready["warmup_finished"] is True
    body = (await app_client.get("/diagnostics")).json()
    # TEST_WARMUP_MAX_ROWS is 16: the 16-row bucket of each of the 3 kernels.
    assert body["compiled_buckets"] == {
        "forward": [16],
        "inverse": [16],
        "pullback": [16],
    }


async def test_ready_after_warmup_setting(
    trained: TrainedModel, compilation_cache: Path
) -> None:
    import anyio

    settings = make_settings(trained.store, compilation_cache, ready_after_warmup=True)
    async with running_app(settings, wait_ready=False) as (app, client):
        state = app.state.service.state
        while str(state.phase) == "starting":
            await anyio.sleep(0.01)
        # Readiness and a finished warm-up appear together with this setting.
        assert str(state.phase) == "ready", state.failure
        assert state.warmup_finished is True
        ready = (await client.get("/health/ready")).json()
        assert ready["warmup_finished"] is True
        body = (await client.get("/diagnostics")).json()
        assert body["compiled_buckets"]["pullback"] == [16]


async def test_diagnostics_post(
    app_client: httpx.AsyncClient, trained: TrainedModel
) -> None:
    response = await app_client.post(
        "/diagnostics", json={"x": trained.held_out[:64].tolist()}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["num_rows"] == 64
    assert len(body["per_feature"]["ks_statistic"]) == 2
    assert "round_trip_max_error" in body


async def test_diagnostics_post_rejects_npy_accept(
    app_client: httpx.AsyncClient,
) -> None:
    response = await app_client.post(
        "/diagnostics", json={"x": [[0.0, 1.0]]}, headers={"Accept": NPY}
    )
    _assert_error(response, 406, "not_acceptable")


async def test_report_and_figure(
    app_client: httpx.AsyncClient, trained: TrainedModel
) -> None:
    index = await app_client.get("/v1/models/moons/diagnostics/report")
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert '<base href="/v1/models/moons/diagnostics/report/">' in index.text
    figure = await app_client.get("/diagnostics/report/figures/density.png")
    assert figure.status_code == 200
    assert figure.headers["content-type"] == "image/png"
    assert figure.content == trained.figure


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/diagnostics/report/../../manifest.json", id="dotdot"),
        pytest.param("/diagnostics/report/..%2F..%2Fmanifest.json", id="encoded"),
        pytest.param("/diagnostics/report/%2Fetc%2Fpasswd", id="absolute"),
        pytest.param("/diagnostics/report/figures/../../model.keras", id="nested"),
    ],
)
async def test_report_traversal(app_client: httpx.AsyncClient, path: str) -> None:
    response = await app_client.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_metrics_series(app_client: httpx.AsyncClient) -> None:
    await app_client.post("/transform", json={"x": [[0.0, 0.5]]})
    text = (await app_client.get("/metrics")).text
    assert (
        'gaussprobe_http_requests_total{method="POST",model="moons",route="/transform",status="200"}'
        in text
    )
    assert (
        'gaussprobe_request_phase_seconds_count{model="moons",phase="compute",route="/transform"}'
        in text
    )
    assert 'gaussprobe_request_rows_count{model="moons",route="/transform"}' in text
    assert "gaussprobe_http_requests_in_flight" in text
    assert 'gaussprobe_model_compilations{name="moons",version="1"}' in text


async def test_ready_lists_models(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["models"] == {"moons@latest": "ready"}


async def test_body_limit_content_length(limited_client: httpx.AsyncClient) -> None:
    rows = [[0.1234567, 0.7654321]] * 400
    response = await limited_client.post("/transform", json={"x": rows})
    body = _assert_error(response, 413, "payload_too_large")
    assert "GAUSSPROBE_MAX_BODY_BYTES" in str(body["message"])


async def test_body_limit_streamed(limited_client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"x": ['
        for _ in range(1000):
            yield b"[0.1, 0.2],"
        yield b"[0.1, 0.2]]}"

    response = await limited_client.post(
        "/transform", content=chunks(), headers={"Content-Type": "application/json"}
    )
    _assert_error(response, 413, "payload_too_large")


async def test_batch_limit(limited_client: httpx.AsyncClient) -> None:
    response = await limited_client.post(
        "/transform", json={"x": [[0.0, 0.0]] * (SMALL_BATCH_ROWS + 1)}
    )
    body = _assert_error(response, 413, "batch_too_large")
    assert "GAUSSPROBE_MAX_BATCH_ROWS" in str(body["message"])


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        pytest.param(None, 401, id="missing"),
        pytest.param("Bearer wrong-key", 401, id="wrong"),
        pytest.param(f"Basic {API_KEY}", 401, id="scheme"),
        pytest.param(f"Bearer {API_KEY}", 200, id="right"),
        pytest.param(f"bearer {API_KEY}", 200, id="lower-case-scheme"),
    ],
)
async def test_api_key(
    limited_client: httpx.AsyncClient, authorization: str | None, status: int
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    request = limited_client.build_request("GET", "/v1/models", headers=headers)
    if authorization is None:
        del request.headers["Authorization"]
    response = await limited_client.send(request)
    assert response.status_code == status
    if status == 401:
        assert response.json()["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"


async def test_health_needs_no_key(limited_client: httpx.AsyncClient) -> None:
    request = limited_client.build_request("GET", "/health/ready")
    del request.headers["Authorization"]
    response = await limited_client.send(request)
    assert response.status_code == 200
