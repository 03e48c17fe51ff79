"""Public API, input validation, batch sizes, freezing and save/load."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

import flow

PUBLIC_NAMES = [
    "Bijector",
    "CompiledFlow",
    "FixedOrtho",
    "GaussianizationFlow",
    "Householder",
    "MappingLimitError",
    "MixtureCDFGaussianization",
    "Standardize",
    "compute_diagnostics",
    "enable_float64",
    "fit_and_freeze",
    "freeze_flow",
    "is_fully_frozen",
    "load_flow",
    "mardia_test",
    "pca_rotation",
    "standard_normal_log_prob",
    "weights_digest",
]


def test_public_names_pinned() -> None:
    assert flow.__all__ == PUBLIC_NAMES
    for name in PUBLIC_NAMES:
        assert getattr(flow, name) is not None


@pytest.fixture(scope="module")
def frozen_flow(moons: tuple) -> flow.GaussianizationFlow:
    train, _ = moons
    model, _ = flow.fit_and_freeze(
        train[:1000], num_blocks=2, num_components=4, epochs=2, seed=3
    )
    return model


BAD_INPUTS = [
    pytest.param(np.zeros(2), r"rank-1 shape \(2,\).*x\[None, :\]", id="rank-1"),
    pytest.param(np.zeros((2, 2, 2)), r"rank-3 shape \(2, 2, 2\)", id="rank-3"),
    pytest.param(
        np.zeros((4, 3)),
        r"must have 2 features per row; received shape \(4, 3\)",
        id="wrong-d",
    ),
    pytest.param(
        np.zeros((4, 0)), r"empty feature axis, shape \(4, 0\)", id="empty-features"
    ),
    pytest.param(
        np.array([[0.0, 1.0], [2.0, np.nan]]),
        r"non-finite value nan at row 1, column 1",
        id="nan",
    ),
    pytest.param(
        np.array([[np.inf, 1.0]]), r"non-finite value inf at row 0, column 0", id="inf"
    ),
    pytest.param([["a", "b"]], r"must be a numeric array", id="strings"),
]


@pytest.mark.parametrize(("value", "message"), BAD_INPUTS)
@pytest.mark.parametrize("method", ["__call__", "log_prob", "forward_and_log_det"])
def test_bad_input_forward(
    frozen_flow: flow.GaussianizationFlow, value: object, message: str, method: str
) -> None:
    with pytest.raises(ValueError, match=message):
        getattr(frozen_flow, method)(value)


@pytest.mark.parametrize(("value", "message"), BAD_INPUTS)
def test_bad_input_invert(
    frozen_flow: flow.GaussianizationFlow, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("x\\[None", "z\\[None")):
        frozen_flow.invert(value)


BAD_HYPERPARAMETERS = [
    pytest.param({"epochs": 0}, "epochs must be >= 1; received 0", id="epochs"),
    pytest.param({"batch_size": 0}, "batch_size must be >= 1; received 0", id="batch"),
    pytest.param({"lr": -1.0}, r"lr must be > 0; received -1.0", id="lr"),
    pytest.param(
        {"validation_split": 1.0},
        r"validation_split must be in \[0, 1\); received 1.0",
        id="split",
    ),
    pytest.param({"patience": -1}, "patience must be >= 0; received -1", id="patience"),
    pytest.param({"dtype": "float16"}, "dtype must be one of", id="dtype"),
    pytest.param(
        {"num_blocks": -1},
        "num_blocks must be an integer >= 0; received -1",
        id="blocks",
    ),
    pytest.param(
        {"num_components": 0},
        "num_components must be an integer >= 1; received 0",
        id="components",
    ),
    pytest.param(
        {"input_noise": -0.1},
        r"input_noise must be finite and >= 0; received -0.1",
        id="noise",
    ),
    pytest.param(
        {"ema_decay": 1.0},
        r"ema_decay must be in \[0, 1\); received 1.0",
        id="ema",
    ),
]


@pytest.mark.parametrize(("settings", "message"), BAD_HYPERPARAMETERS)
def test_bad_hyperparameters(moons: tuple, settings: dict, message: str) -> None:
    train, _ = moons
    with pytest.raises(ValueError, match=message):
        flow.fit_and_freeze(train[:100], **settings)


def test_too_few_rows() -> None:
    with pytest.raises(
        ValueError, match="data has 5 rows; fit_and_freeze needs at least 10"
    ):
        flow.fit_and_freeze(np.zeros((5, 2)))


def test_non_finite_training_data() -> None:
    data = np.ones((50, 2))
    data[7, 1] = np.nan
    with pytest.raises(
        ValueError, match="data contains a non-finite value nan at row 7, column 1"
    ):
        flow.fit_and_freeze(data)


BATCH_SIZES = [
    pytest.param(0, id="b0"),
    pytest.param(1, id="b1"),
    pytest.param(65537, id="b65537"),
]


@pytest.mark.slow
@pytest.mark.parametrize("rows", BATCH_SIZES)
def test_batch_sizes(frozen_flow: flow.GaussianizationFlow, rows: int) -> None:
    x = np.random.default_rng(rows).standard_normal((rows, 2)).astype(np.float32)
    z = np.asarray(frozen_flow(x))
    assert z.shape == (rows, 2)
    assert np.asarray(frozen_flow.invert(z)).shape == (rows, 2)
    assert np.asarray(frozen_flow.log_prob(x)).shape == (rows,)
    assert bool(np.all(np.isfinite(z)))


DIMENSIONS = [
    pytest.param(1, id="d1"),
    pytest.param(2, id="d2"),
    pytest.param(16, id="d16"),
]


@pytest.mark.slow
@pytest.mark.parametrize("dim", DIMENSIONS)
def test_dimensions_train(dim: int) -> None:
    rng = np.random.default_rng(dim)
    mixing = rng.standard_normal((dim, dim))
    data = np.tanh(rng.standard_normal((1500, dim))) @ mixing
    model, history = flow.fit_and_freeze(
        data, num_blocks=2, num_components=4, epochs=8, seed=0
    )
    assert history["val_loss"][-1] < history["val_loss"][0] or history["best_epoch"] > 1
    z = np.asarray(model(data.astype(np.float32)))
    assert z.shape == (1500, dim)
    back = np.asarray(model.invert(z))
    assert np.max(np.abs(back - data)) <= 1e-3 * max(1.0, float(np.abs(data).max()))


@pytest.mark.slow
def test_freeze_survives_fit(
    frozen_flow: flow.GaussianizationFlow, moons: tuple
) -> None:
    train, _ = moons
    assert flow.is_fully_frozen(frozen_flow)
    before = [np.array(w) for w in frozen_flow.get_weights()]
    digest = flow.weights_digest(frozen_flow)
    frozen_flow.compile(optimizer=keras.optimizers.Adam(learning_rate=0.1), loss="mse")
    wrong_target = (
        np.random.default_rng(0).standard_normal(train.shape).astype(np.float32)
    )
    frozen_flow.fit(train, wrong_target, epochs=1, batch_size=256, verbose=0)
    after = frozen_flow.get_weights()
    assert flow.weights_digest(frozen_flow) == digest
    for old, new in zip(before, after, strict=True):
        assert old.tobytes() == np.asarray(new).tobytes()


@pytest.mark.slow
def test_save_load_bit_identical(
    frozen_flow: flow.GaussianizationFlow, moons: tuple, tmp_path: Path
) -> None:
    _, held_out = moons
    path = tmp_path / "probe.keras"
    frozen_flow.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, flow.GaussianizationFlow)
    assert flow.is_fully_frozen(loaded)
    assert flow.weights_digest(loaded) == flow.weights_digest(frozen_flow)
    assert np.array_equal(
        np.asarray(loaded(held_out)), np.asarray(frozen_flow(held_out))
    )
    assert np.array_equal(
        np.asarray(loaded.log_prob(held_out)),
        np.asarray(frozen_flow.log_prob(held_out)),
    )
    z = np.asarray(frozen_flow(held_out))
    assert np.array_equal(
        np.asarray(loaded.invert(z)), np.asarray(frozen_flow.invert(z))
    )
    assert [p.name for p in tmp_path.iterdir()] == ["probe.keras"]


def test_failed_save_leaves_no_file(tmp_path: Path) -> None:
    model = flow.GaussianizationFlow(2, num_blocks=1, num_components=2)
    with pytest.raises(ValueError, match=r"filepath must end in \.keras"):
        model.save(tmp_path / "probe.h5")
    missing_dir = tmp_path / "missing" / "probe.keras"
    with pytest.raises(OSError, match="missing"):
        model.save(missing_dir)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_overwrite(tmp_path: Path) -> None:
    model = flow.GaussianizationFlow(2, num_blocks=1, num_components=2)
    path = tmp_path / "probe.keras"
    model.save(path)
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        model.save(path, overwrite=False)


def test_float64_flow_dtype() -> None:
    model = flow.GaussianizationFlow(2, num_blocks=1, dtype="float64")
    z = np.asarray(model(np.zeros((3, 2))))
    assert model.feature_dtype == "float64"
    assert z.dtype == np.float64


@pytest.mark.slow
def test_sample_shape_and_seed(frozen_flow: flow.GaussianizationFlow) -> None:
    first = np.asarray(frozen_flow.sample(500, seed=4))
    again = np.asarray(frozen_flow.sample(500, seed=4))
    other = np.asarray(frozen_flow.sample(500, seed=5))
    assert first.shape == (500, 2)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert bool(np.all(np.isfinite(first)))


def test_forward_with_intermediates(
    frozen_flow: flow.GaussianizationFlow, moons: tuple
) -> None:
    _, held_out = moons
    outputs = frozen_flow.forward_with_intermediates(held_out[:10])
    assert len(outputs) == len(frozen_flow.bijectors) + 1
    assert np.array_equal(np.asarray(outputs[0]), held_out[:10])
    assert np.allclose(
        np.asarray(outputs[-1]), np.asarray(frozen_flow(held_out[:10])), atol=1e-6
    )


def test_input_noise_reproducible(moons: tuple) -> None:
    train, _ = moons
    settings = {"num_blocks": 1, "num_components": 3, "epochs": 2, "seed": 5}
    first, _ = flow.fit_and_freeze(train[:800], input_noise=0.05, **settings)
    second, _ = flow.fit_and_freeze(train[:800], input_noise=0.05, **settings)
    clean, _ = flow.fit_and_freeze(train[:800], **settings)
    assert flow.weights_digest(first) == flow.weights_digest(second)
    assert flow.weights_digest(first) != flow.weights_digest(clean)
