"""Dequantization of integer-valued and heavily tied columns.

A continuous flow fitted by maximum likelihood to data with repeated values can
put an ever narrower spike on each repeated value, so its likelihood grows
without bound. Adding uniform noise of one quantum width to such a column
spreads each repeated value over its cell, so the density is bounded and the
maximum-likelihood problem is well posed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_TIE_FRACTION",
    "ColumnQuantization",
    "apply_dequantization",
    "estimate_quantum",
    "plan_dequantization",
]

DEFAULT_TIE_FRACTION = 0.01
"""A column whose most frequent value covers more than this fraction of rows is
treated as tied and dequantized."""

MAX_GRID_DECIMALS = 6
"""Most decimal places searched when looking for the grid a column lies on."""

GRID_TOLERANCE = 1e-9
"""Relative tolerance for deciding that a scaled value is an integer."""

MAX_EXACT_INTEGER = 2.0**53
"""Largest magnitude at which float64 still represents every integer."""

DEQUANTIZATION_STREAM = 1
"""Random stream id (mixed with the seed) of the dequantization noise."""


@dataclass(frozen=True)
class ColumnQuantization:
    """How one column is dequantized and why.

    Attributes:
        column: Column index.
        name: Column name.
        quantum: Width of the uniform noise, in raw data units.
        reason: Human-readable reason (integer-valued or heavily tied).
        most_frequent_value: The most frequent raw value.
        most_frequent_fraction: Fraction of rows that have that value.
        num_unique: Number of distinct raw values.
    """

    column: int
    name: str
    quantum: float
    reason: str
    most_frequent_value: float
    most_frequent_fraction: float
    num_unique: int

    def to_manifest(self) -> dict[str, Any]:
        """Return the JSON-serializable record stored in the manifest."""
        return {
            "column": self.column,
            "name": self.name,
            "quantum": self.quantum,
            "noise": "uniform(-quantum/2, +quantum/2)",
            "reason": self.reason,
            "most_frequent_value": self.most_frequent_value,
            "most_frequent_fraction": self.most_frequent_fraction,
            "num_unique": self.num_unique,
        }


def estimate_quantum(column: np.ndarray) -> float:
    """Estimate the spacing of the grid that a column's values lie on.

    The quantum is the greatest common divisor of the gaps between distinct
    values after scaling by the smallest power of ten (up to
    ``MAX_GRID_DECIMALS`` decimals) that makes every value an integer, so
    integer data gets 1 and prices in cents get 0.01. A column on no such grid
    gets its smallest gap between distinct values.

    Args:
        column: `(rows,)` finite float64 with at least two distinct values.

    Returns:
        The quantum, positive, in the column's units.

    Raises:
        ValueError: if the column has fewer than two distinct values.
    """
    unique = np.unique(column)
    if unique.size < 2:
        raise ValueError("a column needs at least two distinct values for a quantum")
    for decimals in range(MAX_GRID_DECIMALS + 1):
        scale = 10.0**decimals
        scaled = unique * scale
        if np.max(np.abs(scaled)) >= MAX_EXACT_INTEGER:
            break
        rounded = np.round(scaled)
        tolerance = GRID_TOLERANCE * np.maximum(1.0, np.abs(scaled))
        if np.all(np.abs(scaled - rounded) <= tolerance):
            gaps = np.diff(rounded).astype(np.int64)
            divisor = int(np.gcd.reduce(gaps))
            if divisor > 0:
                return divisor / scale
    return float(np.min(np.diff(unique)))


def plan_dequantization(
    values: np.ndarray,
    feature_names: Sequence[str],
    tie_fraction: float = DEFAULT_TIE_FRACTION,
) -> list[ColumnQuantization]:
    """Choose the columns to dequantize and their quantum.

    A column is dequantized when every value is an integer, or when its most
    frequent value covers more than ``tie_fraction`` of the rows.

    Args:
        values: `(rows, features)` finite float64 without constant columns.
        feature_names: One name per column.
        tie_fraction: Threshold on the fraction of rows sharing one value.

    Returns:
        One entry per dequantized column, in column order.
    """
    plan = []
    num_rows = values.shape[0]
    for index, name in enumerate(feature_names):
        column = values[:, index]
        unique, counts = np.unique(column, return_counts=True)
        top = int(np.argmax(counts))
        top_fraction = float(counts[top]) / num_rows
        integer_valued = bool(np.all(column == np.round(column)))
        if integer_valued:
            reason = "every value is an integer"
        elif top_fraction > tie_fraction:
            reason = (
                f"the most frequent value {unique[top]:g} covers "
                f"{100.0 * top_fraction:.1f}% of rows "
                f"(threshold {100.0 * tie_fraction:g}%)"
            )
        else:
            continue
        plan.append(
            ColumnQuantization(
                column=index,
                name=name,
                quantum=estimate_quantum(column),
                reason=reason,
                most_frequent_value=float(unique[top]),
                most_frequent_fraction=top_fraction,
                num_unique=int(unique.size),
            )
        )
    return plan


def apply_dequantization(
    values: np.ndarray, plan: Sequence[ColumnQuantization], seed: int
) -> np.ndarray:
    """Add uniform noise of width ``quantum`` around each value of planned columns.

    The noise is centred, U(-q/2, q/2), so a raw value sits at the centre of
    its cell and a client sending raw rows evaluates the density there. The
    noise depends only on ``seed`` and the shape of ``values``.

    Args:
        values: `(rows, features)` float64.
        plan: Columns to dequantize, from :func:`plan_dequantization`.
        seed: Seed of the noise.

    Returns:
        A new `(rows, features)` float64 array; other columns are unchanged.
    """
    result = np.array(values, dtype=np.float64, copy=True)
    if not plan:
        return result
    rng = np.random.default_rng([seed, DEQUANTIZATION_STREAM])
    noise = rng.uniform(-0.5, 0.5, size=(values.shape[0], len(plan)))
    for noise_index, entry in enumerate(plan):
        if not math.isfinite(entry.quantum) or entry.quantum <= 0.0:
            raise ValueError(
                f"quantum of column {entry.name!r} must be positive, "
                f"got {entry.quantum}"
            )
        result[:, entry.column] += entry.quantum * noise[:, noise_index]
    return result
