"""Logging set-up shared by the command line and worker processes."""

from __future__ import annotations

import logging
import sys

__all__ = ["LOG_FORMAT", "configure_logging"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """Send log records at ``level`` and above to stderr.

    This does nothing when the root logger already has handlers, so an
    application that configured logging itself keeps its set-up. Worker
    processes started by uvicorn are fresh interpreters, and this gives them
    the same output as the main process.
    """
    root = logging.getLogger()
    if root.handlers:
        return
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr)
