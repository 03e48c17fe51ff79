"""Expected outputs of every client method, computed by the in-process flow."""

from __future__ import annotations

from typing import Any

import numpy as np
from gaussprobe_client import AsyncProbeClient, ProbeClient

__all__ = [
    "METHOD_NAMES",
    "assert_outputs_match",
    "collect_async",
    "collect_sync",
    "reference_outputs",
]

METHOD_NAMES = (
    "transform",
    "transform_log_det",
    "invert",
    "log_prob",
    "score",
    "vjp",
    "jacobian",
)


def collect_sync(
    probe: ProbeClient, x: np.ndarray, cotangent: np.ndarray
) -> dict[str, np.ndarray]:
    """Call every array method of a blocking client once."""
    z = probe.transform(x)
    z_again, log_det = probe.transform_with_log_det(x)
    return {
        "transform": z,
        "transform_again": z_again,
        "transform_log_det": log_det,
        "invert": probe.invert(z),
        "log_prob": probe.log_prob(x),
        "score": probe.score(x),
        "vjp": probe.vjp(x, cotangent),
        "jacobian": probe.jacobian(x),
    }


async def collect_async(
    probe: AsyncProbeClient, x: np.ndarray, cotangent: np.ndarray
) -> dict[str, np.ndarray]:
    """Call every array method of an async client once."""
    z = await probe.transform(x)
    z_again, log_det = await probe.transform_with_log_det(x)
    return {
        "transform": z,
        "transform_again": z_again,
        "transform_log_det": log_det,
        "invert": await probe.invert(z),
        "log_prob": await probe.log_prob(x),
        "score": await probe.score(x),
        "vjp": await probe.vjp(x, cotangent),
        "jacobian": await probe.jacobian(x),
    }


def reference_outputs(
    flow_model: Any, x: np.ndarray, cotangent: np.ndarray
) -> dict[str, np.ndarray]:
    """Compute every method's expected output with the in-process flow.

    Values come from the Keras model's own methods. Derivatives come from
    ``jax.grad``, ``jax.vjp`` and ``jax.jacfwd`` through the model, which is
    independent of the service's jitted runner.
    """
    import jax
    import jax.numpy as jnp

    dtype = np.dtype(flow_model.feature_dtype)
    x_model = jnp.asarray(x, dtype=dtype)
    z, log_det = flow_model.forward_and_log_det(x_model)
    _, pullback = jax.vjp(lambda inputs: flow_model(inputs), x_model)
    (dx,) = pullback(jnp.asarray(cotangent, dtype=dtype))
    score = jax.grad(lambda inputs: jnp.sum(flow_model.log_prob(inputs)))(x_model)
    jacobian = jax.vmap(jax.jacfwd(lambda row: flow_model(row[None, :])[0]))(x_model)
    return {
        "transform": np.asarray(z),
        "transform_log_det": np.asarray(log_det),
        "invert": x.astype(dtype),
        "log_prob": np.asarray(flow_model.log_prob(x_model)),
        "score": np.asarray(score),
        "vjp": np.asarray(dx),
        "jacobian": np.asarray(jacobian),
    }


def assert_outputs_match(
    outputs: dict[str, np.ndarray],
    expected: dict[str, np.ndarray],
    request_dtype: np.dtype,
    tolerance: float,
) -> None:
    """Check dtypes, shapes and values of ``collect_*`` against the reference."""
    for name, array in outputs.items():
        assert array.dtype == request_dtype, f"{name} came back as {array.dtype}"
    np.testing.assert_array_equal(outputs["transform"], outputs["transform_again"])
    for name in METHOD_NAMES:
        assert outputs[name].shape == expected[name].shape, name
        np.testing.assert_allclose(
            outputs[name].astype(np.float64),
            expected[name].astype(np.float64),
            rtol=tolerance,
            atol=tolerance,
            err_msg=name,
        )
