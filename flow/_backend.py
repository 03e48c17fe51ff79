"""Keras backend selection and JAX precision settings."""

from __future__ import annotations

import os
import sys


def select_jax_backend() -> None:
    """Make Keras use JAX; raise if Keras was already loaded with another backend."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    if os.environ["KERAS_BACKEND"] != "jax":
        raise ImportError(
            f"gaussprobe needs the JAX backend of Keras; KERAS_BACKEND is "
            f"{os.environ['KERAS_BACKEND']!r}. Unset it or set KERAS_BACKEND=jax"
        )
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != "jax":
            raise ImportError(
                f"keras was imported with the {keras.backend.backend()!r} "
                "backend before "
                "gaussprobe; import flow first or set KERAS_BACKEND=jax"
            )


def enable_float64() -> None:
    """Turn on JAX 64-bit mode, needed for float64 flows.

    Call it at program start, before any array is created. float32 flows
    keep computing in float32 afterwards.
    """
    import jax

    jax.config.update("jax_enable_x64", True)
