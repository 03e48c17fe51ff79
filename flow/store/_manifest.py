"""Manifest normalization, deterministic serialization and parsing."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from ._errors import InvalidManifestError
from ._names import validate_file_path

STORE_FIELDS = ("created_at", "files", "name", "version")
"""Manifest keys the store sets itself; ``publish`` rejects them from callers."""

_SHA256_HEX_PATTERN = re.compile(r"[0-9a-f]{64}")


def normalize_manifest(value: object, path: str = "manifest") -> Any:
    """Return a copy of ``value`` made of plain JSON types only.

    Accepts dicts with string keys, lists, tuples, str, bool, None, int and
    finite floats. NumPy scalars and arrays (anything with ``tolist`` and
    ``dtype``) are converted with ``tolist()``.

    Raises:
        InvalidManifestError: A value is not representable in strict JSON
            (NaN, infinity, a non-string key or an unknown type). The message
            names the key path, such as ``manifest['diagnostics']['mean'][2]``.
    """
    if hasattr(value, "tolist") and hasattr(value, "dtype"):
        return normalize_manifest(value.tolist(), path)
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidManifestError(
                f"invalid manifest value {value!r} at {path}: strict JSON has no "
                "NaN or infinity, so store null or a string instead"
            )
        return float(value)
    if isinstance(value, Mapping):
        normalized: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidManifestError(
                    f"invalid manifest key {key!r} at {path}: JSON object keys "
                    f"must be strings, got {type(key).__name__}"
                )
            normalized[key] = normalize_manifest(item, f"{path}[{key!r}]")
        return normalized
    if isinstance(value, list | tuple):
        return [
            normalize_manifest(item, f"{path}[{index}]")
            for index, item in enumerate(value)
        ]
    raise InvalidManifestError(
        f"invalid manifest value at {path}: {type(value).__name__} is not a JSON "
        "type; convert it to a dict, list, str, int, float, bool or None"
    )


def serialize_manifest(manifest: Mapping[str, Any]) -> bytes:
    """Return the canonical manifest bytes: sorted keys, 2-space indent, ASCII.

    The same manifest always yields the same bytes.
    """
    text = json.dumps(
        manifest, sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False
    )
    return (text + "\n").encode("ascii")


def checksum_line(manifest_sha256: str, manifest_file: str) -> bytes:
    """Return a ``sha256sum``-format line, so ``sha256sum -c`` can check it too."""
    return f"{manifest_sha256}  {manifest_file}\n".encode("ascii")


def parse_checksum_line(data: bytes) -> str | None:
    """Return the digest of a ``sha256sum``-format line, or ``None`` if malformed."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    digest = text.split(" ", 1)[0]
    return digest if _SHA256_HEX_PATTERN.fullmatch(digest) else None


def parse_manifest(data: bytes) -> dict[str, Any]:
    """Parse stored manifest bytes and check the fields the store relies on.

    Returns:
        The manifest as a dict.

    Raises:
        ValueError: The bytes are not a JSON object, or ``name``, ``version``
            or ``files`` is missing or malformed. The message names the field.
    """
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"manifest is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ValueError(
            f"manifest is a JSON {type(manifest).__name__}, expected an object"
        )
    if not isinstance(manifest.get("name"), str):
        raise ValueError("manifest field 'name' is missing or not a string")
    version = manifest.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError("manifest field 'version' is missing or not an integer")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ValueError("manifest field 'files' is missing or not an object")
    for relpath, entry in files.items():
        validate_file_path(relpath)
        if not isinstance(entry, dict):
            raise ValueError(f"manifest entry for file {relpath!r} is not an object")
        digest = entry.get("sha256")
        if not isinstance(digest, str) or not _SHA256_HEX_PATTERN.fullmatch(digest):
            raise ValueError(
                f"manifest entry for file {relpath!r} has no valid 'sha256' "
                "(64 lowercase hex digits)"
            )
        size = entry.get("bytes")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(
                f"manifest entry for file {relpath!r} has no valid 'bytes' "
                "(a non-negative integer)"
            )
    return manifest
