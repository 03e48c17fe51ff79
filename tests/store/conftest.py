"""Fixtures for artifact store tests: a store on disk and a model file."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_helpers import MODEL_BYTES

from flow.store import ArtifactStore


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    """Return a not-yet-created store directory under ``tmp_path``."""
    return tmp_path / "store"


@pytest.fixture
def store(store_root: Path) -> ArtifactStore:
    """Return a writable store at ``store_root``."""
    return ArtifactStore(store_root)


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    """Return a file on disk with ``MODEL_BYTES`` to publish by path."""
    path = tmp_path / "model.keras"
    path.write_bytes(MODEL_BYTES)
    return path
