"""Self-test of a loaded model on the reference rows stored in its manifest."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SelfTestError", "run_self_test"]

# Largest allowed |actual - expected| relative to max(1, |expected|). The
# reference outputs were computed by the same weights at training time, so
# differences come only from XLA choosing other kernels for other batch shapes.
OUTPUT_TOLERANCE = {"float32": 1e-4, "float64": 1e-9}
# Round trip x -> z -> x, relative to max(1, |x|).
ROUND_TRIP_TOLERANCE = {"float32": 1e-3, "float64": 1e-8}


class SelfTestError(RuntimeError):
    """The compiled model does not reproduce its manifest's reference outputs."""


def _scaled_error(actual: np.ndarray, expected: np.ndarray) -> float:
    scale = np.maximum(1.0, np.abs(expected))
    return float(np.max(np.abs(actual.astype(np.float64) - expected) / scale))


def run_self_test(
    runner: Any, reference: Any, dtype: np.dtype[Any]
) -> dict[str, float]:
    """Check transform, log-prob and round trip against the reference rows.

    Args:
        runner: The model's ``CompiledFlow``.
        reference: Manifest ``reference`` block ``{"x", "z", "log_prob"}``:
            ``x`` and ``z`` `(rows, d)`, ``log_prob`` `(rows,)`.
        dtype: Model dtype.

    Returns:
        Largest scaled errors ``{"z", "log_prob", "round_trip"}``.

    Raises:
        SelfTestError: The block is missing or malformed, an output is not
            finite, or an error exceeds its tolerance.
    """
    if not isinstance(reference, dict) or not {"x", "z", "log_prob"} <= set(reference):
        raise SelfTestError(
            "manifest.json has no 'reference' block with 'x', 'z' and 'log_prob'; "
            "republish the model with the training job, which writes it"
        )
    try:
        x = np.asarray(reference["x"], dtype=np.float64)
        expected_z = np.asarray(reference["z"], dtype=np.float64)
        expected_log_prob = np.asarray(reference["log_prob"], dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise SelfTestError(
            f"manifest.json 'reference' is not numeric ({error})"
        ) from None
    if (
        x.ndim != 2
        or x.shape != expected_z.shape
        or expected_log_prob.shape != (x.shape[0],)
    ):
        raise SelfTestError(
            f"manifest.json 'reference' has inconsistent shapes x={x.shape}, "
            f"z={expected_z.shape}, log_prob={expected_log_prob.shape}"
        )
    inputs = x.astype(dtype)
    z = np.asarray(runner.transform(inputs))
    log_prob = np.asarray(runner.log_prob(inputs))
    x_back = np.asarray(runner.invert(z))
    for label, values in (("z", z), ("log_prob", log_prob), ("invert(z)", x_back)):
        if not np.all(np.isfinite(values)):
            raise SelfTestError(f"self-test output {label} is not finite")
    key = str(dtype)
    errors = {
        "z": _scaled_error(z, expected_z),
        "log_prob": _scaled_error(log_prob, expected_log_prob),
        "round_trip": _scaled_error(x_back, x),
    }
    limits = {
        "z": OUTPUT_TOLERANCE[key],
        "log_prob": OUTPUT_TOLERANCE[key],
        "round_trip": ROUND_TRIP_TOLERANCE[key],
    }
    for label, measured in errors.items():
        if measured > limits[label]:
            raise SelfTestError(
                f"self-test {label} error {measured:.3g} exceeds the tolerance "
                f"{limits[label]:.1g} for {key}; the weights or the runtime differ "
                "from those that produced manifest.json 'reference'"
            )
    return errors
