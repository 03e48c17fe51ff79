"""Builders of client-side errors and notes that both clients raise."""

from __future__ import annotations

import httpx

from gaussprobe_client._errors import (
    ProbeConnectionError,
    ProbeError,
    ProbeTimeoutError,
)

__all__ = ["chunk_note", "diagnostics_batch_error", "transport_error"]


def transport_error(
    exc: httpx.TransportError, method: str, url: str, attempts: int
) -> ProbeError:
    """Translate an httpx transport error after the last attempt."""
    tried = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    if isinstance(exc, httpx.TimeoutException):
        phase = "connecting" if isinstance(exc, httpx.ConnectTimeout) else "waiting"
        return ProbeTimeoutError(
            f"{method} {url} timed out while {phase} ({type(exc).__name__}: "
            f"{exc}) after {tried}; raise the client's timeout or send "
            "smaller batches (max_chunk_rows)",
            code="timeout",
        )
    return ProbeConnectionError(
        f"{method} {url} failed after {tried}: {type(exc).__name__}: {exc}. "
        "Check that the service runs (gaussprobe serve) and the base URL",
        code="connection_error",
    )


def chunk_note(start: int, rows: int, total: int) -> str:
    """Note added to an error raised for one chunk of a split batch."""
    return (
        f"The batch of {total} rows was split; the failing request carried rows "
        f"{start} to {start + rows - 1}, and row numbers in the message count "
        "from the first of them."
    )


def diagnostics_batch_error(rows: int, max_rows: int) -> ValueError:
    """Error for a diagnostics batch over the server's row limit."""
    return ValueError(
        f"diagnostics(x) computes statistics over the whole batch, so it cannot "
        f"be split, and x has {rows} rows while the server takes at most "
        f"{max_rows} (max_batch_rows); pass a random subsample, e.g. "
        f"x[np.random.default_rng(0).choice(len(x), {max_rows}, replace=False)]"
    )
