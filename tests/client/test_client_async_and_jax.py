"""Async client and JAX wrappers against the in-memory contract fake."""

from __future__ import annotations

import logging

import httpx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from client_fake_service import OTHER_DIGEST, FakeService
from gaussprobe_client import (
    AsyncProbeClient,
    DigestMismatchError,
    InvalidInputError,
    ProbeClient,
    RetryPolicy,
)

BASE_URL = "http://fake.test"
NO_WAIT = RetryPolicy(max_retries=3, base_delay=0.0, max_delay=0.0)


@pytest.fixture
def fake() -> FakeService:
    return FakeService()


def make_async_client(fake: FakeService, **kwargs: object) -> AsyncProbeClient:
    http = httpx.AsyncClient(transport=fake.transport())
    kwargs.setdefault("retries", NO_WAIT)
    return AsyncProbeClient(BASE_URL, client=http, **kwargs)  # type: ignore[arg-type]


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", [pytest.param("npy"), pytest.param("json")])
async def test_async_methods_match_closed_form(
    fake: FakeService, transport: str
) -> None:
    x = np.random.default_rng(0).normal(size=(2500, 2)).astype(np.float32)
    async with make_async_client(fake, transport=transport) as probe:
        z, log_det = await probe.transform_with_log_det(x)
        x_back = await probe.invert(z)
        score = await probe.score(x)
        dx = await probe.vjp(x, np.ones_like(x))
        jacobian = await probe.jacobian(x[:3])
        log_prob = await probe.log_prob(x)
        metadata = await probe.metadata()
    assert z.dtype == np.float32
    np.testing.assert_allclose(z, (x - fake.shift) * fake.scale, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(x_back, x, rtol=1e-5, atol=1e-6)
    assert log_det.shape == (2500,)
    assert log_prob.shape == (2500,)
    np.testing.assert_allclose(score, -z * fake.scale, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx[0], fake.scale)
    np.testing.assert_allclose(jacobian[0], np.diag(fake.scale))
    assert metadata["name"] == "affine"
    assert fake.row_counts[:3] == [1000, 1000, 500]


@pytest.mark.asyncio
async def test_async_retry_logged(
    fake: FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    async with make_async_client(fake) as probe:
        await probe.models()
        fake.fail_next = [(503, "not_ready")]
        with caplog.at_level(logging.WARNING, logger="gaussprobe_client"):
            log_prob = await probe.log_prob(np.zeros((3, 2)))
    assert log_prob.shape == (3,)
    assert len(caplog.records) == 1
    assert "retry 1 of 3" in caplog.records[0].getMessage()


@pytest.mark.asyncio
async def test_async_wrong_digest_raises(fake: FakeService) -> None:
    async with make_async_client(fake, expected_digest=OTHER_DIGEST) as probe:
        with pytest.raises(DigestMismatchError, match="pinned digest"):
            await probe.transform(np.zeros((2, 2)))


@pytest.mark.asyncio
async def test_async_server_error_typed(fake: FakeService) -> None:
    x = np.zeros((2, 2))
    x[0, 1] = np.nan
    async with make_async_client(fake) as probe:
        with pytest.raises(InvalidInputError, match=r"x\[0, 1\] is not finite"):
            await probe.transform(x)


@pytest.fixture
def probe(fake: FakeService) -> ProbeClient:
    http = httpx.Client(transport=fake.transport())
    return ProbeClient(BASE_URL, client=http, retries=NO_WAIT)


def test_jax_transform_value_and_grad(fake: FakeService, probe: ProbeClient) -> None:
    remote = probe.as_jax_function("transform")
    x = jnp.asarray(np.random.default_rng(2).normal(size=(5, 2)), jnp.float32)
    weights = jnp.array([1.0, -3.0])

    def loss(inputs: jax.Array) -> jax.Array:
        return jnp.sum(remote(inputs) * weights)

    value, grad = jax.jit(jax.value_and_grad(loss))(x)
    expected_z = (np.asarray(x) - fake.shift) * fake.scale
    np.testing.assert_allclose(value, np.sum(expected_z * weights), rtol=1e-5)
    np.testing.assert_allclose(grad, np.broadcast_to(weights * fake.scale, (5, 2)))
    assert grad.dtype == jnp.float32


def test_jax_log_prob_grad_is_score(fake: FakeService, probe: ProbeClient) -> None:
    remote = probe.as_jax_function("log_prob")
    x = jnp.asarray(np.random.default_rng(3).normal(size=(4, 2)), jnp.float32)
    grad = jax.jit(jax.grad(lambda inputs: jnp.sum(2.0 * remote(inputs))))(x)
    z = (np.asarray(x) - fake.shift) * fake.scale
    np.testing.assert_allclose(grad, 2.0 * -z * fake.scale, rtol=1e-5)


def test_jax_vmap_makes_one_request(fake: FakeService, probe: ProbeClient) -> None:
    remote = probe.as_jax_function("transform")
    x = jnp.asarray(np.random.default_rng(4).normal(size=(3, 4, 2)), jnp.float32)
    probe.metadata()
    before = len(fake.row_counts)
    z = jax.jit(jax.vmap(remote))(x)
    assert len(fake.row_counts) == before + 1
    assert fake.row_counts[-1] == 12
    np.testing.assert_allclose(z, (np.asarray(x) - fake.shift) * fake.scale, rtol=1e-6)


def test_jax_function_rejects_unknown_method(probe: ProbeClient) -> None:
    with pytest.raises(ValueError, match="supports log_prob, transform; got 'invert'"):
        probe.as_jax_function("invert")  # type: ignore[arg-type]


def test_jax_function_rejects_integer_input(probe: ProbeClient) -> None:
    remote = probe.as_jax_function("transform")
    with pytest.raises(ValueError, match="float32 or float64 x; got int32"):
        remote(jnp.ones((2, 2), jnp.int32))
