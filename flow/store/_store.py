"""The ``ArtifactStore`` facade: publish, list, resolve, open, verify, aliases."""

from __future__ import annotations

import logging
import math
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._aliases import (
    ALIAS_SUFFIX,
    ALIASES_DIR,
    advance_latest,
    list_alias_names,
    model_lock,
    read_alias,
    write_alias,
)
from ._errors import (
    AliasNotFoundError,
    IntegrityError,
    InvalidNameError,
    ModelNotFoundError,
    ReadOnlyStoreError,
    VersionNotFoundError,
)
from ._gc import DEFAULT_GC_MIN_AGE_SECONDS, remove_stale_temp_entries
from ._names import (
    LATEST_ALIAS,
    MANIFEST_FILE,
    parse_version_dir_name,
    validate_alias,
    validate_name,
    validate_version,
)
from ._publish import FileSource, publish_version
from ._refs import ModelRef, default_store_path, parse_ref
from ._verify import (
    ProblemKind,
    VerificationProblem,
    load_manifest,
    raise_for_problems,
    verify_version_dir,
)
from ._version import ArtifactVersion

logger = logging.getLogger(__name__)


def _is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _is_regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


class ArtifactStore:
    """Versioned, immutable model artifacts under ``<root>/<name>/<version>/``.

    Reads never write: with ``read_only=True`` every method that would write
    raises ``ReadOnlyStoreError`` and no lock file or directory is created,
    so the store works on a read-only mount. Symbolic links inside the store
    are never followed; the root itself may be a link.

    Args:
        root: Store directory; ``None`` means ``default_store_path()``.
        read_only: Reject ``publish``, ``set_alias`` and ``gc``.
    """

    def __init__(
        self, root: str | os.PathLike[str] | None = None, *, read_only: bool = False
    ) -> None:
        self._root = Path(root) if root is not None else default_store_path()
        self._read_only = read_only

    def __repr__(self) -> str:
        return f"ArtifactStore({str(self._root)!r}, read_only={self._read_only})"

    @property
    def root(self) -> Path:
        """Store directory."""
        return self._root

    @property
    def read_only(self) -> bool:
        """Whether write methods are rejected."""
        return self._read_only

    # Writes -----------------------------------------------------------------

    def _require_writable(self, action: str, name: str | None = None) -> None:
        if self._read_only:
            raise ReadOnlyStoreError(
                f"cannot {action}: the store at {self._root} was opened read-only; "
                "open it with read_only=False on a writable path",
                name=name,
            )

    def publish(
        self,
        name: str,
        files: Mapping[str, FileSource],
        manifest: Mapping[str, Any],
    ) -> ArtifactVersion:
        """Publish ``files`` as the next version of ``name`` and move ``latest``.

        Args:
            name: Model name, ``[a-z0-9][a-z0-9._-]*``, at most 64 characters.
            files: Relative path to content: a ``Path`` to copy or ``bytes``,
                such as ``{"model.keras": Path(...), "report/index.html": b"..."}``.
            manifest: JSON-serializable fields to store. The store adds
                ``name``, ``version``, ``created_at`` and ``files``
                (``{relpath: {"sha256", "bytes"}}``).

        Returns:
            The new version. Concurrent publishers always get distinct
            versions.

        Raises:
            ReadOnlyStoreError: The store is read-only.
            InvalidNameError, InvalidManifestError, ValueError: Invalid input.
            PublishError: An OS error stopped publication; nothing was
                published.
        """
        self._require_writable(f"publish model {name!r}", name)
        version, path, stored = publish_version(self._root, name, files, manifest)
        return ArtifactVersion(name, version, path, stored)

    def set_alias(self, name: str, version: int | str, alias: str) -> int | None:
        """Point ``alias`` at ``version`` of ``name`` with an atomic replace.

        Returns:
            The version the alias pointed to before, or ``None``.

        Raises:
            ReadOnlyStoreError: The store is read-only.
            InvalidNameError: Invalid name, version or alias, or the alias is
                ``latest``, which only ``publish`` moves.
            ModelNotFoundError, VersionNotFoundError: No such version.
        """
        validate_name(name)
        number = validate_version(version)
        validate_alias(alias)
        self._require_writable(f"set alias {name}@{alias}", name)
        if alias == LATEST_ALIAS:
            raise InvalidNameError(
                f"invalid alias {alias!r}: publish moves it to each new version; "
                "choose another alias such as 'production'",
                name=name,
            )
        model_dir = self._model_dir(name)
        self._require_version(model_dir, name, number)
        with model_lock(model_dir):
            previous = read_alias(model_dir, name, alias)
            write_alias(model_dir, name, alias, number)
        return previous

    def gc(self, min_age_seconds: float = DEFAULT_GC_MIN_AGE_SECONDS) -> list[Path]:
        """Remove temporary entries of dead publishers and repair ``latest``.

        Removes ``.tmp-*`` entries not modified for ``min_age_seconds``, and
        moves ``latest`` forward to the newest complete version when a
        publisher died after its rename. Never removes or changes a
        published version or a user alias.

        Returns:
            The removed paths, sorted.

        Raises:
            ReadOnlyStoreError: The store is read-only.
        """
        self._require_writable("collect garbage")
        if not math.isfinite(min_age_seconds) or min_age_seconds < 0:
            raise ValueError(
                f"invalid min_age_seconds {min_age_seconds!r}: use a finite number "
                "of seconds >= 0"
            )
        model_dirs = [self._root / name for name in self._model_dir_names()]
        removed = remove_stale_temp_entries(model_dirs, min_age_seconds)
        for name in self.list_models():
            advance_latest(self._root / name, name, self.list_versions(name)[-1])
        return removed

    # Reads ------------------------------------------------------------------

    def _model_dir_names(self) -> list[str]:
        try:
            entries = os.listdir(self._root)
        except FileNotFoundError:
            return []
        names: list[str] = []
        for entry in entries:
            try:
                validate_name(entry)
            except InvalidNameError:
                continue
            if _is_real_dir(self._root / entry):
                names.append(entry)
            elif os.path.islink(self._root / entry):
                logger.warning("ignoring symbolic link %s", self._root / entry)
        return sorted(names)

    def _model_dir(self, name: str) -> Path:
        validate_name(name)
        model_dir = self._root / name
        try:
            info = os.lstat(model_dir)
        except FileNotFoundError:
            raise self._model_not_found(name) from None
        if not stat.S_ISDIR(info.st_mode):
            raise IntegrityError(
                f"{model_dir} is not a directory (a symbolic link or a file), and "
                "the store never follows links; move it away",
                name=name,
            )
        return model_dir

    def _model_not_found(self, name: str) -> ModelNotFoundError:
        if not os.path.isdir(self._root):
            hint = (
                f"the store directory {self._root} does not exist; pass --store "
                "or set GAUSSPROBE_STORE"
            )
        else:
            available = ", ".join(self.list_models()) or "none"
            hint = f"models in {self._root}: {available}"
        return ModelNotFoundError(f"model {name!r} not found; {hint}", name=name)

    def _complete_versions(self, model_dir: Path) -> list[int]:
        versions: list[int] = []
        for entry in os.listdir(model_dir):
            number = parse_version_dir_name(entry)
            if number is None:
                continue
            version_dir = model_dir / entry
            if _is_real_dir(version_dir) and _is_regular_file(
                version_dir / MANIFEST_FILE
            ):
                versions.append(number)
        return sorted(versions)

    def list_models(self) -> list[str]:
        """Return the names of models with at least one complete version, sorted."""
        return [
            name
            for name in self._model_dir_names()
            if self._complete_versions(self._root / name)
        ]

    def list_versions(self, name: str) -> list[int]:
        """Return the complete versions of ``name``, ascending.

        Raises:
            ModelNotFoundError: The model has no complete version.
        """
        versions = self._complete_versions(self._model_dir(name))
        if not versions:
            raise self._model_not_found(name)
        return versions

    def aliases(self, name: str) -> dict[str, int]:
        """Return every alias of ``name`` and its version, including ``latest``.

        ``latest`` comes from its pointer file, or is the highest complete
        version when the pointer is missing.

        Raises:
            ModelNotFoundError: The model has no complete version.
            IntegrityError: An alias pointer file is damaged.
        """
        model_dir = self._model_dir(name)
        versions = self.list_versions(name)
        result: dict[str, int] = {}
        for alias in list_alias_names(model_dir):
            version = read_alias(model_dir, name, alias)
            if version is not None:
                result[alias] = version
        result.setdefault(LATEST_ALIAS, versions[-1])
        return dict(sorted(result.items()))

    def _require_version(self, model_dir: Path, name: str, version: int) -> Path:
        version_dir = model_dir / str(version)
        try:
            info = os.lstat(version_dir)
        except FileNotFoundError:
            info = None
        if info is not None and not stat.S_ISDIR(info.st_mode):
            raise IntegrityError(
                f"{version_dir} is not a directory (a symbolic link or a file), and "
                "the store never follows links; move it away",
                name=name,
                version=version,
            )
        if info is None or not _is_regular_file(version_dir / MANIFEST_FILE):
            versions = self.list_versions(name)
            raise VersionNotFoundError(
                f"version {version} of model {name!r} not found; available "
                f"versions: {', '.join(map(str, versions))}",
                name=name,
                version=version,
            )
        return version_dir

    def _resolve_number(self, ref: ModelRef) -> int:
        model_dir = self._model_dir(ref.name)
        if ref.version is not None:
            return ref.version
        alias = ref.alias if ref.alias is not None else LATEST_ALIAS
        version = read_alias(model_dir, ref.name, alias)
        if version is not None:
            return version
        if alias == LATEST_ALIAS:
            return self.list_versions(ref.name)[-1]
        known = ", ".join(self.aliases(ref.name))
        raise AliasNotFoundError(
            f"alias {alias!r} of model {ref.name!r} not found; aliases: {known}. "
            f"Create it with 'gaussprobe models alias {ref.name} VERSION {alias}'",
            name=ref.name,
        )

    def _locate(self, ref: str | ModelRef) -> tuple[ModelRef, int, Path]:
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        if not isinstance(parsed, ModelRef):
            raise InvalidNameError(
                f"invalid model reference {ref!r}: pass a string such as "
                "'adult:3' or a ModelRef"
            )
        version = self._resolve_number(parsed)
        model_dir = self._model_dir(parsed.name)
        try:
            version_dir = self._require_version(model_dir, parsed.name, version)
        except VersionNotFoundError as exc:
            if parsed.version is not None:
                raise
            alias = parsed.alias or LATEST_ALIAS
            alias_file = model_dir / ALIASES_DIR / f"{alias}{ALIAS_SUFFIX}"
            raise VersionNotFoundError(
                f"alias {parsed.name}@{alias} points to version {version}, which "
                f"does not exist ({exc.message}); point the alias at an existing "
                f"version or remove {alias_file}",
                name=parsed.name,
                version=version,
            ) from exc
        return parsed, version, version_dir

    def resolve(self, ref: str | ModelRef) -> ArtifactVersion:
        """Find the version a reference names and read its manifest.

        Checks the manifest against ``manifest.sha256`` but hashes no payload
        file; use ``open`` before loading anything.

        Args:
            ref: ``"name"`` (latest), ``"name:3"``, ``"name@alias"`` or a
                ``ModelRef``.

        Raises:
            InvalidNameError: Malformed reference.
            ModelNotFoundError, VersionNotFoundError, AliasNotFoundError: The
                reference does not resolve.
            IntegrityError: The manifest or an alias pointer is damaged.
        """
        parsed, version, version_dir = self._locate(ref)
        manifest, problems = load_manifest(version_dir, parsed.name, version)
        raise_for_problems(parsed.name, version, problems, self._root)
        if manifest is None:  # load_manifest reports a problem whenever it fails
            raise IntegrityError(
                f"manifest of {parsed.name}:{version} is unusable",
                name=parsed.name,
                version=version,
            )
        return ArtifactVersion(parsed.name, version, version_dir, manifest)

    def open(self, ref: str | ModelRef) -> ArtifactVersion:
        """Resolve ``ref`` and verify every file's size and sha256 first.

        Raises:
            IntegrityError: A file is changed, missing, extra or a link. The
                error's ``file`` names the first one; ``problems`` lists all.
            Everything ``resolve`` raises.
        """
        version = self.resolve(ref)
        version.verify()
        return version

    def verify(self, ref: str | ModelRef | None = None) -> list[VerificationProblem]:
        """Re-hash stored files and check aliases; return every problem found.

        Args:
            ref: ``None`` checks the whole store. A bare name checks all
                versions and aliases of that model. ``name:3`` or
                ``name@alias`` checks that one version.

        Raises:
            InvalidNameError: Malformed reference.
            ModelNotFoundError, VersionNotFoundError, AliasNotFoundError: The
                reference does not resolve.
        """
        if ref is None:
            problems: list[VerificationProblem] = []
            for name in self._model_dir_names():
                problems.extend(self._verify_model(name))
            problems.extend(self._linked_model_problems())
            return problems
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        if parsed.version is None and parsed.alias is None:
            self._model_dir(parsed.name)
            return self._verify_model(parsed.name)
        try:
            _, version, version_dir = self._locate(parsed)
        except IntegrityError as exc:
            return _problems_from_error(parsed.name, exc)
        _, problems = verify_version_dir(version_dir, parsed.name, version)
        return problems

    def _linked_model_problems(self) -> list[VerificationProblem]:
        problems: list[VerificationProblem] = []
        try:
            entries = sorted(os.listdir(self._root))
        except FileNotFoundError:
            return []
        for entry in entries:
            if os.path.islink(self._root / entry):
                problems.append(
                    VerificationProblem(
                        entry,
                        None,
                        None,
                        ProblemKind.SYMLINK,
                        f"{self._root / entry} is a symbolic link, which the store "
                        "never follows; remove it",
                    )
                )
        return problems

    def _verify_model(self, name: str) -> list[VerificationProblem]:
        model_dir = self._model_dir(name)
        problems: list[VerificationProblem] = []
        for entry in sorted(os.listdir(model_dir), key=_version_sort_key):
            number = parse_version_dir_name(entry)
            if number is None:
                continue
            _, version_problems = verify_version_dir(model_dir / entry, name, number)
            problems.extend(version_problems)
        complete = set(self._complete_versions(model_dir))
        for alias in list_alias_names(model_dir):
            relpath = f"{ALIASES_DIR}/{alias}{ALIAS_SUFFIX}"
            try:
                version = read_alias(model_dir, name, alias)
            except IntegrityError as exc:
                problems.extend(_problems_from_error(name, exc))
                continue
            if version is not None and version not in complete:
                problems.append(
                    VerificationProblem(
                        name,
                        None,
                        relpath,
                        ProblemKind.DANGLING_ALIAS,
                        f"alias {name}@{alias} points to version {version}, which "
                        "does not exist; point it at an existing version",
                    )
                )
        return problems


def _version_sort_key(entry: str) -> tuple[int, str]:
    number = parse_version_dir_name(entry)
    return (number if number is not None else -1, entry)


def _problems_from_error(name: str, exc: IntegrityError) -> list[VerificationProblem]:
    if exc.problems:
        return list(exc.problems)
    kind = ProblemKind.INVALID_ALIAS if exc.file else ProblemKind.NOT_A_DIRECTORY
    return [VerificationProblem(name, exc.version, exc.file, kind, exc.message)]
