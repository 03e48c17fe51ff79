"""The client against the real service: a uvicorn process and the in-process app."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from client_reference import (
    assert_outputs_match,
    collect_async,
    collect_sync,
    reference_outputs,
)
from client_servers import (
    ASGI_BASE_URL,
    SERVER_START_TIMEOUT_SECONDS,
    ClientStore,
    ServerProcess,
    make_app,
    open_test_client,
)
from gaussprobe_client import (
    AsyncProbeClient,
    DigestMismatchError,
    InvalidInputError,
    ModelNotFoundError,
    ProbeClient,
    RetryPolicy,
    UnauthorizedError,
    VersionNotFoundError,
)

pytestmark = pytest.mark.slow

ROWS = 300
# float32 models: the service's jitted runner and the eager in-process model
# round differently, and the inverse is solved numerically, so outputs of
# order 1 are compared at 1e-4 rather than at float32 epsilon.
FLOAT32_TOLERANCE = 1e-4
GRADIENT_TOLERANCE = 1e-5
# Retries that outlast a server restart: loading and warm-up take a minute or
# more on a busy 2-core machine, so the retries cover up to about 5 minutes.
RESTART_RETRY_POLICY = RetryPolicy(max_retries=200, base_delay=0.2, max_delay=2.0)
RESTART_LOOP_CALLS = 30
RESTART_AT_CALL = 10

TRANSPORTS = [pytest.param("npy", id="npy"), pytest.param("json", id="json")]
DTYPES = [
    pytest.param(np.dtype(np.float32), id="float32"),
    pytest.param(np.dtype(np.float64), id="float64"),
]


def moons_rows(rows: int = ROWS, seed: int = 0) -> np.ndarray:
    from sklearn.datasets import make_moons

    values, _ = make_moons(rows, noise=0.1, random_state=seed)
    return values


def cotangent_for(x: np.ndarray) -> np.ndarray:
    return np.random.default_rng(5).normal(size=x.shape).astype(x.dtype)


def transform_count(probe: ProbeClient) -> int:
    counts = probe.diagnostics()["request_counts"]
    return sum(int(v) for k, v in counts.items() if "transform" in k)


# Every method, both transports, both dtypes ----------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_live_methods_match_flow(
    live_server: ServerProcess,
    in_process_flows: dict[str, Any],
    transport: str,
    dtype: np.dtype,
) -> None:
    x = moons_rows().astype(dtype)
    cotangent = cotangent_for(x)
    expected = reference_outputs(in_process_flows["moons"], x, cotangent)
    with ProbeClient(live_server.url, transport=transport) as probe:  # type: ignore[arg-type]
        outputs = collect_sync(probe, x, cotangent)
        batch_diagnostics = probe.diagnostics(x)
        record = probe.diagnostics()
        metadata = probe.metadata()
        models = probe.models()
    assert_outputs_match(outputs, expected, dtype, FLOAT32_TOLERANCE)
    assert batch_diagnostics["num_rows"] == ROWS
    assert record["weights_digest_now"] == record["weights_digest_at_load"]
    assert metadata["name"] == "moons"
    assert metadata["version"] == 1
    assert models["limits"]["max_batch_rows"] >= 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_live_named_model_matches_flow(
    live_server: ServerProcess,
    client_store: ClientStore,
    in_process_flows: dict[str, Any],
    transport: str,
) -> None:
    x = moons_rows()
    cotangent = cotangent_for(x)
    expected = reference_outputs(in_process_flows["moons-b"], x, cotangent)
    with ProbeClient(
        live_server.url,
        model="moons-b",
        expected_digest=client_store.moons_retrained.digest,
        transport=transport,  # type: ignore[arg-type]
    ) as probe:
        outputs = collect_sync(probe, x, cotangent)
    assert_outputs_match(outputs, expected, np.dtype(np.float64), FLOAT32_TOLERANCE)


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("dtype", DTYPES)
async def test_asgi_methods_match_flow(
    asgi_http: httpx.AsyncClient,
    in_process_flows: dict[str, Any],
    transport: str,
    dtype: np.dtype,
) -> None:
    x = moons_rows().astype(dtype)
    cotangent = cotangent_for(x)
    expected = reference_outputs(in_process_flows["moons"], x, cotangent)
    probe = AsyncProbeClient(ASGI_BASE_URL, client=asgi_http, transport=transport)  # type: ignore[arg-type]
    async with probe:
        outputs = await collect_async(probe, x, cotangent)
        batch_diagnostics = await probe.diagnostics(x)
        record = await probe.diagnostics()
        metadata = await probe.metadata()
        ready = await probe.wait_until_ready(timeout=5.0)
    assert_outputs_match(outputs, expected, dtype, FLOAT32_TOLERANCE)
    assert batch_diagnostics["num_rows"] == ROWS
    assert record["weights_digest_now"] == metadata["digest"]
    assert ready["status"] == "ready"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_test_client_methods_match_flow(
    test_client_http: httpx.Client,
    in_process_flows: dict[str, Any],
    transport: str,
) -> None:
    x = moons_rows().astype(np.float32)
    cotangent = cotangent_for(x)
    expected = reference_outputs(in_process_flows["moons"], x, cotangent)
    with ProbeClient(
        ASGI_BASE_URL,
        client=test_client_http,
        transport=transport,  # type: ignore[arg-type]
    ) as probe:
        outputs = collect_sync(probe, x, cotangent)
    assert_outputs_match(outputs, expected, np.dtype(np.float32), FLOAT32_TOLERANCE)


def test_live_large_batch_split(live_server: ServerProcess) -> None:
    x = moons_rows(5000).astype(np.float32)
    with ProbeClient(live_server.url) as whole:
        z_whole = whole.transform(x)
    with ProbeClient(live_server.url, max_chunk_rows=1024) as split:
        z_split = split.transform(x)
    # Results agree to rounding, not bit for bit: the service runs each request
    # on padded batch buckets, XLA's float32 kernels differ by bucket size, and
    # while the background warm-up runs a batch may use smaller buckets.
    np.testing.assert_allclose(z_split, z_whole, rtol=1e-5, atol=1e-5)


# Gradients through the remote probe ---------------------------------------


def test_jax_gradients_match_in_process_flow(
    live_server: ServerProcess, in_process_flows: dict[str, Any]
) -> None:
    flow_model = in_process_flows["moons"]
    inputs = jnp.asarray(np.random.default_rng(7).normal(size=(64, 3)), jnp.float32)
    params = {
        "w": jnp.asarray(np.random.default_rng(8).normal(size=(3, 2)), jnp.float32),
        "b": jnp.asarray([0.5, -0.25], jnp.float32),
    }

    def make_loss(transform: Any, log_prob: Any) -> Any:
        def loss(parameters: dict[str, jax.Array]) -> jax.Array:
            predictions = inputs @ parameters["w"] + parameters["b"]
            z = transform(predictions)
            return jnp.mean(z**2) - 0.1 * jnp.mean(log_prob(predictions))

        return loss

    with ProbeClient(live_server.url) as probe:
        remote_loss = make_loss(
            probe.as_jax_function("transform"), probe.as_jax_function("log_prob")
        )
        remote_value, remote_grads = jax.jit(jax.value_and_grad(remote_loss))(params)
    local_loss = make_loss(flow_model, flow_model.log_prob)
    local_value, local_grads = jax.value_and_grad(local_loss)(params)

    np.testing.assert_allclose(remote_value, local_value, rtol=GRADIENT_TOLERANCE)
    for name in ("w", "b"):
        np.testing.assert_allclose(
            remote_grads[name],
            local_grads[name],
            rtol=GRADIENT_TOLERANCE,
            atol=GRADIENT_TOLERANCE,
            err_msg=name,
        )
    step = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, remote_grads)
    local_step = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, local_grads)
    np.testing.assert_allclose(step["w"], local_step["w"], atol=GRADIENT_TOLERANCE)


# Pins and typed errors ------------------------------------------------------


def test_live_wrong_digest_raises_before_data(
    live_server: ServerProcess, client_store: ClientStore
) -> None:
    with ProbeClient(live_server.url) as observer:
        before = transform_count(observer)
        with (
            ProbeClient(
                live_server.url, expected_digest=client_store.moons_retrained.digest
            ) as pinned,
            pytest.raises(DigestMismatchError, match="pinned digest sha256:") as caught,
        ):
            pinned.transform(moons_rows(10))
        after = transform_count(observer)
    assert client_store.moons.digest in caught.value.message
    assert after == before


def test_live_correct_pins_accepted(
    live_server: ServerProcess, client_store: ClientStore
) -> None:
    with ProbeClient(
        live_server.url,
        model="moons",
        version=1,
        expected_digest=client_store.moons.digest,
    ) as probe:
        z = probe.transform(moons_rows(10))
    assert z.shape == (10, 2)


def test_live_unserved_version_raises(live_server: ServerProcess) -> None:
    with (
        ProbeClient(live_server.url, model="moons", version=2) as probe,
        pytest.raises(VersionNotFoundError, match="2") as caught,
    ):
        probe.transform(moons_rows(10))
    assert caught.value.status == 404
    assert caught.value.code == "version_not_found"


def test_live_unknown_model_raises(live_server: ServerProcess) -> None:
    with (
        ProbeClient(live_server.url, model="no-such-model") as probe,
        pytest.raises(ModelNotFoundError, match="no-such-model") as caught,
    ):
        probe.log_prob(moons_rows(10))
    assert caught.value.code == "model_not_found"


def test_live_non_finite_raises_server_message(live_server: ServerProcess) -> None:
    x = moons_rows(10)
    x[4, 1] = np.nan
    with (
        ProbeClient(live_server.url) as probe,
        pytest.raises(InvalidInputError, match="is nan") as caught,
    ):
        probe.transform(x)
    assert caught.value.status == 422
    assert caught.value.code == "non_finite"
    assert caught.value.request_id


def test_live_wrong_feature_count_raises(live_server: ServerProcess) -> None:
    with (
        ProbeClient(live_server.url) as probe,
        pytest.raises(InvalidInputError, match="3") as caught,
    ):
        probe.transform(np.zeros((5, 3)))
    assert caught.value.status == 422
    assert caught.value.code == "invalid_shape"


def test_api_key_required(client_store: ClientStore) -> None:
    app = make_app(client_store, [client_store.moons.ref], api_key="client-test-key")
    with open_test_client(app) as http:
        ProbeClient(ASGI_BASE_URL, client=http).wait_until_ready(
            SERVER_START_TIMEOUT_SECONDS
        )
        with (
            ProbeClient(ASGI_BASE_URL, client=http, api_key="wrong") as probe,
            pytest.raises(UnauthorizedError, match="requires an API key") as caught,
        ):
            probe.transform(moons_rows(5))
        with ProbeClient(ASGI_BASE_URL, client=http, api_key="client-test-key") as ok:
            z = ok.transform(moons_rows(5))
    assert caught.value.status == 401
    assert caught.value.code == "unauthorized"
    assert z.shape == (5, 2)


# Server restarts ------------------------------------------------------------


def test_loop_survives_server_restart(
    client_store: ClientStore, caplog: pytest.LogCaptureFixture
) -> None:
    server = ServerProcess(
        client_store.root,
        [client_store.moons.ref],
        client_store.log_dir / "restart-server.log",
        client_store.compilation_cache,
    )
    server.start()
    x = moons_rows(256).astype(np.float32)
    results = []
    try:
        with (
            caplog.at_level(logging.WARNING, logger="gaussprobe_client"),
            ProbeClient(
                server.url,
                expected_digest=client_store.moons.digest,
                retries=RESTART_RETRY_POLICY,
            ) as probe,
        ):
            for call in range(RESTART_LOOP_CALLS):
                if call == RESTART_AT_CALL:
                    server.stop()
                    server.start(wait=False)
                results.append(probe.transform(x))
    finally:
        server.stop()
    retries = [r for r in caplog.records if r.name == "gaussprobe_client"]
    assert len(results) == RESTART_LOOP_CALLS
    # The restarted server serves requests on smaller buckets until its
    # background warm-up ends, so outputs agree to float32 rounding rather
    # than bit for bit. The digest check of every response pins the weights.
    for z in results[1:]:
        np.testing.assert_allclose(z, results[0], rtol=1e-5, atol=1e-5)
    assert retries, "the restart caused no logged retry"
    assert "/transform" in retries[0].getMessage()
    assert "retry 1 of 200" in retries[0].getMessage()


def test_restart_with_other_model_raises(client_store: ClientStore) -> None:
    server = ServerProcess(
        client_store.root,
        [client_store.moons.ref],
        client_store.log_dir / "swap-server.log",
        client_store.compilation_cache,
    )
    server.start()
    x = moons_rows(16)
    try:
        with ProbeClient(
            server.url,
            expected_digest=client_store.moons.digest,
            retries=RESTART_RETRY_POLICY,
        ) as probe:
            probe.transform(x)
            server.stop()
            server.models = [client_store.moons_retrained.ref]
            server.start()
            with pytest.raises(DigestMismatchError, match="restarted with another"):
                probe.transform(x)
    finally:
        server.stop()
