"""Content digest of a flow's weights, the identity a client pins."""

from __future__ import annotations

import hashlib

import keras
import numpy as np


def weights_digest(model: keras.Model) -> str:
    """Return ``"sha256:<hex>"`` over every weight's path, dtype, shape and bytes.

    Weights are hashed in ``model.weights`` order as little-endian C-order
    bytes, so the digest is the same on every machine for the same values and
    changes if any bit of any weight changes.
    """
    digest = hashlib.sha256()
    for weight in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(weight.value))
        value = value.astype(value.dtype.newbyteorder("<"), copy=False)
        header = f"{weight.path}|{value.dtype.str}|{value.shape}\n"
        digest.update(header.encode())
        digest.update(value.tobytes())
    return f"sha256:{digest.hexdigest()}"
