"""The bucketed jit runner: same numbers as the flow, no recompiles."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flow

pytestmark = pytest.mark.slow

AGREEMENT = 1e-5


@pytest.fixture(scope="module")
def runner(moons: tuple) -> flow.CompiledFlow:
    train, _ = moons
    model, _ = flow.fit_and_freeze(
        train[:1000], num_blocks=2, num_components=4, epochs=2, seed=3
    )
    compiled = flow.CompiledFlow(model, max_chunk=1024)
    compiled.warmup()
    return compiled


def test_no_recompiles_after_warmup(runner: flow.CompiledFlow) -> None:
    before = runner.num_compilations
    rng = np.random.default_rng(0)
    for rows in [1, 2, 3, 17, 64, 65, 255, 1000, 1024, 1025, 3000]:
        x = rng.standard_normal((rows, 2)).astype(np.float32)
        runner.transform(x)
        runner.transform_with_log_det(x)
        runner.invert(x)
        runner.log_prob(x)
        runner.vjp(x, x)
        runner.jacobian(x)
        runner.score(x)
    assert runner.num_compilations == before


def test_runner_matches_flow(runner: flow.CompiledFlow, moons: tuple) -> None:
    _, held_out = moons
    x = held_out[:777]
    model = runner.flow
    assert np.max(np.abs(runner.transform(x) - np.asarray(model(x)))) <= AGREEMENT
    assert (
        np.max(np.abs(runner.log_prob(x) - np.asarray(model.log_prob(x)))) <= AGREEMENT
    )
    z = runner.transform(x)
    assert np.max(np.abs(runner.invert(z) - x)) <= 1e-4


def test_runner_derivatives(runner: flow.CompiledFlow, moons: tuple) -> None:
    _, held_out = moons
    x = held_out[:20]
    params = runner.flow.params()
    cotangent = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)

    # The references run under jax.jit: eager autodiff through the flow's
    # lax.scan re-lowers on every call.
    @jax.jit
    def reference_vjp(value: jax.Array, cot: jax.Array) -> jax.Array:
        _, pullback = jax.vjp(lambda v: runner.flow.forward_pure(params, v)[0], value)
        return pullback(cot)[0]

    def row_forward(row: jax.Array) -> jax.Array:
        return runner.flow.forward_pure(params, row[None])[0][0]

    reference_jacobian = jax.jit(jax.vmap(jax.jacfwd(row_forward)))
    reference_score = jax.jit(
        jax.grad(lambda v: jnp.sum(runner.flow.log_prob_pure(params, v)))
    )

    expected_dx = np.asarray(reference_vjp(jnp.asarray(x), jnp.asarray(cotangent)))
    assert np.max(np.abs(runner.vjp(x, cotangent) - expected_dx)) <= AGREEMENT
    expected_jacobian = np.asarray(reference_jacobian(jnp.asarray(x)))
    assert np.max(np.abs(runner.jacobian(x) - expected_jacobian)) <= AGREEMENT
    expected_score = np.asarray(reference_score(jnp.asarray(x)))
    assert np.max(np.abs(runner.score(x) - expected_score)) <= AGREEMENT


def test_runner_empty_batch(runner: flow.CompiledFlow) -> None:
    empty = np.zeros((0, 2), np.float32)
    assert runner.transform(empty).shape == (0, 2)
    assert runner.log_prob(empty).shape == (0,)
    assert runner.jacobian(empty).shape == (0, 2, 2)


def test_runner_rejects_bad_cotangent(runner: flow.CompiledFlow) -> None:
    x = np.zeros((3, 2), np.float32)
    with pytest.raises(
        ValueError,
        match=r"cotangent must have the shape of x, \(3, 2\); received \(2, 2\)",
    ):
        runner.vjp(x, np.zeros((2, 2), np.float32))
