"""Loading saved flows without running arbitrary code."""

from __future__ import annotations

import os

import keras

from flow._model import GaussianizationFlow


def load_flow(path: str | os.PathLike[str]) -> GaussianizationFlow:
    """Load a flow saved with ``GaussianizationFlow.save``.

    Uses ``keras.saving.load_model(..., safe_mode=True)``, which rejects
    lambda layers and other pickled code; importing this module registers
    every gaussprobe layer class that the file may name.

    Raises:
        ValueError: the file contains something other than a GaussianizationFlow.
    """
    model = keras.saving.load_model(os.fspath(path), safe_mode=True)
    if not isinstance(model, GaussianizationFlow):
        raise ValueError(
            f"{os.fspath(path)} contains a {type(model).__name__}, not a "
            "GaussianizationFlow"
        )
    return model
