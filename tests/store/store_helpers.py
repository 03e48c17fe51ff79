"""Sample payloads and file-system helpers shared by the store tests."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from flow.store import ArtifactStore, ArtifactVersion

MODEL_BYTES = bytes(range(256)) * 40
"""Stand-in ``model.keras`` content (10240 bytes) for tests that never load it."""

REPORT_HTML = b"<html><body>report</body></html>\n"
FIGURE_PNG = b"\x89PNG\r\n\x1a\nnot-a-real-figure"


def sample_files(model_file: Path) -> dict[str, Path | bytes]:
    """Return a payload mixing a path source and in-memory sources."""
    return {
        "model.keras": model_file,
        "report/index.html": REPORT_HTML,
        "report/figures/nll.png": FIGURE_PNG,
    }


def sample_manifest(**extra: object) -> dict[str, object]:
    """Return a manifest with the fields the training job passes, abridged."""
    manifest: dict[str, object] = {
        "format_version": 1,
        "feature_names": ["age", "income"],
        "dim": 2,
        "dtype": "float32",
        "seed": 7,
        "weights_digest": "sha256:" + "ab" * 32,
    }
    manifest.update(extra)
    return manifest


def publish_sample(
    store: ArtifactStore, model_file: Path, name: str = "adult"
) -> ArtifactVersion:
    """Publish the sample payload as the next version of ``name``."""
    return store.publish(name, sample_files(model_file), sample_manifest())


def make_writable(path: Path) -> None:
    """Add owner write permission to ``path`` so a test can damage it."""
    os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) | stat.S_IWUSR)


def snapshot_tree(root: Path) -> dict[str, tuple[int, int, int, int]]:
    """Return ``relpath -> (mode, size, mtime_ns, ctime_ns)`` of every entry.

    ``ctime`` changes on any write, chmod or rename, so equal snapshots mean
    nothing under ``root`` was written, created, removed or re-permissioned.
    """
    result: dict[str, tuple[int, int, int, int]] = {}
    for directory, dir_names, file_names in os.walk(root):
        for entry in [".", *dir_names, *file_names]:
            path = Path(directory) / entry
            info = os.lstat(path)
            relpath = path.relative_to(root).as_posix()
            result[relpath] = (
                info.st_mode,
                info.st_size,
                info.st_mtime_ns,
                info.st_ctime_ns,
            )
    return result
