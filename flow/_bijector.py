"""Base class of every invertible layer in a Gaussianization flow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import keras

Array = jax.Array
Params = Mapping[str, Array]


class Bijector(keras.layers.Layer):
    """An invertible map with a tractable log-determinant.

    Subclasses implement the two pure kernels ``_forward(params, x)`` and
    ``_inverse(params, z)``; both receive every weight of the layer by its
    ``variable.path`` in ``params``. The public methods below read the layer's
    current weights and call them, and the flow's jitted and training paths
    call the kernels with explicit parameters, so one implementation serves
    eager calls, ``jax.jit`` and ``jax.grad``.

    Shapes: ``x`` and ``z`` are `(batch, features)`, ``log_det`` is
    `(batch,)` and contains ``log |det dz/dx|`` for the forward direction and
    ``log |det dx/dz|`` for the inverse.
    """

    def params(self) -> dict[str, Array]:
        """Return the current value of every weight, keyed by its path."""
        return {weight.path: weight.value for weight in self.weights}

    def forward_and_log_det(self, x: Array) -> tuple[Array, Array]:
        """Map data-side x to z and return ``(z, log_det)``."""
        return self._forward(self.params(), x)

    def inverse_and_log_det(self, z: Array) -> tuple[Array, Array]:
        """Map z back to x and return ``(x, log_det)``."""
        return self._inverse(self.params(), z)

    def call(self, x: Array) -> Array:
        z, _ = self.forward_and_log_det(x)
        return z

    def compute_output_shape(
        self, input_shape: tuple[int | None, ...]
    ) -> tuple[int | None, ...]:
        return input_shape

    def _forward(self, params: Params, x: Array) -> tuple[Array, Array]:
        raise NotImplementedError(f"{type(self).__name__} does not implement _forward")

    def _inverse(self, params: Params, z: Array) -> tuple[Array, Array]:
        raise NotImplementedError(f"{type(self).__name__} does not implement _inverse")

    def initialize_from_data(self, x: Array, seed: int) -> None:
        """Set data-dependent weights from x, `(batch, features)`, as it
        arrives at this layer. The default keeps the constructor's values."""
        del x, seed

    def get_config(self) -> dict[str, Any]:
        return super().get_config()
