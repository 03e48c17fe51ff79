"""Fixed (non-trainable) orthogonal rotation, typically the PCA basis."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np

from flow._bijector import Bijector, Params

Array = jax.Array


def pca_rotation(x: np.ndarray) -> np.ndarray:
    """Return the principal axes of x, `(batch, features)`, as columns.

    Columns are sorted by decreasing variance and each column's largest
    entry is made positive, so the result is deterministic for given data.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(
            "PCA needs data of shape (batch, features) with batch >= 2; "
            f"received shape {x.shape}"
        )
    covariance = np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    eigenvectors = eigenvectors[:, np.argsort(eigenvalues)[::-1]]
    signs = np.sign(
        eigenvectors[np.abs(eigenvectors).argmax(axis=0), range(x.shape[1])]
    )
    return eigenvectors * np.where(signs == 0, 1.0, signs)


@keras.saving.register_keras_serializable(package="gaussprobe")
class FixedOrtho(Bijector):
    """Non-trainable orthogonal map z = x Q, log-det 0.

    Args:
        fit_pca: when True, ``initialize_from_data`` sets Q to the principal
            axes of the data reaching this layer (see ``pca_rotation``).
            Otherwise Q stays the identity until assigned.
    """

    def __init__(self, fit_pca: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fit_pca = fit_pca

    @classmethod
    def from_pca(cls, x: np.ndarray, **kwargs: Any) -> FixedOrtho:
        """Build a layer whose rotation is the PCA basis of x, `(batch, features)`."""
        layer = cls(fit_pca=True, **kwargs)
        layer.build((None, np.asarray(x).shape[-1]))
        layer.initialize_from_data(x, seed=0)
        return layer

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        dim = int(input_shape[-1])  # type: ignore[arg-type]
        self.matrix = self.add_weight(
            name="matrix", shape=(dim, dim), initializer="identity", trainable=False
        )

    def _forward(self, params: Params, x: Array) -> tuple[Array, Array]:
        return x @ params[self.matrix.path], jnp.zeros(x.shape[:-1], x.dtype)

    def _inverse(self, params: Params, z: Array) -> tuple[Array, Array]:
        return z @ params[self.matrix.path].T, jnp.zeros(z.shape[:-1], z.dtype)

    def initialize_from_data(self, x: Array, seed: int) -> None:
        del seed
        if self.fit_pca:
            self.matrix.assign(pca_rotation(np.asarray(x)).astype(self.matrix.dtype))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "fit_pca": self.fit_pca}
