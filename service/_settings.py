"""Service settings read from ``GAUSSPROBE_*`` environment variables."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["ENV_PREFIX", "Settings"]

ENV_PREFIX = "GAUSSPROBE_"

DEFAULT_STORE = "./store"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_WORKERS = 1
DEFAULT_MAX_BATCH_ROWS = 262_144
DEFAULT_MAX_BODY_BYTES = 268_435_456
# Every bucket: 3 kernels x 4 buckets. Two programs compile before the model
# is ready and the rest while it serves (docs/service.md).
DEFAULT_WARMUP_MAX_ROWS = DEFAULT_MAX_BATCH_ROWS
DEFAULT_MAX_JACOBIAN_VALUES = 33_554_432
DEFAULT_COMPUTE_THREADS = 2
DEFAULT_DRAIN_GRACE_SECONDS = 1.0
DEFAULT_DRAIN_TIMEOUT_SECONDS = 30.0
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
MAX_PORT = 65_535

_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """Configuration of one service process.

    Every field has an environment variable ``GAUSSPROBE_<FIELD>`` (upper
    case); :meth:`from_env` reads them and the ``gaussprobe serve`` flags
    override them.
    """

    store: Path = Path(DEFAULT_STORE)
    models: tuple[str, ...] = ()
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = DEFAULT_WORKERS
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    api_key: str | None = dataclasses.field(default=None, repr=False)
    log_level: str = "info"
    warmup_max_rows: int = DEFAULT_WARMUP_MAX_ROWS
    ready_after_warmup: bool = False
    max_jacobian_values: int = DEFAULT_MAX_JACOBIAN_VALUES
    compute_threads: int = DEFAULT_COMPUTE_THREADS
    drain_grace_seconds: float = DEFAULT_DRAIN_GRACE_SECONDS
    drain_timeout_seconds: float = DEFAULT_DRAIN_TIMEOUT_SECONDS
    access_log: bool = True
    compilation_cache: Path | None = None
    install_signal_handlers: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "store", Path(self.store))
        if self.compilation_cache is not None:
            object.__setattr__(self, "compilation_cache", Path(self.compilation_cache))
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "log_level", self.log_level.lower())
        _require_range("port", self.port, 0, MAX_PORT)
        for name in (
            "workers",
            "max_batch_rows",
            "max_body_bytes",
            "warmup_max_rows",
            "max_jacobian_values",
            "compute_threads",
        ):
            _require_range(name, getattr(self, name), 1, None)
        for name in ("drain_grace_seconds", "drain_timeout_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"{_env_name(name)}={getattr(self, name)!r} is negative; "
                    "set it to 0 or more seconds"
                )
        if self.log_level not in LOG_LEVELS:
            raise ValueError(
                f"{_env_name('log_level')}={self.log_level!r} is not a log level; "
                f"use one of {', '.join(LOG_LEVELS)}"
            )
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError(
                f"{_env_name('api_key')} is set but empty; unset it to disable "
                "authentication or set a non-empty key"
            )
        for ref in self.models:
            if not ref.strip():
                raise ValueError(
                    f"{_env_name('models')} contains an empty model reference; "
                    "use comma-separated refs such as 'adult,credit:3,iris@production'"
                )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``GAUSSPROBE_*`` variables.

        Args:
            environ: Variables to read; ``os.environ`` when None.

        Raises:
            ValueError: A variable contains a value of the wrong type or range; the
                message names the variable.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            if field.name == "install_signal_handlers":
                continue
            raw = env.get(_env_name(field.name))
            if raw is None or (raw == "" and field.name != "api_key"):
                continue
            values[field.name] = _parse_field(field.name, raw)
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """Render the settings as ``GAUSSPROBE_*`` variables for worker processes."""
        env: dict[str, str] = {}
        for field in dataclasses.fields(self):
            if field.name == "install_signal_handlers":
                continue
            value = getattr(self, field.name)
            if value is None:
                continue
            if field.name == "models":
                env[_env_name(field.name)] = ",".join(value)
            elif isinstance(value, bool):
                env[_env_name(field.name)] = "true" if value else "false"
            else:
                env[_env_name(field.name)] = str(value)
        return env

    def replace(self, **changes: object) -> Settings:
        """Return a copy with ``changes`` applied and validated."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def _require_range(name: str, value: object, low: int, high: int | None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{_env_name(name)}={value!r} is not an integer")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ValueError(f"{_env_name(name)}={value!r} is out of range; use {bound}")


def _parse_field(name: str, raw: str) -> object:
    field_types = {f.name: f.type for f in dataclasses.fields(Settings)}
    kind = field_types[name]
    text = raw.strip()
    if name == "models":
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if name in ("store", "compilation_cache"):
        return Path(text)
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(
                f"{_env_name(name)}={raw!r} is not an integer; set a whole number"
            ) from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError(
                f"{_env_name(name)}={raw!r} is not a number; set seconds as a number"
            ) from None
    if kind == "bool":
        lowered = text.lower()
        if lowered in _TRUE_WORDS:
            return True
        if lowered in _FALSE_WORDS:
            return False
        raise ValueError(
            f"{_env_name(name)}={raw!r} is not a boolean; use true or false"
        )
    return raw
