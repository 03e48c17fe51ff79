"""UTC timestamps written into manifests and alias pointers."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_timestamp() -> str:
    """Return the current UTC time as ISO 8601 with milliseconds, e.g. ``...Z``."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    return now.replace("+00:00", "Z")
