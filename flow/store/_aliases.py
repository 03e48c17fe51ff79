"""Alias pointer files ``<store>/<name>/aliases/<alias>.json`` and the model lock."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from ._errors import IntegrityError
from ._faults import fault_point
from ._fs import TEMP_PREFIX, fsync_dir, temp_name, write_file_durable
from ._manifest import serialize_manifest
from ._names import LATEST_ALIAS, parse_version_dir_name, validate_alias
from ._timestamps import utc_timestamp

logger = logging.getLogger(__name__)

ALIASES_DIR = "aliases"
ALIAS_SUFFIX = ".json"
LOCK_FILE = ".lock"
"""Lock file in each model directory; serializes alias updates, never data."""

ALIAS_FILE_MODE = 0o644
LOCK_FILE_MODE = 0o644


def alias_path(model_dir: Path, alias: str) -> Path:
    """Return the pointer file path of ``alias`` (already validated)."""
    return model_dir / ALIASES_DIR / f"{alias}{ALIAS_SUFFIX}"


def read_alias(model_dir: Path, name: str, alias: str) -> int | None:
    """Return the version an alias points to, or ``None`` if it is not set.

    Raises:
        IntegrityError: The pointer file is a link, unreadable or malformed.
    """
    path = alias_path(model_dir, alias)
    relpath = f"{ALIASES_DIR}/{path.name}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        reason = (
            "is a symbolic link, which the store never follows"
            if exc.errno == errno.ELOOP
            else f"cannot be read ({exc.strerror})"
        )
        raise IntegrityError(
            f"alias {name}@{alias}: {relpath} {reason}; set the alias again with "
            f"'gaussprobe models alias {name} VERSION {alias}'",
            name=name,
            file=relpath,
        ) from exc
    with os.fdopen(fd, "rb") as handle:
        data = handle.read()
    try:
        pointer = json.loads(data.decode("utf-8"))
        version = pointer["version"]
        target_name = pointer["name"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise IntegrityError(
            f"alias {name}@{alias}: {relpath} is not a valid pointer ({exc!r}); set "
            f"the alias again with 'gaussprobe models alias {name} VERSION {alias}'",
            name=name,
            file=relpath,
        ) from exc
    valid_version = (
        isinstance(version, int)
        and not isinstance(version, bool)
        and parse_version_dir_name(str(version)) == version
    )
    if not valid_version or target_name != name:
        raise IntegrityError(
            f"alias {name}@{alias}: {relpath} points to {target_name!r} version "
            f"{version!r}, expected {name!r} and a positive integer; set the alias "
            f"again with 'gaussprobe models alias {name} VERSION {alias}'",
            name=name,
            file=relpath,
        )
    return int(version)


def list_alias_names(model_dir: Path) -> list[str]:
    """Return the names of the alias pointer files present, sorted."""
    try:
        entries = os.listdir(model_dir / ALIASES_DIR)
    except (FileNotFoundError, NotADirectoryError):
        return []
    names: list[str] = []
    for entry in entries:
        if entry.startswith(TEMP_PREFIX) or not entry.endswith(ALIAS_SUFFIX):
            continue
        alias = entry.removesuffix(ALIAS_SUFFIX)
        try:
            names.append(validate_alias(alias))
        except ValueError:
            logger.warning("ignoring malformed alias file %s", model_dir / entry)
    return sorted(names)


@contextlib.contextmanager
def model_lock(model_dir: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the model's lock file (writers only)."""
    lock_path = model_dir / LOCK_FILE
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, LOCK_FILE_MODE)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IntegrityError(
                f"{lock_path} is not a regular file; remove it",
                file=str(lock_path),
            )
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_alias(model_dir: Path, name: str, alias: str, version: int) -> None:
    """Point ``alias`` at ``version`` atomically. The caller must hold ``model_lock``.

    The new pointer is written to a temporary file, fsynced, renamed over the
    old pointer with ``os.replace`` and the directory fsynced, so readers see
    the old or the new pointer and never a partial one.
    """
    aliases_dir = model_dir / ALIASES_DIR
    created = False
    try:
        os.mkdir(aliases_dir)
        created = True
    except FileExistsError:
        pass
    if created:
        fsync_dir(model_dir)
    pointer = {
        "alias": alias,
        "name": name,
        "updated_at": utc_timestamp(),
        "version": version,
    }
    temp_path = aliases_dir / temp_name()
    try:
        write_file_durable(temp_path, serialize_manifest(pointer), ALIAS_FILE_MODE)
        fault_point("before_alias_replace")
        os.replace(temp_path, alias_path(model_dir, alias))
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
    fsync_dir(aliases_dir)
    logger.info("alias %s@%s now points to version %d", name, alias, version)


def advance_latest(model_dir: Path, name: str, version: int) -> bool:
    """Move ``latest`` to ``version`` unless it already points at or past it.

    Returns:
        Whether the pointer moved. A concurrent publisher that finished a
        higher version first keeps ``latest`` there.
    """
    with model_lock(model_dir):
        try:
            current = read_alias(model_dir, name, LATEST_ALIAS)
        except IntegrityError as exc:
            # ``latest`` only caches the newest version, so rewriting a damaged
            # pointer loses nothing.
            logger.warning("replacing damaged pointer: %s", exc)
            current = None
        if current is not None and current >= version:
            logger.info(
                "alias %s@%s stays at version %d (not moving back to %d)",
                name,
                LATEST_ALIAS,
                current,
                version,
            )
            return False
        write_alias(model_dir, name, LATEST_ALIAS, version)
        return True
