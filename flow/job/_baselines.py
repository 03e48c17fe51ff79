"""Held-out likelihood baselines: full-covariance Gaussian and Gaussian mixture."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

__all__ = [
    "GMM_MAX_ITERATIONS",
    "GMM_NUM_COMPONENTS",
    "fit_baselines",
    "gaussian_mean_nll",
    "gmm_mean_nll",
]

logger = logging.getLogger(__name__)

GMM_NUM_COMPONENTS = 10
"""Components of the Gaussian-mixture baseline."""

GMM_MAX_ITERATIONS = 500
"""EM iterations of the Gaussian-mixture baseline."""

GMM_STREAM = 3
"""Random stream id (mixed with the seed) of the mixture's initialisation."""


def gaussian_mean_nll(train: np.ndarray, test: np.ndarray) -> float:
    """Fit a full-covariance Gaussian by maximum likelihood and score held-out rows.

    Args:
        train: `(rows, features)` float64 used to fit mean and covariance.
        test: `(rows, features)` float64 to score.

    Returns:
        Mean negative log-density of ``test`` in nats, in the data's own units.
    """
    from scipy import stats

    mean = train.mean(axis=0)
    covariance = np.atleast_2d(np.cov(train, rowvar=False, bias=True))
    distribution = stats.multivariate_normal(mean=mean, cov=covariance)
    log_density = np.atleast_1d(distribution.logpdf(test))
    return float(-np.mean(log_density))


def gmm_mean_nll(
    train: np.ndarray,
    test: np.ndarray,
    seed: int,
    num_components: int = GMM_NUM_COMPONENTS,
) -> tuple[float, dict[str, Any]]:
    """Fit a full-covariance Gaussian mixture with EM and score held-out rows.

    Args:
        train: `(rows, features)` float64 used to fit the mixture.
        test: `(rows, features)` float64 to score.
        seed: Seed of the k-means initialisation.
        num_components: Mixture components.

    Returns:
        Mean negative log-density of ``test`` in nats, and fit details
        (iterations, whether EM converged).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    random_state = int(np.random.default_rng([seed, GMM_STREAM]).integers(2**31))
    mixture = GaussianMixture(
        n_components=num_components,
        covariance_type="full",
        max_iter=GMM_MAX_ITERATIONS,
        random_state=random_state,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        mixture.fit(train)
    for warning in caught:
        logger.warning("Gaussian mixture baseline: %s", warning.message)
    details = {
        "num_components": num_components,
        "covariance_type": "full",
        "converged": bool(mixture.converged_),
        "iterations": int(mixture.n_iter_),
    }
    return float(-mixture.score(test)), details


def fit_baselines(train: np.ndarray, test: np.ndarray, seed: int) -> dict[str, Any]:
    """Fit both baselines on ``train`` and return their held-out mean NLL.

    Args:
        train: `(rows, features)` float64, the rows the flow was trained on.
        test: `(rows, features)` float64 held-out rows, same preprocessing.
        seed: Seed of the mixture initialisation.

    Returns:
        JSON-serializable ``{"gaussian": {...}, "gmm": {...}}`` with ``mean_nll``.
    """
    gmm_nll, gmm_details = gmm_mean_nll(train, test, seed)
    return {
        "gaussian": {
            "mean_nll": gaussian_mean_nll(train, test),
            "covariance_type": "full",
        },
        "gmm": {"mean_nll": gmm_nll, **gmm_details},
    }
