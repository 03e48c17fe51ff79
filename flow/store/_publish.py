"""Atomic publication of a new model version.

Protocol (a crash at any step leaves no new version or a complete one):

1. Write every payload file into ``<store>/<name>/.tmp-<uuid>/``, fsync each
   and make it read-only (0o444).
2. Choose a candidate version: one past the highest version-named entry and
   past the ``latest`` pointer. Write ``manifest.json`` (which records that
   number) and ``manifest.sha256``, then fsync every directory in the tree.
3. Rename the temporary directory to ``<store>/<name>/<version>`` with
   ``renameat2(RENAME_NOREPLACE)``. The rename is the commit point. If a
   concurrent publisher took that number first, the rename fails without
   touching its version, and step 2 repeats with the next number.
4. Fsync the model directory, make the version's directories read-only
   (0o555) and move ``latest`` forward under the model lock.

Listings ignore ``.tmp-*`` entries, and ``gc`` removes old ones.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._aliases import advance_latest, read_alias
from ._errors import (
    IntegrityError,
    InvalidManifestError,
    InvalidNameError,
    PublishError,
)
from ._faults import fault_point
from ._fs import (
    TEMP_PREFIX,
    copy_stream_hashed,
    fsync_dir,
    rename_noreplace,
    temp_name,
    write_file_durable,
)
from ._manifest import (
    STORE_FIELDS,
    checksum_line,
    normalize_manifest,
    serialize_manifest,
)
from ._names import (
    LATEST_ALIAS,
    MANIFEST_CHECKSUM_FILE,
    MANIFEST_FILE,
    MAX_VERSION,
    RESERVED_FILES,
    parse_version_dir_name,
    validate_file_path,
    validate_name,
)
from ._timestamps import utc_timestamp

logger = logging.getLogger(__name__)

PUBLISHED_FILE_MODE = 0o444
PUBLISHED_DIR_MODE = 0o555
WORK_DIR_MODE = 0o755
MAX_CLAIM_ATTEMPTS = 1000
"""Version numbers tried before publish gives up under extreme contention."""

FileSource = bytes | bytearray | memoryview | os.PathLike[str]


def validate_files(files: Mapping[str, FileSource]) -> dict[str, FileSource]:
    """Check payload paths and sources; return them sorted by path.

    Raises:
        InvalidNameError: A path is malformed, reserved, or is both a file
            and a directory of other files.
        ValueError: ``files`` is empty or a source is neither bytes nor an
            existing regular file.
    """
    if not isinstance(files, Mapping) or not files:
        raise ValueError(
            "files must be a non-empty mapping such as "
            "{'model.keras': Path('model.keras')}"
        )
    checked: dict[str, FileSource] = {}
    for relpath in sorted(files):
        validate_file_path(relpath)
        if relpath in RESERVED_FILES:
            raise InvalidNameError(
                f"invalid file path {relpath!r}: the store writes this file "
                "itself; pass the fields as the manifest argument instead",
                file=relpath,
            )
        source = files[relpath]
        if isinstance(source, str):
            raise ValueError(
                f"file {relpath!r}: got a str; pass Path(...) to copy a file or "
                "bytes for the content"
            )
        if isinstance(source, os.PathLike):
            try:
                mode = os.stat(source).st_mode
            except OSError as exc:
                raise ValueError(
                    f"file {relpath!r}: source {os.fspath(source)!r} cannot be "
                    f"read ({exc.strerror}); check the path"
                ) from exc
            if not stat.S_ISREG(mode):
                raise ValueError(
                    f"file {relpath!r}: source {os.fspath(source)!r} is not a "
                    "regular file"
                )
        elif not isinstance(source, bytes | bytearray | memoryview):
            raise ValueError(
                f"file {relpath!r}: got {type(source).__name__}; pass a Path or bytes"
            )
        checked[relpath] = source
    directories = {
        "/".join(relpath.split("/")[:depth])
        for relpath in checked
        for depth in range(1, relpath.count("/") + 1)
    }
    clashes = sorted(directories & checked.keys())
    if clashes:
        raise InvalidNameError(
            f"invalid file path {clashes[0]!r}: it is both a file and the "
            "directory of other files; rename one of them",
            file=clashes[0],
        )
    return checked


def validate_manifest(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Return the caller's manifest as plain JSON data without store fields.

    Raises:
        InvalidManifestError: Not a mapping, not strict JSON, or it sets a
            field the store owns (``name``, ``version``, ``created_at``,
            ``files``).
    """
    if not isinstance(manifest, Mapping):
        raise InvalidManifestError(
            f"manifest must be a dict, got {type(manifest).__name__}"
        )
    owned = sorted(set(STORE_FIELDS) & manifest.keys())
    if owned:
        raise InvalidManifestError(
            f"manifest sets {owned}, which the store fills in itself; remove these keys"
        )
    normalized: dict[str, Any] = normalize_manifest(manifest)
    return normalized


