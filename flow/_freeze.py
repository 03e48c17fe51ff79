"""Freezing: turn a trained flow into a read-only probe."""

from __future__ import annotations

import keras


def freeze_flow(flow: keras.Model) -> keras.Model:
    """Make every layer and weight of ``flow`` non-trainable, in place.

    Afterwards ``fit`` with any optimizer and loss updates nothing, and the
    frozen state is part of the saved config. Returns ``flow``.
    """
    flow.trainable = False
    for layer in flow._flatten_layers(include_self=False):
        layer.trainable = False
    return flow


def is_fully_frozen(flow: keras.Model) -> bool:
    """Return True when no layer of ``flow`` is trainable and no weight is."""
    layers = list(flow._flatten_layers(include_self=True))
    return not flow.trainable_weights and not any(layer.trainable for layer in layers)
