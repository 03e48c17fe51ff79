"""Scale-aware training parameterization of mixture locations.

Adam moves every parameter by roughly the learning rate per step, whatever
the scale of its gradient. That suits a component about a unit wide but not
one fitted to an atom. After standardization, 92 % of the rows of Adult's
``capital_gain`` lie in a dequantization cell 1.4e-4 wide. A first step of
3e-3 knocks the component off that cell, and the held-out NLL of a one-block
flow rose from 23.6 to 38 nats in one epoch.

During training each location is therefore written as
``loc = loc0 + c * delta`` with ``delta`` the optimized variable, starting at
0, and ``c = min(LOCATION_STEP_FACTOR * s0, 1)`` from the component's initial
scale ``s0``. A step then moves a narrow component by a fraction of its own
width, while components wider than ``1 / LOCATION_STEP_FACTOR`` train exactly
as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import keras

from flow._mixture_cdf import MixtureCDFGaussianization
from flow._model import GaussianizationFlow

Array = jax.Array

LOCATION_STEP_FACTOR = 10.0


class LocationPreconditioner:
    """Map between optimizer variables and model weights of a flow.

    Args:
        flow: the flow, already initialized from data.
        trainable: the variables being trained, in optimizer order.
    """

    def __init__(
        self, flow: GaussianizationFlow, trainable: Sequence[keras.Variable]
    ) -> None:
        params = flow.params()
        position = {variable.path: i for i, variable in enumerate(trainable)}
        self._anchors: dict[int, tuple[Array, Array]] = {}
        for layer in flow.bijectors:
            if not isinstance(layer, MixtureCDFGaussianization):
                continue
            index = position.get(layer.loc.path)
            if index is None:
                continue
            _, log_scale, _ = layer._unpack(params)
            step = jnp.minimum(LOCATION_STEP_FACTOR * jnp.exp(log_scale), 1.0)
            self._anchors[index] = (
                params[layer.loc.path],
                step.astype(log_scale.dtype),
            )

    def initial_values(self, values: Sequence[Array]) -> list[Array]:
        """Return the optimizer's starting point for the model weights ``values``."""
        return [
            jnp.zeros_like(value) if i in self._anchors else value
            for i, value in enumerate(values)
        ]

    def to_model(self, values: Sequence[Array]) -> list[Array]:
        """Return the model weights that the optimizer variables ``values`` encode."""
        result = []
        for i, value in enumerate(values):
            if i in self._anchors:
                anchor, step = self._anchors[i]
                value = anchor + step * value
            result.append(value)
        return result
