"""Fixed per-feature standardisation, the flow's preprocessing layer."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np

from flow._bijector import Bijector, Params

Array = jax.Array


@keras.saving.register_keras_serializable(package="gaussprobe")
class Standardize(Bijector):
    """Non-trainable affine map z = (x - mean) / scale.

    .. math:: \\log |\\det dz/dx| = -\\sum_j \\log scale_j

    Keeping it inside the model makes the saved flow map raw data, so
    ``log_prob`` is a density in raw-data units.
    """

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        dim = int(input_shape[-1])  # type: ignore[arg-type]
        self.mean = self.add_weight(
            name="mean", shape=(dim,), initializer="zeros", trainable=False
        )
        self.scale = self.add_weight(
            name="scale", shape=(dim,), initializer="ones", trainable=False
        )

    def _forward(self, params: Params, x: Array) -> tuple[Array, Array]:
        scale = params[self.scale.path]
        z = (x - params[self.mean.path]) / scale
        log_det = jnp.broadcast_to(-jnp.sum(jnp.log(scale)), x.shape[:-1])
        return z, log_det

    def _inverse(self, params: Params, z: Array) -> tuple[Array, Array]:
        scale = params[self.scale.path]
        x = z * scale + params[self.mean.path]
        log_det = jnp.broadcast_to(jnp.sum(jnp.log(scale)), z.shape[:-1])
        return x, log_det

    def initialize_from_data(self, x: Array, seed: int) -> None:
        del seed
        data = np.asarray(x, dtype=np.float64)
        scale = data.std(axis=0)
        constant = np.flatnonzero(~(scale > 0))
        if constant.size:
            raise ValueError(
                f"feature {int(constant[0])} is constant (standard deviation 0); "
                "drop it before training, a density cannot be fitted to it"
            )
        self.mean.assign(data.mean(axis=0).astype(self.mean.dtype))
        self.scale.assign(scale.astype(self.scale.dtype))

    def get_config(self) -> dict[str, Any]:
        return super().get_config()
