"""Loading a published flow: bit-identical outputs, no code execution."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_moons

from flow.store import ArtifactStore

MOONS_ROWS = 300

# keras 3.15 (keras/src/backend/jax/core.py, convert_to_numpy) calls
# np.array on a variable whose __array__ lacks the copy keyword, and NumPy 2
# emits this DeprecationWarning while saving. It comes from keras, not from
# the store.
KERAS_SAVE_WARNING = (
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


@pytest.mark.slow
@pytest.mark.filterwarnings(KERAS_SAVE_WARNING)
def test_loaded_flow_bit_identical(store: ArtifactStore, tmp_path: Path) -> None:
    import flow

    data, _ = make_moons(MOONS_ROWS, noise=0.05, random_state=0)
    data = data.astype(np.float32)
    trained, _ = flow.fit_and_freeze(data, num_blocks=2, epochs=2, seed=0)
    model_path = tmp_path / "model.keras"
    trained.save(str(model_path))
    digest = flow.weights_digest(trained)
    store.publish(
        "moons", {"model.keras": model_path}, {"dim": 2, "weights_digest": digest}
    )

    loaded = store.open("moons").load_flow()

    assert isinstance(loaded, flow.GaussianizationFlow)
    assert flow.is_fully_frozen(loaded)
    assert flow.weights_digest(loaded) == digest
    np.testing.assert_array_equal(np.asarray(loaded(data)), np.asarray(trained(data)))
    np.testing.assert_array_equal(
        np.asarray(loaded.log_prob(data)), np.asarray(trained.log_prob(data))
    )
    z = np.asarray(trained(data))
    np.testing.assert_array_equal(
        np.asarray(loaded.invert(z)), np.asarray(trained.invert(z))
    )


@pytest.mark.slow
def test_load_flow_rejects_lambda_layer(store: ArtifactStore, tmp_path: Path) -> None:
    # flow selects the JAX backend, so it must be imported before keras.
    importlib.import_module("flow")
    import keras

    inputs = keras.Input(shape=(2,))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    model_path = tmp_path / "model.keras"
    keras.Model(inputs, outputs).save(str(model_path))
    store.publish("lambda", {"model.keras": model_path}, {"dim": 2})

    with pytest.raises(ValueError, match=r"(?i)lambda"):
        store.open("lambda").load_flow()
