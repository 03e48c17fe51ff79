"""Gaussianity diagnostics of a flow on a batch, as plain JSON-ready data."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from scipy import stats

from flow._model import GaussianizationFlow

# Rows on which the log-determinant is checked against the autodiff Jacobian;
# jacfwd costs d forward passes per row.
_LOG_DET_CHECK_ROWS = 64


def mardia_test(z: np.ndarray) -> dict[str, float]:
    """Return Mardia's multivariate skewness and kurtosis tests against N(0, I).

    Args:
        z: `(batch, features)` with batch > features.

    References:
        Mardia (1970), "Measures of multivariate skewness and kurtosis with
        applications".
    """
    n, d = z.shape
    centered = z - z.mean(axis=0)
    covariance = centered.T @ centered / n
    precision = np.linalg.pinv(covariance)
    gram = centered @ precision @ centered.T if n <= 4096 else None
    if gram is not None:
        skewness = float(np.sum(gram**3) / n**2)
        squared_norms = np.diag(gram)
    else:
        # For large n the n x n Gram matrix is too big: estimate b1 on a
        # 4096-row subsample, compute b2 exactly.
        sub = centered[:4096]
        sub_gram = sub @ precision @ sub.T
        skewness = float(np.sum(sub_gram**3) / sub.shape[0] ** 2)
        squared_norms = np.einsum("ij,jk,ik->i", centered, precision, centered)
    kurtosis = float(np.mean(squared_norms**2))
    skew_statistic = n * skewness / 6.0
    skew_dof = d * (d + 1) * (d + 2) / 6.0
    kurtosis_statistic = (kurtosis - d * (d + 2)) / np.sqrt(8.0 * d * (d + 2) / n)
    return {
        "skewness": skewness,
        "kurtosis": kurtosis,
        "skew_statistic": float(skew_statistic),
        "skew_p_value": float(stats.chi2.sf(skew_statistic, skew_dof)),
        "kurtosis_statistic": float(kurtosis_statistic),
        "kurtosis_p_value": float(2.0 * stats.norm.sf(abs(kurtosis_statistic))),
    }


def gaussianity_statistics(z: np.ndarray) -> dict[str, Any]:
    """Return per-feature moments, KS statistics and the covariance of z."""
    z = np.asarray(z, dtype=np.float64)
    per_feature = {
        "mean": z.mean(axis=0).tolist(),
        "variance": z.var(axis=0).tolist(),
        "skew": stats.skew(z, axis=0).tolist(),
        "excess_kurtosis": stats.kurtosis(z, axis=0, fisher=True).tolist(),
        "ks_statistic": [
            float(stats.kstest(column, "norm").statistic) for column in z.T
        ],
    }
    return {
        "per_feature": per_feature,
        "covariance": np.cov(z, rowvar=False).reshape(z.shape[1], -1).tolist(),
    }


def log_det_check(flow: GaussianizationFlow, x: np.ndarray) -> float:
    """Return max |log_det - log|det jacfwd(T)(x)|| over the rows of x."""
    params = flow.params()

    def transform_row(row: jax.Array) -> jax.Array:
        return flow.forward_pure(params, row[None, :])[0][0]

    jacobians = jax.jit(jax.vmap(jax.jacfwd(transform_row)))(x)
    _, log_abs_det = np.linalg.slogdet(np.asarray(jacobians, dtype=np.float64))
    _, log_det = flow.forward_and_log_det(x)
    return float(np.max(np.abs(np.asarray(log_det, dtype=np.float64) - log_abs_det)))


def compute_diagnostics(flow: GaussianizationFlow, x: Any) -> dict[str, Any]:
    """Measure how well ``flow`` Gaussianizes x, `(batch, features)`.

    Returns:
        A JSON-serializable dict: ``num_rows``, ``mean_nll`` (nats per row),
        ``per_feature`` (mean, variance, skew, excess kurtosis, KS statistic
        against N(0, 1) of each feature of T(x)), ``covariance`` of T(x),
        ``mardia`` (multivariate skewness and kurtosis tests),
        ``round_trip_max_error`` (max |x - invert(T(x))|) and
        ``log_det_check_max_error`` (log-det against the autodiff Jacobian on
        up to 64 rows).
    """
    x = np.asarray(flow._check(x, "x"))
    if x.shape[0] < 2:
        raise ValueError(f"diagnostics need at least 2 rows; received shape {x.shape}")
    z = np.asarray(flow(x))
    log_prob = np.asarray(flow.log_prob(x), dtype=np.float64)
    round_trip = np.asarray(flow.invert(z)) - x
    result: dict[str, Any] = {
        "num_rows": int(x.shape[0]),
        "dtype": flow.feature_dtype,
        "mean_nll": float(-log_prob.mean()),
        **gaussianity_statistics(z),
        "round_trip_max_error": float(np.max(np.abs(round_trip))),
        "log_det_check_max_error": log_det_check(flow, x[:_LOG_DET_CHECK_ROWS]),
    }
    if x.shape[0] > x.shape[1] + 1:
        result["mardia"] = mardia_test(z.astype(np.float64))
    return result
