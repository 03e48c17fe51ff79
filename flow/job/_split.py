"""Deterministic train/test split and data fingerprint."""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["DEFAULT_TEST_FRACTION", "fingerprint_array", "split_indices"]

DEFAULT_TEST_FRACTION = 0.2
"""Fraction of rows held out for diagnostics and baselines."""

SPLIT_STREAM = 2
"""Random stream id (mixed with the seed) of the train/test permutation."""


def split_indices(
    num_rows: int, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle row indices with ``seed`` and split off a held-out test set.

    Args:
        num_rows: Number of rows.
        test_fraction: Fraction of rows in the test set, in (0, 1).
        seed: Seed of the permutation.

    Returns:
        ``(train, test)`` index arrays; together they are a permutation of
        ``range(num_rows)``, and each has at least one row.

    Raises:
        ValueError: if the split would leave either part empty.
    """
    num_test = round(num_rows * test_fraction)
    if num_test < 1 or num_test >= num_rows:
        raise ValueError(
            f"a test fraction of {test_fraction} of {num_rows} rows leaves an empty "
            "split; use more rows or a different fraction"
        )
    permutation = np.random.default_rng([seed, SPLIT_STREAM]).permutation(num_rows)
    return permutation[num_test:], permutation[:num_test]


def fingerprint_array(values: np.ndarray) -> str:
    """Return the hex SHA-256 of an array's shape, dtype and C-order bytes.

    The dtype is recorded little-endian so that the fingerprint is the same on
    every platform.
    """
    array = np.ascontiguousarray(values)
    array = array.astype(array.dtype.newbyteorder("<"), copy=False)
    digest = hashlib.sha256()
    digest.update(f"shape={list(array.shape)};dtype={array.dtype.str};".encode())
    digest.update(array.tobytes(order="C"))
    return digest.hexdigest()
