"""Validation of model names, aliases, versions and artifact file paths.

Every value that becomes a path component passes through here first, so no
name, alias, version or file path can escape the store root. The patterns
admit only ASCII letters, digits, ``.``, ``_`` and ``-``. They never admit a
separator or a leading dot, which excludes ``.``, ``..`` and hidden files.
"""

from __future__ import annotations

import re

from ._errors import InvalidNameError

MAX_NAME_LENGTH = 64
"""Maximum length of a model name or alias, in characters."""

MAX_VERSION = 999_999_999
"""Largest version number the store assigns or accepts."""

MAX_FILE_COMPONENT_LENGTH = 128
"""Maximum length of one component of an artifact file path."""

MAX_FILE_PATH_DEPTH = 8
"""Maximum number of components of an artifact file path."""

LATEST_ALIAS = "latest"
"""Alias that ``publish`` moves to each new version; users cannot set it."""

MANIFEST_FILE = "manifest.json"
MANIFEST_CHECKSUM_FILE = "manifest.sha256"
RESERVED_FILES = frozenset({MANIFEST_FILE, MANIFEST_CHECKSUM_FILE})
"""Top-level file names that the store writes itself."""

# ``re.fullmatch`` with explicit ASCII classes: ``$`` would accept a trailing
# newline and ``\d`` would accept non-ASCII digits.
_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")
_VERSION_PATTERN = re.compile(r"[1-9][0-9]*")
_FILE_COMPONENT_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


def validate_name(name: object, *, kind: str = "model name") -> str:
    """Return ``name`` if it is a valid model name or alias.

    Args:
        name: Candidate value.
        kind: Word used in the error message, such as ``"alias"``.

    Raises:
        InvalidNameError: ``name`` is not a string matching
            ``[a-z0-9][a-z0-9._-]*`` of at most 64 characters.
    """
    if not isinstance(name, str):
        raise InvalidNameError(
            f"invalid {kind} {name!r}: expected a string, got {type(name).__name__}"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(
            f"invalid {kind} {name[:MAX_NAME_LENGTH]!r}... ({len(name)} characters): "
            f"use at most {MAX_NAME_LENGTH} characters"
        )
    if _NAME_PATTERN.fullmatch(name) is None:
        raise InvalidNameError(
            f"invalid {kind} {name!r}: use lowercase ASCII letters, digits, '.', "
            "'_' and '-', starting with a letter or digit "
            "(pattern [a-z0-9][a-z0-9._-]*)"
        )
    return name


def validate_alias(alias: object) -> str:
    """Return ``alias`` if it is a valid alias name (same rules as model names)."""
    return validate_name(alias, kind="alias")


def validate_version(version: object) -> int:
    """Return ``version`` as an int if it is a valid version number.

    Accepts a positive ``int`` or its canonical decimal string (``"3"``, not
    ``"03"``, ``"+3"`` or ``" 3"``), because a version is also a directory name.

    Raises:
        InvalidNameError: ``version`` is not a positive integer up to
            ``MAX_VERSION``.
    """
    if isinstance(version, str):
        if _VERSION_PATTERN.fullmatch(version) is None:
            raise InvalidNameError(
                f"invalid version {version!r}: use a positive integer written "
                "without sign, spaces or leading zeros, such as 3"
            )
        number = int(version)
    elif isinstance(version, int) and not isinstance(version, bool):
        number = version
    else:
        raise InvalidNameError(
            f"invalid version {version!r}: expected a positive integer, "
            f"got {type(version).__name__}"
        )
    if not 1 <= number <= MAX_VERSION:
        raise InvalidNameError(
            f"invalid version {number}: use an integer from 1 to {MAX_VERSION}"
        )
    return number


def parse_version_dir_name(entry_name: str) -> int | None:
    """Return the version number a directory entry name stands for, else ``None``."""
    if _VERSION_PATTERN.fullmatch(entry_name) is None:
        return None
    number = int(entry_name)
    return number if number <= MAX_VERSION else None


def validate_file_path(relpath: object) -> str:
    """Return ``relpath`` if it is a valid artifact file path.

    A valid path is relative, uses ``/`` as separator and has at most
    ``MAX_FILE_PATH_DEPTH`` components. Each component matches
    ``[A-Za-z0-9_][A-Za-z0-9._-]*`` and has at most
    ``MAX_FILE_COMPONENT_LENGTH`` characters, which excludes ``..``, empty
    components and absolute paths.

    Raises:
        InvalidNameError: ``relpath`` breaks one of these rules.
    """
    if not isinstance(relpath, str):
        raise InvalidNameError(
            f"invalid file path {relpath!r}: expected a string such as "
            f"'report/index.html', got {type(relpath).__name__}"
        )
    components = relpath.split("/")
    if len(components) > MAX_FILE_PATH_DEPTH:
        raise InvalidNameError(
            f"invalid file path {relpath!r}: use at most {MAX_FILE_PATH_DEPTH} "
            "path components"
        )
    for component in components:
        if len(component) > MAX_FILE_COMPONENT_LENGTH:
            raise InvalidNameError(
                f"invalid file path {relpath!r}: component {component[:32]!r}... "
                f"is longer than {MAX_FILE_COMPONENT_LENGTH} characters"
            )
        if _FILE_COMPONENT_PATTERN.fullmatch(component) is None:
            raise InvalidNameError(
                f"invalid file path {relpath!r}: component {component!r} must use "
                "ASCII letters, digits, '.', '_' and '-', must not start with '.' "
                "or '-', and the path must be relative with '/' separators"
            )
    return relpath
