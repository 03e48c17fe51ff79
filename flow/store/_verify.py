"""Integrity checks of one published version against its manifest."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from ._errors import IntegrityError
from ._fs import hash_file_nofollow
from ._manifest import parse_checksum_line, parse_manifest
from ._names import MANIFEST_CHECKSUM_FILE, MANIFEST_FILE, RESERVED_FILES

RESTORE_HINT = (
    "published files must never change: restore the version from a backup "
    "or publish the model again as a new version"
)


class ProblemKind(StrEnum):
    """Category of a verification problem."""

    NOT_A_DIRECTORY = "not_a_directory"
    SYMLINK = "symlink"
    MISSING_MANIFEST = "missing_manifest"
    INVALID_MANIFEST = "invalid_manifest"
    MISSING_CHECKSUM = "missing_checksum"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    MISSING_FILE = "missing_file"
    EXTRA_FILE = "extra_file"
    NOT_A_REGULAR_FILE = "not_a_regular_file"
    SIZE_MISMATCH = "size_mismatch"
    HASH_MISMATCH = "hash_mismatch"
    UNREADABLE = "unreadable"
    INVALID_ALIAS = "invalid_alias"
    DANGLING_ALIAS = "dangling_alias"


@dataclass(frozen=True)
class VerificationProblem:
    """One mismatch between the store and its manifests.

    Attributes:
        name: Model name.
        version: Version number, or ``None`` for problems outside a version
            (a model directory or an alias file).
        file: Path relative to the version directory (or to the model
            directory when ``version`` is ``None``), or ``None``.
        kind: Problem category.
        message: Sentence naming the value and the fix.
    """

    name: str
    version: int | None
    file: str | None
    kind: ProblemKind
    message: str

    def __str__(self) -> str:
        where = self.name if self.version is None else f"{self.name}:{self.version}"
        if self.file is not None:
            where = f"{where} {self.file}"
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """Return the problem as JSON-serializable plain data."""
        return {
            "name": self.name,
            "version": self.version,
            "file": self.file,
            "kind": self.kind.value,
            "message": self.message,
        }


def _read_nofollow(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _check_entry_type(
    path: Path, name: str, version: int | None, relpath: str, want_dir: bool
) -> VerificationProblem | None:
    """Return a problem unless ``path`` is a real directory or regular file."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        kind = ProblemKind.MISSING_MANIFEST if relpath == MANIFEST_FILE else None
        return VerificationProblem(
            name,
            version,
            relpath,
            kind or ProblemKind.MISSING_FILE,
            f"{relpath} is missing; {RESTORE_HINT}",
        )
    if stat.S_ISLNK(info.st_mode):
        return VerificationProblem(
            name,
            version,
            relpath,
            ProblemKind.SYMLINK,
            f"{relpath} is a symbolic link, which the store never follows; "
            "remove it and restore the real entry",
        )
    if want_dir and not stat.S_ISDIR(info.st_mode):
        return VerificationProblem(
            name,
            version,
            relpath,
            ProblemKind.NOT_A_DIRECTORY,
            f"{relpath} is not a directory; remove it or restore the version",
        )
    if not want_dir and not stat.S_ISREG(info.st_mode):
        return VerificationProblem(
            name,
            version,
            relpath,
            ProblemKind.NOT_A_REGULAR_FILE,
            f"{relpath} is not a regular file; {RESTORE_HINT}",
        )
    return None


def load_manifest(
    version_dir: Path, name: str, version: int
) -> tuple[dict[str, Any] | None, list[VerificationProblem]]:
    """Read and check a version's manifest and manifest checksum.

    Returns:
        The parsed manifest (``None`` if unusable) and the problems found.
    """
    problem = _check_entry_type(
        version_dir, name, version, f"{name}/{version}", want_dir=True
    )
    if problem is not None:
        return None, [replace(problem, file=None)]
    manifest_path = version_dir / MANIFEST_FILE
    problem = _check_entry_type(
        manifest_path, name, version, MANIFEST_FILE, want_dir=False
    )
    if problem is not None:
        return None, [problem]
    try:
        data = _read_nofollow(manifest_path)
    except OSError as exc:
        return None, [
            VerificationProblem(
                name,
                version,
                MANIFEST_FILE,
                ProblemKind.UNREADABLE,
                f"{MANIFEST_FILE} cannot be read ({exc.strerror}); check its "
                "permissions",
            )
        ]
    problems = _check_manifest_checksum(version_dir, name, version, data)
    try:
        manifest = parse_manifest(data)
    except ValueError as exc:
        problems.append(
            VerificationProblem(
                name,
                version,
                MANIFEST_FILE,
                ProblemKind.INVALID_MANIFEST,
                f"{MANIFEST_FILE} is invalid ({exc}); {RESTORE_HINT}",
            )
        )
        return None, problems
    if manifest["name"] != name or manifest["version"] != version:
        problems.append(
            VerificationProblem(
                name,
                version,
                MANIFEST_FILE,
                ProblemKind.INVALID_MANIFEST,
                f"{MANIFEST_FILE} describes {manifest['name']}:{manifest['version']}"
                f" but is stored as {name}:{version}; {RESTORE_HINT}",
            )
        )
        return None, problems
    return manifest, problems


