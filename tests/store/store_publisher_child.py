"""Publisher process for crash and concurrency tests.

Usage: ``python store_publisher_child.py ROOT NAME COUNT [START_FILE]``.
Publishes COUNT versions of NAME, each with content unique to this process,
and prints the assigned versions as a JSON list. With START_FILE, waits until
that file exists first, so several processes start publishing together. The
fault-test variables of ``flow.store._faults`` apply.
"""

from __future__ import annotations

import json
import os
import sys
import time
import types
from pathlib import Path

# flow.store needs nothing from the flow package itself, whose __init__
# imports keras (several seconds per process). A bare package module lets
# many short-lived publishers start quickly.
_flow_package = types.ModuleType("flow")
_flow_package.__path__ = [str(Path(__file__).resolve().parents[2] / "flow")]
sys.modules.setdefault("flow", _flow_package)

from flow.store import ArtifactStore  # noqa: E402

START_TIMEOUT_SECONDS = 60.0


def main() -> None:
    root, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if len(sys.argv) > 4:
        start_file = Path(sys.argv[4])
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not start_file.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"start file {start_file} never appeared")
            time.sleep(0.001)
    store = ArtifactStore(root)
    versions = []
    for index in range(count):
        marker = f"pid={os.getpid()} index={index}\n".encode()
        files = {
            "model.keras": marker * 4096,
            "report/index.html": b"<html>" + marker + b"</html>",
        }
        manifest = {"publisher_pid": os.getpid(), "publisher_index": index}
        versions.append(store.publish(name, files, manifest).version)
    print(json.dumps(versions), flush=True)


if __name__ == "__main__":
    main()
