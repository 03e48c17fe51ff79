"""Keras layer for marginal Gaussianization by a mixture CDF."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np

from flow._bijector import Bijector, Params
from flow._mixture_init import init_mixture
from flow._mixture_math import mixture_forward, mixture_inverse

Array = jax.Array

# Maximum safeguarded Newton steps of the inverse. From the grid-bracket start
# the solver reaches float32 round-off in 3 to 5 steps and float64 round-off
# in 5 to 8 on random mixtures, and each element stops once it has converged.
# The extra steps cover bisection fallbacks and only run while some element
# of the batch still needs them.
DEFAULT_INVERSE_ITERATIONS = {"float32": 8, "float64": 12}


@keras.saving.register_keras_serializable(package="gaussprobe")
class MixtureCDFGaussianization(Bijector):
    """Elementwise z = Phi^-1(F(x)) with F a Gaussian-mixture CDF per feature.

    .. math::

        F_j(x) = \\sum_k w_{jk} \\Phi\\left(\\frac{x - loc_{jk}}{s_{jk}}\\right),
        \\qquad \\log \\frac{dz_j}{dx_j} = \\log f_j(x) - \\log \\phi(z_j)

    Values and log-derivatives are computed from the smaller tail in log
    space (see ``flow._mixture_math``), so z is finite and strictly increasing
    and dz/dx > 0 for every finite x, with no clipping of F.

    Args:
        num_components: K, mixture components per feature.
        inverse_iterations: safeguarded Newton steps of the inverse; the
            default depends on the dtype.
        min_scale: lower bound of every component's scale, in the units of
            the data reaching the layer. The effective scale is
            ``min_scale + exp(log_scale)``; a positive bound keeps components
            from collapsing onto a few training points (a regulariser).

    References:
        Meng, Song, Song & Ermon (2020), "Gaussianization Flows".
        Chen & Gopinath (2000), "Gaussianization".
    """

    def __init__(
        self,
        num_components: int = 10,
        inverse_iterations: int | None = None,
        min_scale: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if num_components < 1:
            raise ValueError(f"num_components must be >= 1; received {num_components}")
        if inverse_iterations is not None and inverse_iterations < 1:
            raise ValueError(
                f"inverse_iterations must be >= 1; received {inverse_iterations}"
            )
        if not min_scale >= 0:
            raise ValueError(f"min_scale must be >= 0; received {min_scale}")
        self.num_components = num_components
        self.inverse_iterations = inverse_iterations
        self.min_scale = float(min_scale)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        shape = (int(input_shape[-1]), self.num_components)  # type: ignore[arg-type]
        spread = np.linspace(-2.0, 2.0, self.num_components)
        self.loc = self.add_weight(
            name="loc",
            shape=shape,
            initializer=keras.initializers.Constant(np.broadcast_to(spread, shape)),
        )
        self.log_scale = self.add_weight(
            name="log_scale", shape=shape, initializer="zeros"
        )
        self.logits = self.add_weight(name="logits", shape=shape, initializer="zeros")

    def _unpack(self, params: Params) -> tuple[Array, Array, Array]:
        log_scale = params[self.log_scale.path]
        if self.min_scale > 0:
            # log(min_scale + exp(log_scale)), smooth in log_scale.
            bound = jnp.log(jnp.asarray(self.min_scale, log_scale.dtype))
            log_scale = jnp.logaddexp(log_scale, bound)
        return params[self.loc.path], log_scale, params[self.logits.path]

    def _forward(self, params: Params, x: Array) -> tuple[Array, Array]:
        z, log_dzdx = mixture_forward(x, *self._unpack(params))
        return z, jnp.sum(log_dzdx, axis=-1)

    def _inverse(self, params: Params, z: Array) -> tuple[Array, Array]:
        iterations = self.inverse_iterations or DEFAULT_INVERSE_ITERATIONS.get(
            str(jnp.dtype(z.dtype)), 12
        )
        x = mixture_inverse(z, *self._unpack(params), iterations)
        _, log_dzdx = mixture_forward(x, *self._unpack(params))
        return x, -jnp.sum(log_dzdx, axis=-1)

    def initialize_from_data(self, x: Array, seed: int) -> None:
        del seed
        loc, log_scale, logits = init_mixture(np.asarray(x), self.num_components)
        if self.min_scale > 0:
            # Store the excess over the bound so the effective scale starts
            # at the fitted one, or at twice the bound if that is larger.
            scale = np.maximum(np.exp(log_scale), 2.0 * self.min_scale)
            log_scale = np.log(scale - self.min_scale)
        self.loc.assign(loc.astype(self.loc.dtype))
        self.log_scale.assign(log_scale.astype(self.log_scale.dtype))
        self.logits.assign(logits.astype(self.logits.dtype))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_components": self.num_components,
            "inverse_iterations": self.inverse_iterations,
            "min_scale": self.min_scale,
        }