def _check_manifest_checksum(
    version_dir: Path, name: str, version: int, manifest_data: bytes
) -> list[VerificationProblem]:
    checksum_path = version_dir / MANIFEST_CHECKSUM_FILE
    problem = _check_entry_type(
        checksum_path, name, version, MANIFEST_CHECKSUM_FILE, want_dir=False
    )
    if problem is not None:
        if problem.kind is ProblemKind.MISSING_FILE:
            problem = VerificationProblem(
                name,
                version,
                MANIFEST_CHECKSUM_FILE,
                ProblemKind.MISSING_CHECKSUM,
                f"{MANIFEST_CHECKSUM_FILE} is missing; {RESTORE_HINT}",
            )
        return [problem]
    try:
        expected = parse_checksum_line(_read_nofollow(checksum_path))
    except OSError as exc:
        expected = None
        reason = f"cannot be read ({exc.strerror})"
    else:
        reason = "is malformed"
    if expected is None:
        return [
            VerificationProblem(
                name,
                version,
                MANIFEST_CHECKSUM_FILE,
                ProblemKind.CHECKSUM_MISMATCH,
                f"{MANIFEST_CHECKSUM_FILE} {reason}; {RESTORE_HINT}",
            )
        ]
    actual = hashlib.sha256(manifest_data).hexdigest()
    if actual != expected:
        return [
            VerificationProblem(
                name,
                version,
                MANIFEST_FILE,
                ProblemKind.CHECKSUM_MISMATCH,
                f"{MANIFEST_FILE} sha256 is {actual}, but {MANIFEST_CHECKSUM_FILE} "
                f"records {expected}; {RESTORE_HINT}",
            )
        ]
    return []


def _scan_tree(
    version_dir: Path, name: str, version: int
) -> tuple[set[str], list[VerificationProblem]]:
    """Return the regular files under ``version_dir`` and any link or odd entry."""
    found: set[str] = set()
    problems: list[VerificationProblem] = []
    for directory, dir_names, file_names in os.walk(version_dir, followlinks=False):
        relative_dir = Path(directory).relative_to(version_dir)
        for entry_name in sorted(dir_names + file_names):
            relpath = (relative_dir / entry_name).as_posix()
            info = os.lstat(Path(directory) / entry_name)
            if stat.S_ISLNK(info.st_mode):
                problems.append(
                    VerificationProblem(
                        name,
                        version,
                        relpath,
                        ProblemKind.SYMLINK,
                        f"{relpath} is a symbolic link, which the store never "
                        "follows; remove it",
                    )
                )
            elif stat.S_ISREG(info.st_mode):
                found.add(relpath)
            elif not stat.S_ISDIR(info.st_mode):
                problems.append(
                    VerificationProblem(
                        name,
                        version,
                        relpath,
                        ProblemKind.NOT_A_REGULAR_FILE,
                        f"{relpath} is not a regular file or directory; remove it",
                    )
                )
    return found, problems


def check_file(
    version_dir: Path, name: str, version: int, relpath: str, entry: dict[str, Any]
) -> VerificationProblem | None:
    """Return a problem unless the file's size and sha256 match ``entry``."""
    try:
        actual_sha256, actual_size = hash_file_nofollow(version_dir / relpath)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            reason = "is a symbolic link"
        else:
            reason = f"cannot be read ({exc.strerror})"
        return VerificationProblem(
            name,
            version,
            relpath,
            ProblemKind.UNREADABLE,
            f"{relpath} {reason}; {RESTORE_HINT}",
        )
    if actual_size != entry["bytes"]:
        return VerificationProblem(
            name,
            version,
            relpath,
            ProblemKind.SIZE_MISMATCH,
            f"{relpath} has {actual_size} bytes, but the manifest records "
            f"{entry['bytes']}; {RESTORE_HINT}",
        )
    if actual_sha256 != entry["sha256"]:
        return VerificationProblem(
            name,
            version,
            relpath,
            ProblemKind.HASH_MISMATCH,
            f"{relpath} sha256 is {actual_sha256}, but the manifest records "
            f"{entry['sha256']}; {RESTORE_HINT}",
        )
    return None


def verify_version_dir(
    version_dir: Path, name: str, version: int
) -> tuple[dict[str, Any] | None, list[VerificationProblem]]:
    """Check one version: manifest, checksum, file set, sizes and sha256 hashes.

    Returns:
        The parsed manifest (``None`` if unusable) and every problem found.
    """
    manifest, problems = load_manifest(version_dir, name, version)
    if manifest is None:
        return None, problems
    expected: dict[str, dict[str, Any]] = manifest["files"]
    found, scan_problems = _scan_tree(version_dir, name, version)
    problems.extend(scan_problems)
    linked = {problem.file for problem in scan_problems}
    for relpath in sorted(expected):
        if relpath in linked:
            continue
        if relpath not in found:
            problems.append(
                VerificationProblem(
                    name,
                    version,
                    relpath,
                    ProblemKind.MISSING_FILE,
                    f"{relpath} is listed in the manifest but missing; {RESTORE_HINT}",
                )
            )
            continue
        problem = check_file(version_dir, name, version, relpath, expected[relpath])
        if problem is not None:
            problems.append(problem)
    for relpath in sorted(found - expected.keys() - RESERVED_FILES):
        problems.append(
            VerificationProblem(
                name,
                version,
                relpath,
                ProblemKind.EXTRA_FILE,
                f"{relpath} is not listed in the manifest; remove it, because "
                "published versions never gain files",
            )
        )
    return manifest, problems


def raise_for_problems(
    name: str,
    version: int,
    problems: list[VerificationProblem],
    store_root: Path | None = None,
) -> None:
    """Raise ``IntegrityError`` naming the first problem's file, if any problems."""
    if not problems:
        return
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    store_option = "" if store_root is None else f" --store {store_root}"
    raise IntegrityError(
        f"{name}:{version} failed verification: {first.message}{more}; run "
        f"'gaussprobe models verify {name}:{version}{store_option}' to list "
        "every problem",
        name=name,
        version=version,
        file=first.file,
        problems=problems,
    )
