"""Model references (``name``, ``name:3``, ``name@production``) and the store path."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ._errors import InvalidNameError
from ._names import validate_alias, validate_name, validate_version

STORE_ENV_VAR = "GAUSSPROBE_STORE"
DEFAULT_STORE_DIR = "store"
"""Store directory used when ``GAUSSPROBE_STORE`` is unset, relative to the cwd."""


@dataclass(frozen=True)
class ModelRef:
    """Reference to one model version: by number, by alias, or the latest.

    Attributes:
        name: Model name.
        version: Version number, or ``None``.
        alias: Alias name, or ``None``. At most one of ``version`` and
            ``alias`` is set. With neither, the reference means ``latest``.
    """

    name: str
    version: int | None = None
    alias: str | None = None

    def __post_init__(self) -> None:
        validate_name(self.name)
        if self.version is not None and self.alias is not None:
            raise InvalidNameError(
                f"invalid model reference {self.name!r}: give a version "
                f"({self.version}) or an alias ({self.alias!r}), not both",
                name=self.name,
            )
        if self.version is not None:
            object.__setattr__(self, "version", validate_version(self.version))
        if self.alias is not None:
            validate_alias(self.alias)

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


def parse_ref(text: str) -> ModelRef:
    """Parse ``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS`` into a ``ModelRef``.

    Raises:
        InvalidNameError: ``text`` is not one of these forms, or a part is
            invalid.
    """
    if not isinstance(text, str):
        raise InvalidNameError(
            f"invalid model reference {text!r}: expected a string such as "
            f"'adult', 'adult:3' or 'adult@production', got {type(text).__name__}"
        )
    if ":" in text and "@" in text:
        raise InvalidNameError(
            f"invalid model reference {text!r}: use NAME, NAME:VERSION or "
            "NAME@ALIAS, not both ':' and '@'"
        )
    if ":" in text:
        name, _, version = text.partition(":")
        return ModelRef(validate_name(name), version=validate_version(version))
    if "@" in text:
        name, _, alias = text.partition("@")
        return ModelRef(validate_name(name), alias=validate_alias(alias))
    return ModelRef(validate_name(text))


def default_store_path() -> Path:
    """Return ``$GAUSSPROBE_STORE`` if set and non-empty, else ``./store``."""
    configured = os.environ.get(STORE_ENV_VAR, "")
    return Path(configured) if configured else Path(DEFAULT_STORE_DIR)
