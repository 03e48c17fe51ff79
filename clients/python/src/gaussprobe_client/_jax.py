"""Differentiable JAX wrappers around a remote probe.

JAX is imported inside ``make_jax_function`` only, so the base install works
without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from gaussprobe_client._sync import ProbeClient

__all__ = ["JAX_METHODS", "make_jax_function"]

JAX_METHODS = ("log_prob", "transform")

# The callbacks flatten every leading axis into one batch, so with
# "broadcast_all" a jax.vmap over the probe becomes a single remote call
# instead of one call per mapped element ("sequential").
_VMAP_METHOD = "broadcast_all"


def _flatten_rows(array: np.ndarray) -> np.ndarray:
    """Reshape `(..., features)` to `(rows, features)`."""
    return array.reshape(-1, array.shape[-1])


def _import_jax() -> Any:
    try:
        import jax
    except ImportError as exc:
        raise ImportError(
            "as_jax_function needs JAX; install it with "
            "pip install 'gaussprobe-client[jax]'"
        ) from exc
    return jax


def make_jax_function(client: ProbeClient, method: str) -> Callable[[Any], Any]:
    """Build a JAX function whose value and VJP come from the service.

    Args:
        client: The blocking client that sends the requests.
        method: ``"transform"`` or ``"log_prob"``.

    Returns:
        A function of x `(..., features)` usable under ``jax.jit``,
        ``jax.grad`` and ``jax.vmap``.

    Raises:
        ValueError: If ``method`` is not one of ``JAX_METHODS``.
        ImportError: If JAX is not installed.
    """
    if method not in JAX_METHODS:
        raise ValueError(
            f"as_jax_function supports {', '.join(JAX_METHODS)}; got {method!r}"
        )
    jax = _import_jax()
    if method == "transform":
        return _make_transform(jax, client)
    return _make_log_prob(jax, client)


def _check_traced_input(x: Any) -> None:
    if x.ndim < 1:
        raise ValueError(
            f"the probe takes x with shape (..., features); got a scalar of "
            f"shape {x.shape}"
        )
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(
            f"the probe takes float32 or float64 x; got {x.dtype}. Cast it, "
            "e.g. x.astype(jnp.float32)"
        )


def _make_transform(jax: Any, client: ProbeClient) -> Callable[[Any], Any]:
    def host_transform(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        return client.transform(_flatten_rows(x)).reshape(x.shape)

    def host_vjp(x: np.ndarray, cotangent: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        dx = client.vjp(_flatten_rows(x), _flatten_rows(np.asarray(cotangent)))
        return dx.reshape(x.shape)

    def remote_transform(x: Any) -> Any:
        shape = jax.ShapeDtypeStruct(x.shape, x.dtype)
        return jax.pure_callback(host_transform, shape, x, vmap_method=_VMAP_METHOD)

    @jax.custom_vjp
    def probe_transform(x: Any) -> Any:
        _check_traced_input(x)
        return remote_transform(x)

    def forward(x: Any) -> tuple[Any, Any]:
        _check_traced_input(x)
        return remote_transform(x), x

    def backward(x: Any, cotangent: Any) -> tuple[Any]:
        shape = jax.ShapeDtypeStruct(x.shape, x.dtype)
        dx = jax.pure_callback(
            host_vjp, shape, x, cotangent.astype(x.dtype), vmap_method=_VMAP_METHOD
        )
        return (dx,)

    probe_transform.defvjp(forward, backward)
    return probe_transform


def _make_log_prob(jax: Any, client: ProbeClient) -> Callable[[Any], Any]:
    def host_log_prob(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        return client.log_prob(_flatten_rows(x)).reshape(x.shape[:-1])

    def host_log_prob_and_score(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # One /logprob?return_score=true request returns both arrays.
        x = np.asarray(x)
        outputs = client.log_prob_with_score(_flatten_rows(x))
        return outputs[0].reshape(x.shape[:-1]), outputs[1].reshape(x.shape)

    @jax.custom_vjp
    def probe_log_prob(x: Any) -> Any:
        _check_traced_input(x)
        shape = jax.ShapeDtypeStruct(x.shape[:-1], x.dtype)
        return jax.pure_callback(host_log_prob, shape, x, vmap_method=_VMAP_METHOD)

    def forward(x: Any) -> tuple[Any, Any]:
        _check_traced_input(x)
        shapes = (
            jax.ShapeDtypeStruct(x.shape[:-1], x.dtype),
            jax.ShapeDtypeStruct(x.shape, x.dtype),
        )
        log_prob, score = jax.pure_callback(
            host_log_prob_and_score, shapes, x, vmap_method=_VMAP_METHOD
        )
        return log_prob, score

    def backward(score: Any, cotangent: Any) -> tuple[Any]:
        # d/dx sum_i g_i log p(x_i) = g_i * score_i, row by row.
        return (cotangent[..., None].astype(score.dtype) * score,)

    probe_log_prob.defvjp(forward, backward)
    return probe_log_prob
