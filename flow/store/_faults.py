"""Pause points in the publish path, for crash and race tests only.

Production code never sets these variables. When
``GAUSSPROBE_STORE_FAULT_PAUSE`` names a point and
``GAUSSPROBE_STORE_FAULT_DIR`` names a directory, the publishing process
creates ``<dir>/reached-<point>`` on arrival there, then waits until
``<dir>/resume-<point>`` exists. A test can SIGKILL the process while it
waits (crash at that point) or create the resume file (race at that point).

Points, in publish order:
    ``after_first_file``: one payload file written, others not yet.
    ``after_files_written``: every payload file written and fsynced.
    ``after_manifest_written``: manifest and checksum written, directories
        not yet fsynced.
    ``before_rename``: temporary directory complete and fsynced, version
        number chosen, rename not yet done.
    ``after_rename``: version directory in place, ``latest`` not yet moved.
    ``before_alias_replace``: new alias pointer written to a temporary file,
        not yet renamed over the old one (also reached by ``set_alias``).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

logger = logging.getLogger(__name__)

FAULT_PAUSE_ENV_VAR = "GAUSSPROBE_STORE_FAULT_PAUSE"
FAULT_DIR_ENV_VAR = "GAUSSPROBE_STORE_FAULT_DIR"
FAULT_POINTS = (
    "after_first_file",
    "after_files_written",
    "after_manifest_written",
    "before_rename",
    "after_rename",
    "before_alias_replace",
)
FAULT_MAX_WAIT_SECONDS = 120.0
"""A paused publisher gives up after this long, so a broken test cannot hang."""

FAULT_POLL_SECONDS = 0.01


def fault_point(point: str) -> None:
    """Pause here if the fault-test variables select ``point``; otherwise return.

    Raises:
        TimeoutError: The resume file did not appear within
            ``FAULT_MAX_WAIT_SECONDS``.
    """
    if os.environ.get(FAULT_PAUSE_ENV_VAR) != point:
        return
    fault_dir = os.environ.get(FAULT_DIR_ENV_VAR)
    if not fault_dir:
        return
    logger.warning("publish paused at fault point %s", point)
    (Path(fault_dir) / f"reached-{point}").touch()
    resume_file = Path(fault_dir) / f"resume-{point}"
    deadline = time.monotonic() + FAULT_MAX_WAIT_SECONDS
    while not resume_file.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"fault point {point} waited {FAULT_MAX_WAIT_SECONDS} s for "
                f"{resume_file}; unset {FAULT_PAUSE_ENV_VAR} outside fault tests"
            )
        time.sleep(FAULT_POLL_SECONDS)
