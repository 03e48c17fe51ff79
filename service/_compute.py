"""Model computations behind each route, run on a worker thread."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from service._arrays import require_finite_output
from service._registry import LoadedModel

__all__ = [
    "compute_diagnostics_json",
    "compute_invert",
    "compute_logprob",
    "compute_transform",
    "finite_or_none",
]

ComputeFn = Callable[
    [LoadedModel, dict[str, np.ndarray], dict[str, Any]], dict[str, np.ndarray]
]


def _checked(outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    for name, array in outputs.items():
        require_finite_output(name, array)
    return outputs


def compute_transform(
    model: LoadedModel, arrays: dict[str, np.ndarray], options: dict[str, Any]
) -> dict[str, np.ndarray]:
    """Run ``/transform``: ``z`` and, when asked, ``log_det``, ``jacobian``, ``dx``."""
    runner = model.runner
    x = arrays["x"]
    outputs: dict[str, np.ndarray] = {}
    if options.get("return_log_det"):
        z, log_det = runner.transform_with_log_det(x)
        outputs["z"] = np.asarray(z)
        outputs["log_det"] = np.asarray(log_det)
    else:
        outputs["z"] = np.asarray(runner.transform(x))
    if options.get("return_jacobian"):
        outputs["jacobian"] = np.asarray(runner.jacobian(x))
    if "cotangent" in arrays:
        outputs["dx"] = np.asarray(runner.vjp(x, arrays["cotangent"]))
    return _checked(outputs)


def compute_invert(
    model: LoadedModel, arrays: dict[str, np.ndarray], options: dict[str, Any]
) -> dict[str, np.ndarray]:
    """Run ``/invert``: ``x`` from ``z``."""
    return _checked({"x": np.asarray(model.runner.invert(arrays["z"]))})


def compute_logprob(
    model: LoadedModel, arrays: dict[str, np.ndarray], options: dict[str, Any]
) -> dict[str, np.ndarray]:
    """Run ``/logprob``: ``log_prob`` and, when asked, ``score``."""
    x = arrays["x"]
    outputs = {"log_prob": np.asarray(model.runner.log_prob(x))}
    if options.get("return_score"):
        outputs["score"] = np.asarray(model.runner.score(x))
    return _checked(outputs)


def finite_or_none(value: Any) -> Any:
    """Replace NaN and infinite floats in nested JSON data with None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(item) for item in value]
    if isinstance(value, np.ndarray):
        return finite_or_none(value.tolist())
    if isinstance(value, np.floating):
        return finite_or_none(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


def compute_diagnostics_json(model: LoadedModel, x: np.ndarray) -> dict[str, Any]:
    """Run ``compute_diagnostics`` on a batch; undefined statistics become null."""
    from flow import compute_diagnostics

    result: dict[str, Any] = finite_or_none(compute_diagnostics(model.flow, x))
    return result
