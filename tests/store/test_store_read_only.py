"""A read-only store performs no write of any kind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import publish_sample, snapshot_tree

from flow.store import ArtifactStore, ModelNotFoundError, ReadOnlyStoreError

REPO_ROOT = Path(__file__).resolve().parents[2]
NOBODY_UID = 65534
NOBODY_GID = 65534


def exercise_reads(store: ArtifactStore) -> dict[str, object]:
    """Call every read method and return what they returned."""
    return {
        "models": store.list_models(),
        "versions": store.list_versions("adult"),
        "aliases": store.aliases("adult"),
        "latest": store.resolve("adult").version,
        "production": store.open("adult@production").version,
        "open_2": store.open("adult:2").manifest["version"],
        "problems": len(store.verify()) + len(store.verify("adult:1")),
    }


@pytest.fixture
def populated_store(store: ArtifactStore, model_file: Path) -> ArtifactStore:
    publish_sample(store, model_file)
    publish_sample(store, model_file)
    store.set_alias("adult", 1, "production")
    return store


def test_reads_change_nothing(populated_store: ArtifactStore) -> None:
    os.chmod(populated_store.root, 0o555)
    before = snapshot_tree(populated_store.root)
    read_only = ArtifactStore(populated_store.root, read_only=True)

    results = exercise_reads(read_only)

    assert results == {
        "models": ["adult"],
        "versions": [1, 2],
        "aliases": {"latest": 2, "production": 1},
        "latest": 2,
        "production": 1,
        "open_2": 2,
        "problems": 0,
    }
    assert snapshot_tree(populated_store.root) == before


def test_reads_skip_lock_file(populated_store: ArtifactStore) -> None:
    lock_file = populated_store.root / "adult" / ".lock"
    lock_file.unlink()
    read_only = ArtifactStore(populated_store.root, read_only=True)
    exercise_reads(read_only)
    assert not lock_file.exists()


def test_writes_rejected(populated_store: ArtifactStore, model_file: Path) -> None:
    before = snapshot_tree(populated_store.root)
    read_only = ArtifactStore(populated_store.root, read_only=True)
    with pytest.raises(ReadOnlyStoreError, match="opened read-only"):
        publish_sample(read_only, model_file)
    with pytest.raises(ReadOnlyStoreError, match="cannot set alias adult@staging"):
        read_only.set_alias("adult", 1, "staging")
    with pytest.raises(ReadOnlyStoreError, match="cannot collect garbage"):
        read_only.gc()
    assert snapshot_tree(populated_store.root) == before


def test_missing_root_not_created(tmp_path: Path) -> None:
    root = tmp_path / "absent"
    read_only = ArtifactStore(root, read_only=True)
    assert read_only.list_models() == []
    assert read_only.verify() == []
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        read_only.resolve("adult")
    assert not root.exists()


@pytest.fixture
def world_readable_copy(populated_store: ArtifactStore) -> Iterator[Path]:
    """Copy the store where an unprivileged user can read but not write it.

    ``tmp_path`` is private to root, so the copy lives in a fresh directory
    under the system temporary directory.
    """
    parent = Path(tempfile.mkdtemp(prefix="gaussprobe-store-ro-"))
    root = parent / "store"
    shutil.copytree(populated_store.root, root, symlinks=True)
    os.chmod(parent, 0o755)
    for directory, _, file_names in os.walk(root):
        os.chmod(directory, 0o555)
        for file_name in file_names:
            os.chmod(Path(directory) / file_name, 0o444)
    try:
        yield root
    finally:
        for directory, _, _ in os.walk(parent):
            os.chmod(directory, 0o755)
        shutil.rmtree(parent)


# Runs as root, imports everything it needs, then drops to the nobody user,
# because the interpreter's own files may not be readable by nobody.
UNPRIVILEGED_READER = """
import json, os, sys, types
from pathlib import Path

package = types.ModuleType("flow")
package.__path__ = [sys.argv[2] + "/flow"]
sys.modules["flow"] = package
sys.path.insert(0, sys.argv[3])
from flow.store import ArtifactStore, PublishError, ReadOnlyStoreError
from test_store_read_only import exercise_reads

os.setgroups([])
os.setgid(int(sys.argv[5]))
os.setuid(int(sys.argv[4]))
root = Path(sys.argv[1])
results = exercise_reads(ArtifactStore(root, read_only=True))
try:
    ArtifactStore(root).publish("adult", {"model.keras": b"x"}, {})
except PublishError as exc:
    results["writable_publish_error"] = type(exc.__cause__).__name__
print(json.dumps(results))
"""


@pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root to switch to an unprivileged user"
)
def test_unprivileged_reader_succeeds(world_readable_copy: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            UNPRIVILEGED_READER,
            str(world_readable_copy),
            str(REPO_ROOT),
            str(Path(__file__).parent),
            str(NOBODY_UID),
            str(NOBODY_GID),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout)
    assert results["versions"] == [1, 2]
    assert results["production"] == 1
    assert results["problems"] == 0
    # A writable store fails there, so the reads above really ran without
    # write permission.
    assert results["writable_publish_error"] == "PermissionError"
