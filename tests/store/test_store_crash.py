"""Publishers killed with SIGKILL at each step, and concurrent publishers.

Child processes publish into a real store. The fault variables of
``flow.store._faults`` pause a child at a named step, so the test can kill it
there or let another publisher overtake it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from store_helpers import publish_sample

from flow.store import LATEST_ALIAS, ArtifactStore
from flow.store._faults import FAULT_DIR_ENV_VAR, FAULT_PAUSE_ENV_VAR

REPO_ROOT = Path(__file__).resolve().parents[2]
CHILD_SCRIPT = Path(__file__).with_name("store_publisher_child.py")
REACH_TIMEOUT_SECONDS = 60.0
CHILD_TIMEOUT_SECONDS = 120.0


def start_publisher(
    store_root: Path,
    count: int = 1,
    pause_at: str | None = None,
    fault_dir: Path | None = None,
    start_file: Path | None = None,
) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    env.pop(FAULT_PAUSE_ENV_VAR, None)
    env.pop(FAULT_DIR_ENV_VAR, None)
    if pause_at is not None and fault_dir is not None:
        env[FAULT_PAUSE_ENV_VAR] = pause_at
        env[FAULT_DIR_ENV_VAR] = str(fault_dir)
    command = [sys.executable, str(CHILD_SCRIPT), str(store_root), "adult", str(count)]
    if start_file is not None:
        command.append(str(start_file))
    return subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_reached(
    process: subprocess.Popen[str], fault_dir: Path, point: str
) -> None:
    marker = fault_dir / f"reached-{point}"
    deadline = time.monotonic() + REACH_TIMEOUT_SECONDS
    while not marker.exists():
        if process.poll() is not None:
            _, stderr = process.communicate()
            pytest.fail(f"publisher exited before {point}: {stderr}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"publisher did not reach {point}")
        time.sleep(0.01)


def finish(process: subprocess.Popen[str]) -> list[int]:
    stdout, stderr = process.communicate(timeout=CHILD_TIMEOUT_SECONDS)
    assert process.returncode == 0, stderr
    versions: list[int] = json.loads(stdout)
    return versions


def temp_entries(directory: Path) -> list[str]:
    return sorted(entry for entry in os.listdir(directory) if entry.startswith(".tmp-"))


@pytest.mark.parametrize(
    ("point", "published"),
    [
        pytest.param("after_first_file", False, id="after-first-file"),
        pytest.param("after_files_written", False, id="after-files-written"),
        pytest.param("after_manifest_written", False, id="after-manifest-written"),
        pytest.param("before_rename", False, id="before-rename"),
        pytest.param("after_rename", True, id="after-rename"),
        pytest.param("before_alias_replace", True, id="before-alias-replace"),
    ],
)
def test_sigkill_leaves_complete_versions(
    store: ArtifactStore,
    model_file: Path,
    tmp_path: Path,
    point: str,
    published: bool,
) -> None:
    publish_sample(store, model_file)
    fault_dir = tmp_path / "fault"
    fault_dir.mkdir()
    process = start_publisher(store.root, pause_at=point, fault_dir=fault_dir)
    wait_until_reached(process, fault_dir, point)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=CHILD_TIMEOUT_SECONDS)
    assert process.returncode == -signal.SIGKILL

    expected_versions = [1, 2] if published else [1]
    assert store.list_versions("adult") == expected_versions
    assert store.verify() == []
    assert store.aliases("adult") == {LATEST_ALIAS: 1}
    assert store.open("adult").version == 1
    if published:
        assert store.open("adult:2").manifest["publisher_index"] == 0
        assert temp_entries(store.root / "adult") == []
    else:
        assert len(temp_entries(store.root / "adult")) == 1
    if point == "before_alias_replace":
        assert len(temp_entries(store.root / "adult" / "aliases")) == 1

    removed = store.gc(min_age_seconds=0)

    assert len(removed) == 1 + (point == "before_alias_replace") - published
    assert temp_entries(store.root / "adult") == []
    assert temp_entries(store.root / "adult" / "aliases") == []
    assert store.aliases("adult") == {LATEST_ALIAS: expected_versions[-1]}
    next_version = publish_sample(store, model_file)
    assert next_version.version == expected_versions[-1] + 1
    assert store.verify() == []


def test_overtaken_publisher_takes_next_version(
    store: ArtifactStore, model_file: Path, tmp_path: Path
) -> None:
    publish_sample(store, model_file)
    fault_dir = tmp_path / "fault"
    fault_dir.mkdir()
    process = start_publisher(store.root, pause_at="before_rename", fault_dir=fault_dir)
    wait_until_reached(process, fault_dir, "before_rename")
    # The child chose version 2 and wrote it into its manifest; take it first.
    overtaking = publish_sample(store, model_file)
    (fault_dir / "resume-before_rename").touch()
    child_versions = finish(process)

    assert overtaking.version == 2
    assert child_versions == [3]
    assert store.list_versions("adult") == [1, 2, 3]
    assert store.verify() == []
    assert "publisher_pid" not in store.open("adult:2").manifest
    assert store.open("adult:3").manifest["version"] == 3
    assert store.aliases("adult") == {LATEST_ALIAS: 3}


def test_slow_publisher_keeps_latest_forward(
    store: ArtifactStore, model_file: Path, tmp_path: Path
) -> None:
    publish_sample(store, model_file)
    fault_dir = tmp_path / "fault"
    fault_dir.mkdir()
    process = start_publisher(store.root, pause_at="after_rename", fault_dir=fault_dir)
    wait_until_reached(process, fault_dir, "after_rename")
    overtaking = publish_sample(store, model_file)
    assert store.aliases("adult") == {LATEST_ALIAS: 3}
    (fault_dir / "resume-after_rename").touch()
    child_versions = finish(process)

    assert child_versions == [2]
    assert overtaking.version == 3
    assert store.aliases("adult") == {LATEST_ALIAS: 3}
    assert store.verify() == []


PUBLISHER_PROCESSES = 4
PUBLISHES_PER_PROCESS = 6


def test_concurrent_publishers_get_distinct_versions(
    store: ArtifactStore, tmp_path: Path
) -> None:
    start_file = tmp_path / "start"
    processes = [
        start_publisher(store.root, count=PUBLISHES_PER_PROCESS, start_file=start_file)
        for _ in range(PUBLISHER_PROCESSES)
    ]
    start_file.touch()
    results = [finish(process) for process in processes]

    all_versions = sorted(version for result in results for version in result)
    total = PUBLISHER_PROCESSES * PUBLISHES_PER_PROCESS
    assert all_versions == list(range(1, total + 1))
    for result in results:
        assert result == sorted(result)
    assert store.list_versions("adult") == all_versions
    assert store.aliases("adult") == {LATEST_ALIAS: total}
    assert store.verify() == []
    assert temp_entries(store.root / "adult") == []
    owners = {
        (version.manifest["publisher_pid"], version.manifest["publisher_index"])
        for version in (store.open(f"adult:{number}") for number in all_versions)
    }
    assert len(owners) == total