def _write_payload(work_dir: Path, relpath: str, source: FileSource) -> dict[str, Any]:
    target = work_dir / relpath
    target.parent.mkdir(mode=WORK_DIR_MODE, parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        if isinstance(source, os.PathLike):
            with open(source, "rb") as source_handle:
                sha256, size = copy_stream_hashed(source_handle, handle)
        else:
            data = bytes(source)
            handle.write(data)
            sha256, size = hashlib.sha256(data).hexdigest(), len(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(target, PUBLISHED_FILE_MODE)
    return {"bytes": size, "sha256": sha256}


def _write_manifest(work_dir: Path, manifest: dict[str, Any]) -> None:
    data = serialize_manifest(manifest)
    for reserved in RESERVED_FILES:
        (work_dir / reserved).unlink(missing_ok=True)
    write_file_durable(work_dir / MANIFEST_FILE, data, PUBLISHED_FILE_MODE)
    digest = hashlib.sha256(data).hexdigest()
    write_file_durable(
        work_dir / MANIFEST_CHECKSUM_FILE,
        checksum_line(digest, MANIFEST_FILE),
        PUBLISHED_FILE_MODE,
    )


def _tree_dirs_bottom_up(top: Path) -> list[Path]:
    return [Path(directory) for directory, _, _ in os.walk(top, topdown=False)]


def highest_version_entry(model_dir: Path) -> int:
    """Return the highest version number used by any entry, complete or not."""
    highest = 0
    for entry in os.listdir(model_dir):
        number = parse_version_dir_name(entry)
        if number is not None:
            highest = max(highest, number)
    return highest


def _next_candidate(model_dir: Path, name: str, previous: int) -> int:
    candidate = max(previous, highest_version_entry(model_dir))
    try:
        latest = read_alias(model_dir, name, LATEST_ALIAS)
    except IntegrityError:
        latest = None
    if latest is not None:
        # Never reuse a number that ``latest`` still points to, even if its
        # directory was removed by hand.
        candidate = max(candidate, latest)
    if candidate >= MAX_VERSION:
        raise PublishError(
            f"model {name!r} has reached version {MAX_VERSION}; publish under a "
            "new model name",
            name=name,
        )
    return candidate + 1


def ensure_model_dir(root: Path, name: str) -> Path:
    """Create ``<root>/<name>`` if needed and return it.

    Raises:
        IntegrityError: The entry exists but is a link or not a directory.
    """
    root.mkdir(parents=True, exist_ok=True)
    model_dir = root / name
    try:
        os.mkdir(model_dir, WORK_DIR_MODE)
    except FileExistsError:
        # lstat reports a symbolic link as a link, never as a directory.
        if not stat.S_ISDIR(os.lstat(model_dir).st_mode):
            raise IntegrityError(
                f"{model_dir} exists but is not a directory (or is a symbolic "
                "link, which the store never follows); move it away",
                name=name,
            ) from None
    else:
        fsync_dir(root)
    return model_dir


def make_tree_writable(top: Path) -> None:
    """Give the owner write access to every directory under ``top`` (for removal)."""
    for directory in [top, *_tree_dirs_bottom_up(top)]:
        if not directory.is_symlink():
            os.chmod(directory, WORK_DIR_MODE)


def _claim_version(
    model_dir: Path, work_dir: Path, name: str, manifest: dict[str, Any]
) -> int:
    """Write the manifest and rename ``work_dir`` onto the next free version."""
    candidate = 0
    for _ in range(MAX_CLAIM_ATTEMPTS):
        candidate = _next_candidate(model_dir, name, candidate)
        _write_manifest(work_dir, {**manifest, "name": name, "version": candidate})
        fault_point("after_manifest_written")
        for directory in _tree_dirs_bottom_up(work_dir):
            fsync_dir(directory)
        fault_point("before_rename")
        try:
            rename_noreplace(work_dir, model_dir / str(candidate))
        except FileExistsError:
            logger.info("%s:%d was taken concurrently; trying next", name, candidate)
            continue
        fsync_dir(model_dir)
        return candidate
    raise PublishError(
        f"could not claim a version of {name!r} after {MAX_CLAIM_ATTEMPTS} "
        "attempts because other publishers kept taking them; retry later",
        name=name,
    )


def publish_version(
    root: Path,
    name: str,
    files: Mapping[str, FileSource],
    manifest: Mapping[str, Any],
) -> tuple[int, Path, dict[str, Any]]:
    """Publish ``files`` with ``manifest`` as the next version of ``name``.

    Returns:
        The version number, the version directory and the stored manifest.

    Raises:
        InvalidNameError, InvalidManifestError, ValueError: Invalid input;
            nothing is written.
        PublishError: An OS error (such as a full disk) stopped publication;
            no version was created and the temporary directory was removed.
    """
    validate_name(name)
    checked_files = validate_files(files)
    user_manifest = validate_manifest(manifest)
    work_dir: Path | None = None
    version: int | None = None
    try:
        model_dir = ensure_model_dir(root, name)
        work_dir = model_dir / temp_name()
        os.mkdir(work_dir, WORK_DIR_MODE)
        entries: dict[str, dict[str, Any]] = {}
        for index, (relpath, source) in enumerate(checked_files.items()):
            entries[relpath] = _write_payload(work_dir, relpath, source)
            if index == 0:
                fault_point("after_first_file")
        fault_point("after_files_written")
        stored: dict[str, Any] = {
            **user_manifest,
            "created_at": utc_timestamp(),
            "files": entries,
        }
        version = _claim_version(model_dir, work_dir, name, stored)
    except OSError as exc:
        raise PublishError(
            f"publishing {name!r} failed ({exc}); nothing was published, fix the "
            "cause (disk space, permissions) and publish again",
            name=name,
            file=exc.filename if isinstance(exc.filename, str) else None,
        ) from exc
    finally:
        if version is None and work_dir is not None and os.path.lexists(work_dir):
            make_tree_writable(work_dir)
            shutil.rmtree(work_dir, ignore_errors=True)
    version_dir = model_dir / str(version)
    for directory in _tree_dirs_bottom_up(version_dir):
        os.chmod(directory, PUBLISHED_DIR_MODE)
    fault_point("after_rename")
    advance_latest(model_dir, name, version)
    stored["name"] = name
    stored["version"] = version
    logger.info("published %s:%d at %s", name, version, version_dir)
    return version, version_dir, stored


def is_temp_entry(entry_name: str) -> bool:
    """Return whether a directory entry is a publisher's temporary entry."""
    return entry_name.startswith(TEMP_PREFIX)
