"""The Gaussianization flow model: a stack of rotations and marginal maps."""

from __future__ import annotations

import contextlib
import os
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np
from jax import lax

from flow._bijector import Bijector, Params
from flow._fixed_ortho import FixedOrtho
from flow._householder import Householder
from flow._mixture_cdf import MixtureCDFGaussianization
from flow._standardize import Standardize
from flow._validation import SUPPORTED_DTYPES, check_array, is_traced

Array = jax.Array

_HALF_LOG_2PI = 0.5 * float(np.log(2.0 * np.pi))


def standard_normal_log_prob(z: Array) -> Array:
    """Return the N(0, I) log-density of z, `(batch, features)` -> `(batch,)`."""
    return -0.5 * jnp.sum(z * z, axis=-1) - z.shape[-1] * _HALF_LOG_2PI


@keras.saving.register_keras_serializable(package="gaussprobe")
class GaussianizationFlow(keras.Model):
    """Normalizing flow T that maps data to N(0, I).

    Layers, in the data-to-Gaussian direction: an optional ``Standardize``,
    an optional ``MixtureCDFGaussianization`` of the raw marginals, an
    optional PCA ``FixedOrtho``, then ``num_blocks`` blocks of
    ``(Householder, MixtureCDFGaussianization)``. The density is

    .. math:: \\log p(x) = \\log N(T(x); 0, I) + \\log |\\det J_T(x)|.

    Args:
        dim: number of features d.
        num_blocks: rotation + marginal blocks.
        num_components: mixture components per feature in each block.
        num_reflectors: Householder reflections per rotation (default d).
        use_pca: put a fixed PCA rotation before the first block.
        standardize: put a fixed standardisation first, so the model maps
            raw data.
        frozen: build with every layer non-trainable (set by
            ``freeze_flow`` and kept through save and load).
        inverse_iterations: Newton steps of each mixture inverse (default by
            dtype).
        min_scale: lower bound of every mixture component's scale (see
            ``MixtureCDFGaussianization``); 0 leaves scales unbounded.
        marginal_first: Gaussianize each feature before any rotation. Data
            with atoms (a value repeated in many rows, dequantized to a
            narrow cell) needs it: a rotation, even a slightly trained one,
            smears an atom across features, while a marginal layer maps it
            to a smooth stretch of the Gaussian first.

    Shapes: ``x`` and ``z`` are `(batch, d)`; ``log_det`` and ``log_prob``
    are `(batch,)`.

    References:
        Meng, Song, Song & Ermon (2020), "Gaussianization Flows".
        Laparra, Camps-Valls & Malo (2011), "Iterative Gaussianization: from
        ICA to random rotations".
    """

    def __init__(
        self,
        dim: int,
        num_blocks: int = 6,
        num_components: int = 10,
        num_reflectors: int | None = None,
        use_pca: bool = True,
        standardize: bool = False,
        frozen: bool = False,
        inverse_iterations: int | None = None,
        min_scale: float = 0.0,
        marginal_first: bool = False,
        **kwargs: Any,
    ) -> None:
        _check_hyperparameters(dim, num_blocks, num_components)
        super().__init__(**kwargs)
        if self.dtype_policy.variable_dtype not in SUPPORTED_DTYPES:
            raise ValueError(
                f"dtype must be one of {SUPPORTED_DTYPES}; received "
                f"{self.dtype_policy.name}"
            )
        if (
            self.dtype_policy.variable_dtype == "float64"
            and not jax.config.jax_enable_x64
        ):
            raise ValueError(
                "dtype float64 needs JAX 64-bit mode; call flow.enable_float64() "
                "before building the flow"
            )
        self.dim = dim
        self.num_blocks = num_blocks
        self.num_components = num_components
        self.num_reflectors = num_reflectors
        self.use_pca = use_pca
        self.standardize = standardize
        self.inverse_iterations = inverse_iterations
        self.min_scale = float(min_scale)
        self.marginal_first = bool(marginal_first)
        self.bijectors = self._make_bijectors()
        self.build((None, dim))
        self._jitted: dict[str, Callable[..., Any]] = {}
        if frozen:
            self.trainable = False

    def _make_bijectors(self) -> list[Bijector]:
        dtype = self.dtype_policy.name
        layers: list[Bijector] = []
        if self.standardize:
            layers.append(Standardize(name="standardize", dtype=dtype))
        if self.marginal_first:
            layers.append(
                MixtureCDFGaussianization(
                    self.num_components,
                    self.inverse_iterations,
                    self.min_scale,
                    name="marginal_first",
                    dtype=dtype,
                )
            )
        if self.use_pca:
            layers.append(FixedOrtho(fit_pca=True, name="pca", dtype=dtype))
        for block in range(self.num_blocks):
            layers.append(
                Householder(
                    self.num_reflectors, name=f"block{block}_rotation", dtype=dtype
                )
            )
            layers.append(
                MixtureCDFGaussianization(
                    self.num_components,
                    self.inverse_iterations,
                    self.min_scale,
                    name=f"block{block}_marginal",
                    dtype=dtype,
                )
            )
        return layers

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        for layer in self.bijectors:
            layer.build(input_shape)
        paths = [weight.path for weight in self.weights]
        if len(set(paths)) != len(paths):
            raise RuntimeError(f"weight paths are not unique: {paths}")
        self.built = True

    # Properties and parameters -------------------------------------------

    @property
    def feature_dtype(self) -> str:
        """Dtype of inputs, outputs and weights: "float32" or "float64"."""
        return str(self.dtype_policy.variable_dtype)

    @property
    def frozen(self) -> bool:
        """True when no layer is trainable."""
        return not self.trainable and not self.trainable_weights

    def params(self) -> dict[str, Array]:
        """Return every weight's current value keyed by its path."""
        return {weight.path: weight.value for weight in self.weights}

    # Pure kernels, used by the public methods, the compiled runner and training.

    def _split_layers(self) -> tuple[list[Bijector], list[list[Bijector]]]:
        # Fixed layers in front, then num_blocks (rotation, marginal) pairs.
        first = len(self.bijectors) - 2 * self.num_blocks
        layers = self.bijectors
        blocks = [layers[i : i + 2] for i in range(first, len(layers), 2)]
        return layers[:first], blocks

    def _stacked_block_params(self, params: Params) -> dict[str, Array]:
        # Every block has the same structure, so the parameters of all blocks
        # are stacked along a leading axis under the first block's paths and
        # the blocks run as one lax.scan. XLA then compiles one block body
        # instead of num_blocks copies, which cut log_prob compile time from
        # 15.6 s to 6.7 s for 6 blocks on the 2-core development machine.
        _, blocks = self._split_layers()
        template = [w.path for layer in blocks[0] for w in layer.weights]
        per_block = [
            [params[w.path] for layer in b for w in layer.weights] for b in blocks
        ]
        return {
            path: jnp.stack([values[i] for values in per_block])
            for i, path in enumerate(template)
        }

    def forward_pure(self, params: Params, x: Array) -> tuple[Array, Array]:
        """Return ``(z, log_det)`` for x under explicit parameters."""
        prefix, blocks = self._split_layers()
        log_det = jnp.zeros(x.shape[:-1], x.dtype)
        for layer in prefix:
            x, layer_log_det = layer._forward(params, x)
            log_det = log_det + layer_log_det
        if not blocks:
            return x, log_det
        rotation, marginal = blocks[0]

        def block(carry: tuple[Array, Array], block_params: Params) -> tuple[Any, None]:
            h, total = carry
            h, rotation_log_det = rotation._forward(block_params, h)
            h, marginal_log_det = marginal._forward(block_params, h)
            return (h, total + rotation_log_det + marginal_log_det), None

        (x, log_det), _ = lax.scan(
            block, (x, log_det), self._stacked_block_params(params)
        )
        return x, log_det

    def inverse_pure(self, params: Params, z: Array) -> tuple[Array, Array]:
        """Return ``(x, log_det)`` with log_det = log |det dx/dz|."""
        prefix, blocks = self._split_layers()
        log_det = jnp.zeros(z.shape[:-1], z.dtype)
        if blocks:
            rotation, marginal = blocks[0]

            def block(
                carry: tuple[Array, Array], block_params: Params
            ) -> tuple[Any, None]:
                h, total = carry
                h, marginal_log_det = marginal._inverse(block_params, h)
                h, rotation_log_det = rotation._inverse(block_params, h)
                return (h, total + marginal_log_det + rotation_log_det), None

            stacked = self._stacked_block_params(params)
            (z, log_det), _ = lax.scan(block, (z, log_det), stacked, reverse=True)
        for layer in reversed(prefix):
            z, layer_log_det = layer._inverse(params, z)
            log_det = log_det + layer_log_det
        return z, log_det

    def log_prob_pure(self, params: Params, x: Array) -> Array:
        """Return log p(x) under explicit parameters."""
        z, log_det = self.forward_pure(params, x)
        return standard_normal_log_prob(z) + log_det

    def _run(self, name: str, kernel: Callable[..., Any], *arrays: Any) -> Any:
        # Concrete calls go through one cached jax.jit per kernel; traced
        # calls (inside a caller's jit or grad) inline the kernel.
        if any(is_traced(array) for array in arrays):
            return kernel(self.params(), *arrays)
        if name not in self._jitted:
            self._jitted[name] = jax.jit(kernel)
        return self._jitted[name](self.params(), *arrays)

    def _check(self, x: Any, name: str) -> Any:
        return check_array(x, self.dim, self.feature_dtype, name)

    # Public API ---------------------------------------------------------------

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        # Validate before Keras converts the input, so a bad array gets this
        # package's message (shape, or first non-finite row and column).
        if not isinstance(x, keras.KerasTensor):
            x = self._check(x, "x")
        return super().__call__(x, *args, **kwargs)

    def call(self, x: Array) -> Array:
        """Map data to the Gaussian side: x `(batch, d)` -> z `(batch, d)`."""
        z, _ = self.forward_and_log_det(x)
        return z

    def forward_and_log_det(self, x: Any) -> tuple[Array, Array]:
        """Return ``(z, log_det)`` with log_det = log |det dz/dx|, `(batch,)`."""
        return self._run("forward", self.forward_pure, self._check(x, "x"))

    def inverse_and_log_det(self, z: Any) -> tuple[Array, Array]:
        """Return ``(x, log_det)`` with log_det = log |det dx/dz|, `(batch,)`."""
        return self._run("inverse", self.inverse_pure, self._check(z, "z"))

    def invert(self, z: Any) -> Array:
        """Map Gaussian-side z `(batch, d)` back to data x `(batch, d)`.

        Note:
            Exact to the dtype's round-off where the flow's density is not
            vanishingly small; in float32 the round trip error grows with
            ``|x|`` roughly like 1e-7 |x| relative.
        """
        x, _ = self.inverse_and_log_det(z)
        return x

    def log_prob(self, x: Any) -> Array:
        """Return log p(x), `(batch,)`, by the change-of-variables formula."""
        return self._run("log_prob", self.log_prob_pure, self._check(x, "x"))

    def sample(self, n: int, seed: int = 0) -> Array:
        """Draw n samples, `(n, d)`, by inverting N(0, I) draws."""
        if n < 0:
            raise ValueError(f"n must be >= 0; received {n}")
        key = jax.random.PRNGKey(seed)
        z = jax.random.normal(key, (n, self.dim), dtype=self.feature_dtype)
        return self.invert(z)

    def forward_with_intermediates(self, x: Any) -> list[Array]:
        """Return x followed by the output of every layer, each `(batch, d)`."""
        h = self._check(x, "x")
        params = self.params()
        outputs = [jnp.asarray(h)]
        for layer in self.bijectors:
            h, _ = layer._forward(params, h)
            outputs.append(h)
        return outputs

    def initialize_from_data(self, x: Any, seed: int = 0) -> None:
        """Initialise every layer from the data as it reaches that layer.

        The PCA rotation is fitted first. Each Householder rotation starts at
        the least Gaussian of a set of candidate rotations of the data that
        reaches it (see ``flow._rotation_init``). Each mixture layer is
        fitted to the marginals of the data after every rotation in front of
        it, so no layer starts saturated.
        """
        h = jnp.asarray(self._check(x, "x"))
        for index, layer in enumerate(self.bijectors):
            layer.initialize_from_data(h, seed=seed + index)
            h, _ = layer.forward_and_log_det(h)

    # Serialization ------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype_policy.name,
            "dim": self.dim,
            "num_blocks": self.num_blocks,
            "num_components": self.num_components,
            "num_reflectors": self.num_reflectors,
            "use_pca": self.use_pca,
            "standardize": self.standardize,
            "frozen": self.frozen,
            "inverse_iterations": self.inverse_iterations,
            "min_scale": self.min_scale,
            "marginal_first": self.marginal_first,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> GaussianizationFlow:
        return cls(**config)

    def save(
        self, filepath: str | os.PathLike[str], overwrite: bool = True, **kwargs: Any
    ) -> None:
        """Save to a ``.keras`` file atomically.

        The file is written beside the target under a temporary name and
        renamed into place, so a failed save leaves no file behind and never
        damages an existing one.
        """
        target = os.fspath(filepath)
        if not target.endswith(".keras"):
            raise ValueError(f"filepath must end in .keras; received {target!r}")
        if os.path.exists(target) and not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
        directory = os.path.dirname(os.path.abspath(target))
        temporary = os.path.join(
            directory, f".{os.path.basename(target)}.{uuid.uuid4().hex}.keras"
        )
        try:
            with warnings.catch_warnings():
                # Keras 3.15 (backend/jax/core.py, convert_to_numpy) calls
                # np.array on variables whose __array__ lacks the copy keyword,
                # which NumPy 2 reports as deprecated on every save.
                warnings.filterwarnings(
                    "ignore",
                    message="__array__ implementation doesn't accept a copy keyword",
                    category=DeprecationWarning,
                )
                super().save(temporary, **kwargs)
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary)


def _check_hyperparameters(dim: int, num_blocks: int, num_components: int) -> None:
    for name, value, minimum in (
        ("dim", dim, 1),
        ("num_blocks", num_blocks, 0),
        ("num_components", num_components, 1),
    ):
        if not isinstance(value, int | np.integer) or value < minimum:
            raise ValueError(
                f"{name} must be an integer >= {minimum}; received {value!r}"
            )
