"""Exception hierarchy of the artifact store.

Every error carries the model ``name``, ``version`` and ``file`` it concerns
(``None`` where it does not apply) so callers can report or map them without
parsing messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._verify import VerificationProblem


class StoreError(Exception):
    """Base class of every error raised by ``flow.store``.

    Attributes:
        name: Model name concerned, or ``None``.
        version: Model version concerned, or ``None``.
        file: Path of the file concerned (relative to the version directory,
            or absolute when outside one), or ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        name: str | None = None,
        version: int | None = None,
        file: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.version = version
        self.file = file


class InvalidNameError(StoreError, ValueError):
    """A model name, alias, version, reference or file path is malformed."""


class InvalidManifestError(StoreError, ValueError):
    """The manifest passed to ``publish`` cannot be stored as strict JSON."""


class ModelNotFoundError(StoreError, LookupError):
    """No complete version of the model exists in the store."""


class VersionNotFoundError(StoreError, LookupError):
    """The model exists but the requested version does not."""


class AliasNotFoundError(StoreError, LookupError):
    """The model exists but has no alias of that name."""


class ArtifactFileNotFoundError(StoreError, LookupError):
    """A version's manifest lists no file at the requested path."""


class IntegrityError(StoreError):
    """Stored data does not match its manifest, or the store layout is damaged.

    Attributes:
        problems: Every problem found, in the order the check found them.
    """

    def __init__(
        self,
        message: str,
        *,
        name: str | None = None,
        version: int | None = None,
        file: str | None = None,
        problems: Sequence[VerificationProblem] = (),
    ) -> None:
        super().__init__(message, name=name, version=version, file=file)
        self.problems: tuple[VerificationProblem, ...] = tuple(problems)


class ReadOnlyStoreError(StoreError):
    """A write was requested from a store opened with ``read_only=True``."""


class PublishError(StoreError):
    """Publishing failed with an operating-system error; nothing was published."""
