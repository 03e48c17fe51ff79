"""Removal of temporary entries left by publishers that died."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import time
from pathlib import Path

from ._aliases import ALIASES_DIR
from ._fs import TEMP_PREFIX
from ._publish import make_tree_writable

logger = logging.getLogger(__name__)

DEFAULT_GC_MIN_AGE_SECONDS = 24 * 60 * 60
"""Temporary entries younger than this may belong to a running publisher."""


def newest_mtime(path: Path) -> float:
    """Return the newest modification time of ``path`` and everything under it."""
    newest = os.lstat(path).st_mtime
    if stat.S_ISDIR(os.lstat(path).st_mode):
        for directory, dir_names, file_names in os.walk(path, followlinks=False):
            for entry in dir_names + file_names:
                newest = max(newest, os.lstat(Path(directory) / entry).st_mtime)
    return newest


def _stale_temp_entries(directory: Path, cutoff: float) -> list[Path]:
    try:
        entries = sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    stale: list[Path] = []
    for entry in entries:
        if not entry.startswith(TEMP_PREFIX):
            continue
        path = directory / entry
        try:
            if newest_mtime(path) < cutoff:
                stale.append(path)
        except FileNotFoundError:
            continue  # removed concurrently, for example by its publisher
    return stale


def remove_stale_temp_entries(
    model_dirs: list[Path], min_age_seconds: float
) -> list[Path]:
    """Remove ``.tmp-*`` entries not modified for ``min_age_seconds``.

    Looks in each model directory and its ``aliases`` directory. Published
    versions, aliases and the lock file are never touched.

    Returns:
        The removed paths, sorted.
    """
    cutoff = time.time() - min_age_seconds
    removed: list[Path] = []
    for model_dir in model_dirs:
        for directory in (model_dir, model_dir / ALIASES_DIR):
            for path in _stale_temp_entries(directory, cutoff):
                if stat.S_ISDIR(os.lstat(path).st_mode):
                    make_tree_writable(path)
                    shutil.rmtree(path)
                else:
                    path.unlink()
                logger.info("removed stale temporary entry %s", path)
                removed.append(path)
    return sorted(removed)
