"""Trainable orthogonal rotation as a product of Householder reflections."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np

from flow._bijector import Bijector, Params
from flow._rotation_init import best_rotation, householder_vectors

Array = jax.Array


def householder_matrix(vectors: Array) -> Array:
    """Return Q = H_1 H_2 ... H_m with H_i = I - 2 v_i v_i^T / |v_i|^2.

    Args:
        vectors: `(num_reflectors, features)`, each row non-zero.

    Returns:
        Orthogonal `(features, features)` matrix.
    """
    dim = vectors.shape[-1]
    q = jnp.eye(dim, dtype=vectors.dtype)
    for v in vectors:
        v = v / jnp.linalg.norm(v)
        q = q - 2.0 * jnp.outer(q @ v, v)
    return q


@keras.saving.register_keras_serializable(package="gaussprobe")
class Householder(Bijector):
    """Orthogonal map z = x Q with Q a product of Householder reflections.

    .. math:: Q = \\prod_i (I - 2 v_i v_i^T / \\lVert v_i \\rVert^2),
        \\qquad \\log |\\det Q| = 0.

    With d reflectors every orthogonal matrix is reachable; in one dimension a
    reflection is the sign flip z = -x.

    Args:
        num_reflectors: number of reflections m; defaults to the number of
            features.
    """

    def __init__(self, num_reflectors: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if num_reflectors is not None and num_reflectors < 1:
            raise ValueError(
                "num_reflectors must be a positive integer or None; received "
                f"{num_reflectors}"
            )
        self.num_reflectors = num_reflectors

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        dim = int(input_shape[-1])  # type: ignore[arg-type]
        count = self.num_reflectors or dim
        self.vectors = self.add_weight(
            name="vectors",
            shape=(count, dim),
            initializer=keras.initializers.RandomNormal(seed=0),
            trainable=True,
        )

    def _matrix(self, params: Params) -> Array:
        return householder_matrix(params[self.vectors.path])

    def _forward(self, params: Params, x: Array) -> tuple[Array, Array]:
        z = x @ self._matrix(params)
        return z, jnp.zeros(x.shape[:-1], x.dtype)

    def _inverse(self, params: Params, z: Array) -> tuple[Array, Array]:
        x = z @ self._matrix(params).T
        return x, jnp.zeros(z.shape[:-1], z.dtype)

    def initialize_from_data(self, x: Array, seed: int) -> None:
        """Start at the least-Gaussian candidate rotation of x.

        See ``flow._rotation_init``. With a reflector count other than the
        number of features, start at seeded random reflections instead.
        """
        count, dim = self.vectors.shape
        if count == dim:
            vectors = householder_vectors(best_rotation(np.asarray(x), seed))
        else:
            vectors = np.random.default_rng(seed).standard_normal((count, dim))
        self.vectors.assign(vectors.astype(self.vectors.dtype))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_reflectors": self.num_reflectors}
