"""Figures of a real training run on moons with the reference settings."""

from __future__ import annotations

import numpy as np
import pytest

import flow

pytestmark = pytest.mark.slow

# Thresholds on T(X_train), about two standard errors of each statistic at
# n = 3600 rows of an exactly Gaussian sample.
MAX_ABS_SKEW = 0.10
MAX_ABS_EXCESS_KURTOSIS = 0.20
VARIANCE_RANGE = (0.93, 1.07)
MAX_KS_STATISTIC = 0.03

MAX_HELD_OUT_NLL = 1.55
MAX_VALIDATION_GAP = 0.05
FEATURES = [pytest.param(0, id="feature0"), pytest.param(1, id="feature1")]


def test_held_out_nll(trained_moons: tuple, moons: tuple) -> None:
    model, _ = trained_moons
    _, held_out = moons
    nll = -float(np.mean(np.asarray(model.log_prob(held_out), dtype=np.float64)))
    assert nll <= MAX_HELD_OUT_NLL


def test_validation_close_to_training(trained_moons: tuple) -> None:
    _, history = trained_moons
    best = history["best_epoch"] - 1
    gap = abs(history["val_loss"][best] - history["loss"][best])
    assert gap <= MAX_VALIDATION_GAP


def test_training_history_shape(trained_moons: tuple) -> None:
    _, history = trained_moons
    assert len(history["loss"]) == history["epochs_run"]
    assert len(history["val_loss"]) == history["epochs_run"]
    assert 1 <= history["best_epoch"] <= history["epochs_run"] <= 120
    assert history["seed"] == 0


@pytest.fixture(scope="module")
def train_statistics(trained_moons: tuple, moons: tuple) -> dict:
    model, _ = trained_moons
    train, _ = moons
    return flow.compute_diagnostics(model, train)["per_feature"]


@pytest.mark.parametrize("feature", FEATURES)
def test_marginal_skew(train_statistics: dict, feature: int) -> None:
    assert abs(train_statistics["skew"][feature]) <= MAX_ABS_SKEW


@pytest.mark.parametrize("feature", FEATURES)
def test_marginal_kurtosis(train_statistics: dict, feature: int) -> None:
    assert abs(train_statistics["excess_kurtosis"][feature]) <= MAX_ABS_EXCESS_KURTOSIS


@pytest.mark.parametrize("feature", FEATURES)
def test_marginal_variance(train_statistics: dict, feature: int) -> None:
    low, high = VARIANCE_RANGE
    assert low <= train_statistics["variance"][feature] <= high


@pytest.mark.parametrize("feature", FEATURES)
def test_marginal_ks(train_statistics: dict, feature: int) -> None:
    assert train_statistics["ks_statistic"][feature] <= MAX_KS_STATISTIC


def test_same_seed_same_weights(moons: tuple) -> None:
    train, _ = moons
    settings = {"num_blocks": 2, "num_components": 4, "epochs": 3, "seed": 7}
    first, _ = flow.fit_and_freeze(train[:800], **settings)
    second, _ = flow.fit_and_freeze(train[:800], **settings)
    assert flow.weights_digest(first) == flow.weights_digest(second)


def test_different_seed_different_weights(moons: tuple) -> None:
    train, _ = moons
    settings = {"num_blocks": 2, "num_components": 4, "epochs": 3}
    first, _ = flow.fit_and_freeze(train[:800], seed=1, **settings)
    second, _ = flow.fit_and_freeze(train[:800], seed=2, **settings)
    assert flow.weights_digest(first) != flow.weights_digest(second)
