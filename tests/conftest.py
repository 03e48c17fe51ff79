"""Session-wide settings shared by every test package.

JAX 64-bit mode is on for the whole session, as in the service, so float32
tests also check that nothing silently computes in float64.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")

import flow

flow.enable_float64()


@pytest.fixture(autouse=True, scope="module")
def release_compiled_programs() -> Iterator[None]:
    """Drop JAX's compiled programs once a test module is done.

    Every loaded XLA:CPU program uses a few hundred memory mappings (see
    flow/_mappings.py). Without this, the programs of earlier modules
    accumulate in the one pytest process until it reaches vm.max_map_count.
    """
    yield
    import jax

    gc.collect()
    jax.clear_caches()
    gc.collect()
