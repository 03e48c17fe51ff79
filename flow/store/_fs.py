"""File-system primitives: durable writes, hashing and no-clobber renames."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

logger = logging.getLogger(__name__)

HASH_CHUNK_BYTES = 1 << 20
"""Read and copy block size, in bytes."""

TEMP_PREFIX = ".tmp-"
"""Prefix of temporary files and directories; listings skip these entries."""

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def temp_name() -> str:
    """Return a unique temporary entry name starting with ``TEMP_PREFIX``."""
    return f"{TEMP_PREFIX}{uuid.uuid4().hex}"


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (creations, renames) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_stream_hashed(source: BinaryIO, target: BinaryIO) -> tuple[str, int]:
    """Copy ``source`` into ``target`` and return the sha256 hex and byte count."""
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(HASH_CHUNK_BYTES):
        digest.update(chunk)
        target.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def hash_file_nofollow(path: Path) -> tuple[str, int]:
    """Return the sha256 hex and size of a regular file, never following a link.

    Raises:
        OSError: The file cannot be read; ``errno.ELOOP`` if ``path`` is a
            symbolic link.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        digest = hashlib.sha256()
        size = 0
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def write_file_durable(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` (which must not exist) with ``data``, fsync it, set ``mode``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, mode)


def replace_file_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data`` so readers see the old or new file, whole.

    Writes a temporary file in the same directory, fsyncs it, renames it over
    ``path`` with ``os.replace`` and fsyncs the directory.
    """
    temp_path = path.parent / temp_name()
    try:
        write_file_durable(temp_path, data, mode)
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _load_renameat2() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    typed_function: Callable[..., int] = function
    return typed_function


_renameat2 = _load_renameat2()


def rename_noreplace(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``, failing if ``target`` exists.

    Uses Linux ``renameat2(RENAME_NOREPLACE)``. Where the kernel, libc or file
    system lacks it, falls back to ``os.rename``, which also fails on an
    existing non-empty directory and replaces only an empty one. Callers
    rename only non-empty directories onto version numbers, so the fallback
    never replaces anything that contains data.

    Raises:
        FileExistsError: ``target`` exists (``errno.EEXIST`` or
            ``errno.ENOTEMPTY``).
        OSError: Any other rename failure.
    """
    if _renameat2 is not None:
        result = _renameat2(
            _AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), 0
        )
        if result == 0:
            return
        error = ctypes.get_errno()
        if error not in (errno.EINVAL, errno.ENOSYS):
            if error in (errno.EEXIST, errno.ENOTEMPTY):
                raise FileExistsError(error, os.strerror(error), str(target))
            raise OSError(error, os.strerror(error), str(source))
        # EINVAL or ENOSYS: flag not supported here, so use the fallback.
        logger.debug("renameat2(RENAME_NOREPLACE) unsupported for %s", target)
    try:
        os.rename(source, target)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(exc.errno, exc.strerror, str(target)) from exc
        raise
