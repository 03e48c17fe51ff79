"""Content digest of a flow's weights, the identity a client pins."""

from __future__ import annotations

import hashlib

import keras
import numpy as np


def weights_digest(model: keras.Model) -> str:
    """Return ``"sha256:<hex>"`` over every weight's path, dtype, shape and bytes.

    The path is taken below the model, so two flows with equal weights have
    equal digests whatever their model names.

    Weights are hashed in ``model.weights`` order as little-endian C-order
    bytes, so the digest is the same on every machine for the same values and
    changes if any bit of any weight changes.
    """
    digest = hashlib.sha256()
    prefix = f"{model.name}/"
    for weight in model.weights:
        # Keras numbers model names per process ("gaussianization_flow_1").
        path = weight.path.removeprefix(prefix)
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(weight.value))
        value = value.astype(value.dtype.newbyteorder("<"), copy=False)
        header = f"{path}|{value.dtype.str}|{value.shape}\n"
        digest.update(header.encode())
        digest.update(value.tobytes())
    return f"sha256:{digest.hexdigest()}"
