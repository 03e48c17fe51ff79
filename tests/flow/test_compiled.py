"""The bucketed jit runner: same numbers as the flow, no recompiles."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flow
from flow._compiled import KERNEL_NAMES, MAX_SPLIT_CALLS, bucket_sizes, plan_chunks

AGREEMENT = 1e-5
MAX_CHUNK = 1024


@pytest.fixture(scope="module")
def small_flow(moons: tuple) -> flow.GaussianizationFlow:
    train, _ = moons
    model, _ = flow.fit_and_freeze(
        train[:1000], num_blocks=2, num_components=4, epochs=2, seed=3
    )
    return model


@pytest.fixture(scope="module")
def runner(small_flow: flow.GaussianizationFlow) -> flow.CompiledFlow:
    compiled = flow.CompiledFlow(small_flow, max_chunk=MAX_CHUNK)
    compiled.warmup()
    return compiled


def test_bucket_sizes_base_16() -> None:
    assert bucket_sizes(4096) == [16, 256, 4096]
    assert bucket_sizes(1024) == [16, 256, 1024]
    assert bucket_sizes(8) == [8]
    assert bucket_sizes(1) == [1]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (1, [(0, 1, 1)]),
        (3, [(0, 3, 16)]),
        (5, [(0, 5, 16)]),
        (16, [(0, 16, 16)]),
        (17, [(0, 16, 16), (16, 17, 16)]),
        (64, [(0, 16, 16), (16, 32, 16), (32, 48, 16), (48, 64, 16)]),
        (65, [(0, 65, 256)]),
        (1000, [(0, 256, 256), (256, 512, 256), (512, 768, 256), (768, 1000, 256)]),
        (1025, [(0, 1025, 4096)]),
        (4097, [(0, 4096, 4096), (4096, 4097, 1)]),
    ],
)
def test_plan_chunks_table(rows: int, expected: list[tuple[int, int, int]]) -> None:
    assert plan_chunks(rows, [1, 16, 256, 4096]) == expected


@pytest.mark.parametrize("sizes", [[1, 16, 256, 4096], [16], [1, 16], [16, 4096]])
def test_plan_chunks_covers_rows(sizes: list[int]) -> None:
    for rows in [*range(1, 300), 1000, 4095, 4096, 4097, 9000, 20_000]:
        plan = plan_chunks(rows, sizes)
        assert plan[0][0] == 0, (rows, plan)
        assert plan[-1][1] == rows, (rows, plan)
        for (_, stop, _), (start, _, _) in itertools.pairwise(plan):
            assert stop == start, (rows, plan)
        for start, stop, size in plan:
            assert size in sizes, (rows, plan)
            assert 0 < stop - start <= size, (rows, plan)
        full = rows // sizes[-1]
        assert [size for _, _, size in plan[:full]] == [sizes[-1]] * full
        tail = plan[full:]
        if len(tail) == 1:
            remainder = tail[0][1] - tail[0][0]
            assert tail[0][2] == min(s for s in sizes if s >= remainder), plan
        elif tail:
            assert len(tail) <= MAX_SPLIT_CALLS, (rows, plan)
            assert len({size for _, _, size in tail}) == 1, (rows, plan)


@pytest.mark.slow
def test_warmup_compiles_each_kernel_per_bucket(runner: flow.CompiledFlow) -> None:
    assert runner.buckets == [16, 256, MAX_CHUNK]
    assert runner.num_compilations == len(KERNEL_NAMES) * len(runner.buckets)
    assert runner.compiled_buckets() == {
        kernel: runner.buckets for kernel in KERNEL_NAMES
    }
    assert runner.warmup() == 0


@pytest.mark.slow
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


@pytest.mark.slow
def test_runner_matches_flow(runner: flow.CompiledFlow, moons: tuple) -> None:
    _, held_out = moons
    x = held_out[:777]
    model = runner.flow
    assert np.max(np.abs(runner.transform(x) - np.asarray(model(x)))) <= AGREEMENT
    assert (
        np.max(np.abs(runner.log_prob(x) - np.asarray(model.log_prob(x)))) <= AGREEMENT
    )
    z, log_det = runner.transform_with_log_det(x)
    np.testing.assert_array_equal(z, runner.transform(x))
    _, expected_log_det = model.forward_and_log_det(x)
    assert np.max(np.abs(log_det - np.asarray(expected_log_det))) <= AGREEMENT
    assert np.max(np.abs(runner.invert(z) - x)) <= 1e-4


@pytest.mark.slow
def test_log_prob_bits_match_library(runner: flow.CompiledFlow, moons: tuple) -> None:
    # A batch of exactly one bucket runs the same program shape as the
    # library's jitted log_prob, so the formula must agree to the last bit.
    _, held_out = moons
    x = held_out[:256]
    np.testing.assert_array_equal(
        runner.log_prob(x), np.asarray(runner.flow.log_prob(x))
    )


@pytest.mark.slow
def test_runner_derivatives(runner: flow.CompiledFlow, moons: tuple) -> None:
    _, held_out = moons
    params = runner.flow.params()

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

    # Both sizes run as several padded calls.
    for rows in (20, 300):
        x = held_out[:rows]
        cotangent = (
            np.random.default_rng(rows).standard_normal(x.shape).astype(np.float32)
        )
        expected_dx = np.asarray(reference_vjp(jnp.asarray(x), jnp.asarray(cotangent)))
        assert np.max(np.abs(runner.vjp(x, cotangent) - expected_dx)) <= AGREEMENT
        expected_jacobian = np.asarray(reference_jacobian(jnp.asarray(x)))
        jacobian = runner.jacobian(x)
        assert jacobian.shape == (rows, 2, 2)
        assert np.max(np.abs(jacobian - expected_jacobian)) <= AGREEMENT
        expected_score = np.asarray(reference_score(jnp.asarray(x)))
        assert np.max(np.abs(runner.score(x) - expected_score)) <= AGREEMENT


@pytest.mark.slow
def test_compiled_buckets_only(
    small_flow: flow.GaussianizationFlow, runner: flow.CompiledFlow, moons: tuple
) -> None:
    _, held_out = moons
    lean = flow.CompiledFlow(small_flow, max_chunk=MAX_CHUNK, compile_on_demand=False)
    assert lean.warmup(max_rows=256, functions=("transform",)) == 2
    x = np.tile(held_out, (2, 1))[:3000]
    assert np.max(np.abs(lean.transform(x) - runner.transform(x))) <= AGREEMENT
    assert lean.compiled_buckets()["forward"] == [16, 256]
    assert lean.num_compilations == 2

    # A kernel with no compiled bucket compiles the one its first batch needs,
    # and later batches of any size reuse it.
    z = lean.transform(x[:40])
    assert np.max(np.abs(lean.invert(z) - x[:40])) <= 1e-4
    assert lean.compiled_buckets()["inverse"] == [16]
    lean.invert(lean.transform(x))
    assert lean.num_compilations == 3


@pytest.mark.slow
def test_runner_empty_batch(runner: flow.CompiledFlow) -> None:
    empty = np.zeros((0, 2), np.float32)
    assert runner.transform(empty).shape == (0, 2)
    z, log_det = runner.transform_with_log_det(empty)
    assert z.shape == (0, 2)
    assert log_det.shape == (0,)
    assert runner.invert(empty).shape == (0, 2)
    assert runner.log_prob(empty).shape == (0,)
    assert runner.vjp(empty, empty).shape == (0, 2)
    assert runner.jacobian(empty).shape == (0, 2, 2)
    assert runner.score(empty).shape == (0, 2)


@pytest.mark.slow
def test_runner_rejects_bad_cotangent(runner: flow.CompiledFlow) -> None:
    x = np.zeros((3, 2), np.float32)
    with pytest.raises(
        ValueError,
        match=r"cotangent must have the shape of x, \(3, 2\); received \(2, 2\)",
    ):
        runner.vjp(x, np.zeros((2, 2), np.float32))


@pytest.mark.slow
def test_compile_bucket_rejects_unknown_function(runner: flow.CompiledFlow) -> None:
    with pytest.raises(ValueError, match=r"unknown function 'hessian'; use one of"):
        runner.compile_bucket("hessian", 1)


@pytest.mark.slow
def test_chunk_threads_match_serial(
    small_flow: flow.GaussianizationFlow, moons: tuple
) -> None:
    _, held_out = moons
    # 2,500 rows run as two full 1024-row chunks and two 256-row chunks.
    x = np.tile(held_out, (2, 1))[:2500]
    serial = flow.CompiledFlow(small_flow, max_chunk=MAX_CHUNK, workers=1)
    threaded = flow.CompiledFlow(small_flow, max_chunk=MAX_CHUNK, workers=3)
    try:
        for function in ("transform", "log_prob", "invert"):
            expected = getattr(serial, function)(x)
            np.testing.assert_array_equal(getattr(threaded, function)(x), expected)
        z = threaded.transform(x)
        np.testing.assert_array_equal(threaded.invert(z), serial.invert(z))
        cotangent = np.ones_like(x)
        np.testing.assert_array_equal(
            threaded.vjp(x, cotangent), serial.vjp(x, cotangent)
        )
    finally:
        threaded.close()
    assert threaded.workers == 3


def test_runner_rejects_zero_workers() -> None:
    with pytest.raises(ValueError, match=r"workers must be >= 1 .*; received 0"):
        flow.CompiledFlow(flow.GaussianizationFlow(dim=2), workers=0)
