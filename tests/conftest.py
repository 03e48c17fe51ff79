"""Session-wide settings shared by every test package.

JAX 64-bit mode is on for the whole session, as in the service, so float32
tests also check that nothing silently computes in float64.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import flow

flow.enable_float64()
