"""Model operations as data: route, input arrays, options and expected outputs.

The sync and async clients share these, so each method is described once and
the two clients only differ in how they send requests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from gaussprobe_client._arrays import as_batch, as_cotangent

__all__ = [
    "Operation",
    "check_output_shapes",
    "empty_outputs",
    "invert_operation",
    "join_outputs",
    "log_prob_operation",
    "split_operation",
    "transform_operation",
]


@dataclasses.dataclass(frozen=True)
class Operation:
    """One call of a model route.

    Attributes:
        route: Route under the model prefix, e.g. ``"transform"``.
        inputs: Named input arrays; the first is the primary input (``x`` or
            ``z``), all share the batch axis.
        options: Boolean query or JSON options, e.g. ``{"return_log_det": True}``.
        outputs: Names of the arrays expected in the response.
    """

    route: str
    inputs: dict[str, np.ndarray]
    options: dict[str, bool]
    outputs: tuple[str, ...]

    @property
    def primary(self) -> np.ndarray:
        """The primary input ``(batch, features)``."""
        return next(iter(self.inputs.values()))

    @property
    def rows(self) -> int:
        """Number of rows in the batch."""
        return int(self.primary.shape[0])

    @property
    def features(self) -> int:
        """Number of features of the primary input."""
        return int(self.primary.shape[1])

    @property
    def dtype(self) -> np.dtype:
        """dtype of the inputs and of the decoded outputs."""
        return self.primary.dtype


def transform_operation(
    x: npt.ArrayLike,
    *,
    return_log_det: bool = False,
    return_jacobian: bool = False,
    cotangent: npt.ArrayLike | None = None,
) -> Operation:
    """Describe a ``POST /transform`` call."""
    batch = as_batch(x, "x")
    inputs = {"x": batch}
    options: dict[str, bool] = {}
    outputs = ["z"]
    if return_log_det:
        options["return_log_det"] = True
        outputs.append("log_det")
    if return_jacobian:
        options["return_jacobian"] = True
        outputs.append("jacobian")
    if cotangent is not None:
        inputs["cotangent"] = as_cotangent(cotangent, batch)
        outputs.append("dx")
    return Operation("transform", inputs, options, tuple(outputs))


def invert_operation(z: npt.ArrayLike) -> Operation:
    """Describe a ``POST /invert`` call."""
    return Operation("invert", {"z": as_batch(z, "z")}, {}, ("x",))


def log_prob_operation(x: npt.ArrayLike, *, return_score: bool = False) -> Operation:
    """Describe a ``POST /logprob`` call."""
    options = {"return_score": True} if return_score else {}
    outputs = ("log_prob", "score") if return_score else ("log_prob",)
    return Operation("logprob", {"x": as_batch(x, "x")}, options, outputs)


def _output_shape(name: str, rows: int, features: int) -> tuple[int, ...]:
    if name in ("log_det", "log_prob"):
        return (rows,)
    if name == "jacobian":
        return (rows, features, features)
    return (rows, features)


def empty_outputs(operation: Operation) -> dict[str, np.ndarray]:
    """Build the outputs of a zero-row operation without calling the service."""
    return {
        name: np.empty(_output_shape(name, 0, operation.features), operation.dtype)
        for name in operation.outputs
    }


def check_output_shapes(
    operation: Operation, outputs: dict[str, np.ndarray]
) -> list[str]:
    """List the problems of decoded outputs: missing names and wrong shapes."""
    problems = []
    for name in operation.outputs:
        if name not in outputs:
            problems.append(f"missing array {name!r}")
            continue
        expected = _output_shape(name, operation.rows, operation.features)
        if outputs[name].shape != expected:
            problems.append(
                f"array {name!r} has shape {outputs[name].shape}, expected {expected}"
            )
    return problems


def split_operation(
    operation: Operation, max_rows: int
) -> Iterator[tuple[int, Operation]]:
    """Split an operation into chunks of at most ``max_rows`` rows.

    Yields:
        ``(first_row, chunk)`` pairs, in row order.
    """
    if operation.rows <= max_rows:
        yield 0, operation
        return
    for start in range(0, operation.rows, max_rows):
        stop = start + max_rows
        inputs = {name: array[start:stop] for name, array in operation.inputs.items()}
        yield start, dataclasses.replace(operation, inputs=inputs)


def join_outputs(
    operation: Operation, chunks: Sequence[dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Concatenate chunk outputs along the batch axis."""
    if len(chunks) == 1:
        return chunks[0]
    return {
        name: np.concatenate([chunk[name] for chunk in chunks], axis=0)
        for name in operation.outputs
    }
