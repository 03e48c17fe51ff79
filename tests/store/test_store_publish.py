"""Publishing, listing, resolving and aliasing versions on a real store."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import stat
import time
from pathlib import Path

import numpy as np
import pytest
from store_helpers import (
    FIGURE_PNG,
    MODEL_BYTES,
    REPORT_HTML,
    publish_sample,
    sample_files,
    sample_manifest,
)

from flow.store import (
    LATEST_ALIAS,
    AliasNotFoundError,
    ArtifactFileNotFoundError,
    ArtifactStore,
    InvalidManifestError,
    InvalidNameError,
    ModelNotFoundError,
    ModelRef,
    VersionNotFoundError,
)
from flow.store._manifest import serialize_manifest
from flow.store._publish import make_tree_writable


def test_publish_assigns_increasing_versions(
    store: ArtifactStore, store_root: Path, model_file: Path
) -> None:
    first = publish_sample(store, model_file)
    second = publish_sample(store, model_file)
    third = publish_sample(store, model_file, name="credit")
    assert (first.version, second.version, third.version) == (1, 2, 1)
    assert first.path == store_root / "adult" / "1"
    assert store.list_models() == ["adult", "credit"]
    assert store.list_versions("adult") == [1, 2]
    assert store.aliases("adult") == {LATEST_ALIAS: 2}


def test_publish_writes_manifest_with_hashes(
    store: ArtifactStore, model_file: Path
) -> None:
    version = publish_sample(store, model_file)
    stored = json.loads(version.file("manifest.json").read_bytes())
    assert stored == version.manifest
    assert stored["name"] == "adult"
    assert stored["version"] == 1
    assert stored["feature_names"] == ["age", "income"]
    assert stored["created_at"].endswith("Z")
    expected_files = {
        "model.keras": MODEL_BYTES,
        "report/index.html": REPORT_HTML,
        "report/figures/nll.png": FIGURE_PNG,
    }
    assert sorted(stored["files"]) == sorted(expected_files)
    for relpath, content in expected_files.items():
        entry = stored["files"][relpath]
        assert entry["sha256"] == hashlib.sha256(content).hexdigest()
        assert entry["bytes"] == len(content)
        assert version.file(relpath).read_bytes() == content


def test_manifest_checksum_matches_sha256sum_format(
    store: ArtifactStore, model_file: Path
) -> None:
    version = publish_sample(store, model_file)
    manifest_bytes = version.file("manifest.json").read_bytes()
    checksum = version.file("manifest.sha256").read_text()
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    assert checksum == f"{digest}  manifest.json\n"


def test_manifest_bytes_are_deterministic() -> None:
    manifest = {"b": [1, 2.5, None], "a": {"z": True, "y": "ü"}}
    reordered = {"a": {"y": "ü", "z": True}, "b": [1, 2.5, None]}
    assert serialize_manifest(manifest) == serialize_manifest(reordered)
    assert serialize_manifest(manifest).decode("ascii").startswith('{\n  "a"')


def test_published_files_are_read_only(store: ArtifactStore, model_file: Path) -> None:
    version = publish_sample(store, model_file)
    for directory, dir_names, file_names in os.walk(version.path):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o555
        for file_name in file_names:
            mode = stat.S_IMODE(os.stat(Path(directory) / file_name).st_mode)
            assert mode == 0o444, file_name
        del dir_names


def test_publish_leaves_no_temporary_entries(
    store: ArtifactStore, store_root: Path, model_file: Path
) -> None:
    publish_sample(store, model_file)
    entries = sorted(os.listdir(store_root / "adult"))
    assert entries == [".lock", "1", "aliases"]
    assert os.listdir(store_root / "adult" / "aliases") == ["latest.json"]


def test_manifest_converts_numpy_values(store: ArtifactStore, model_file: Path) -> None:
    manifest = sample_manifest(
        mean=np.array([1.5, 2.0], dtype=np.float32), rows=np.int64(300)
    )
    version = store.publish("adult", sample_files(model_file), manifest)
    assert version.manifest["mean"] == [1.5, 2.0]
    assert version.manifest["rows"] == 300
    assert store.resolve("adult:1").manifest["mean"] == [1.5, 2.0]


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        pytest.param(
            sample_manifest(diagnostics={"skew": [0.1, math.nan]}),
            r"NaN or infinity.*\['diagnostics'\]\['skew'\]\[1\]|"
            r"\['diagnostics'\]\['skew'\]\[1\].*NaN or infinity",
            id="nan",
        ),
        pytest.param(
            sample_manifest(loss=math.inf), r"manifest\['loss'\]", id="infinity"
        ),
        pytest.param(sample_manifest(when=object()), "not a JSON type", id="object"),
        pytest.param(sample_manifest(table={1: "a"}), "keys must be strings", id="key"),
        pytest.param(sample_manifest(version=3), r"\['version'\]", id="store-field"),
        pytest.param(sample_manifest(files={}), r"\['files'\]", id="files-field"),
    ],
)
def test_publish_rejects_invalid_manifest(
    store: ArtifactStore,
    store_root: Path,
    model_file: Path,
    manifest: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(InvalidManifestError, match=message):
        store.publish("adult", sample_files(model_file), manifest)
    assert not store_root.exists()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        pytest.param({}, "non-empty mapping", id="empty"),
        pytest.param({"model.keras": "weights"}, "got a str", id="str-source"),
        pytest.param({"model.keras": 42}, "got int", id="int-source"),
        pytest.param(
            {"model.keras": Path("/nonexistent/model.keras")},
            "cannot be read",
            id="missing-source",
        ),
        pytest.param({"model.keras": Path("/")}, "not a regular file", id="dir-source"),
    ],
)
def test_publish_rejects_invalid_files(
    store: ArtifactStore, store_root: Path, files: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        store.publish("adult", files, sample_manifest())  # type: ignore[arg-type]
    assert not store_root.exists()


def test_resolve_by_version_alias_and_latest(
    store: ArtifactStore, model_file: Path
) -> None:
    publish_sample(store, model_file)
    publish_sample(store, model_file)
    publish_sample(store, model_file)
    previous = store.set_alias("adult", 2, "production")
    assert previous is None
    assert store.resolve("adult").version == 3
    assert store.resolve("adult@latest").version == 3
    assert store.resolve("adult:1").version == 1
    assert store.resolve("adult@production").version == 2
    assert store.resolve(ModelRef("adult", alias="production")).version == 2
    assert store.aliases("adult") == {LATEST_ALIAS: 3, "production": 2}


def test_set_alias_replaces_pointer(store: ArtifactStore, model_file: Path) -> None:
    publish_sample(store, model_file)
    publish_sample(store, model_file)
    store.set_alias("adult", 1, "production")
    previous = store.set_alias("adult", "2", "production")
    assert previous == 1
    assert store.resolve("adult@production").version == 2
    pointer = json.loads(
        (store.root / "adult" / "aliases" / "production.json").read_bytes()
    )
    assert pointer["version"] == 2
    assert pointer["name"] == "adult"


def test_set_alias_rejects_latest(store: ArtifactStore, model_file: Path) -> None:
    publish_sample(store, model_file)
    publish_sample(store, model_file)
    with pytest.raises(InvalidNameError, match="publish moves it"):
        store.set_alias("adult", 1, LATEST_ALIAS)
    assert store.resolve("adult").version == 2


def test_set_alias_rejects_missing_version(
    store: ArtifactStore, model_file: Path
) -> None:
    publish_sample(store, model_file)
    with pytest.raises(VersionNotFoundError, match="version 5 of model 'adult'"):
        store.set_alias("adult", 5, "production")
    with pytest.raises(ModelNotFoundError, match="model 'credit' not found"):
        store.set_alias("credit", 1, "production")


def test_latest_derived_when_pointer_missing(
    store: ArtifactStore, model_file: Path
) -> None:
    publish_sample(store, model_file)
    publish_sample(store, model_file)
    (store.root / "adult" / "aliases" / "latest.json").unlink()
    assert store.aliases("adult") == {LATEST_ALIAS: 2}
    assert store.resolve("adult").version == 2


def test_latest_never_moves_backwards(store: ArtifactStore, model_file: Path) -> None:
    from flow.store._aliases import advance_latest

    publish_sample(store, model_file)
    publish_sample(store, model_file)
    moved = advance_latest(store.root / "adult", "adult", 1)
    assert moved is False
    assert store.aliases("adult")[LATEST_ALIAS] == 2


def test_resolve_reports_missing_model(store: ArtifactStore, model_file: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist; pass --store"):
        store.resolve("adult")
    publish_sample(store, model_file)
    with pytest.raises(ModelNotFoundError, match=r"models in .*: adult"):
        store.resolve("credit")


def test_resolve_reports_missing_version(
    store: ArtifactStore, model_file: Path
) -> None:
    publish_sample(store, model_file)
    with pytest.raises(VersionNotFoundError, match="available versions: 1"):
        store.resolve("adult:7")


def test_resolve_reports_missing_alias(store: ArtifactStore, model_file: Path) -> None:
    publish_sample(store, model_file)
    with pytest.raises(AliasNotFoundError, match=r"alias 'staging'.*aliases: latest"):
        store.resolve("adult@staging")


def test_resolve_reports_dangling_alias(store: ArtifactStore, model_file: Path) -> None:
    publish_sample(store, model_file)
    alias_file = store.root / "adult" / "aliases" / "production.json"
    alias_file.write_text(json.dumps({"name": "adult", "version": 9}))
    with pytest.raises(VersionNotFoundError, match="points to version 9"):
        store.resolve("adult@production")


def test_version_file_rejects_unlisted(store: ArtifactStore, model_file: Path) -> None:
    version = publish_sample(store, model_file)
    with pytest.raises(ArtifactFileNotFoundError, match=r"has no file 'notes\.txt'"):
        version.file("notes.txt")


def test_gc_removes_only_stale_temporaries(
    store: ArtifactStore, store_root: Path, model_file: Path
) -> None:
    publish_sample(store, model_file)
    stale = store_root / "adult" / ".tmp-stale"
    (stale / "report").mkdir(parents=True)
    (stale / "report" / "index.html").write_bytes(b"partial")
    os.chmod(stale / "report", 0o555)
    fresh = store_root / "adult" / ".tmp-fresh"
    fresh.mkdir()
    stale_alias = store_root / "adult" / "aliases" / ".tmp-stale-alias"
    stale_alias.write_bytes(b"{")
    old = time.time() - 7200
    for path in (stale / "report" / "index.html", stale / "report", stale):
        os.utime(path, (old, old))
    os.utime(stale_alias, (old, old))

    removed = store.gc(min_age_seconds=3600)

    assert removed == sorted([stale, stale_alias])
    assert fresh.exists()
    assert store.list_versions("adult") == [1]
    assert store.verify() == []


def test_gc_advances_stale_latest(store: ArtifactStore, model_file: Path) -> None:
    publish_sample(store, model_file)
    publish_sample(store, model_file)
    pointer = store.root / "adult" / "aliases" / "latest.json"
    pointer.write_text(json.dumps({"name": "adult", "version": 1}))
    assert store.resolve("adult").version == 1
    store.gc()
    assert store.resolve("adult").version == 2


def test_gc_rejects_negative_age(store: ArtifactStore) -> None:
    with pytest.raises(ValueError, match="invalid min_age_seconds -1"):
        store.gc(min_age_seconds=-1)


def test_publish_skips_number_of_removed_latest(
    store: ArtifactStore, model_file: Path
) -> None:
    publish_sample(store, model_file)
    publish_sample(store, model_file)
    version_dir = store.root / "adult" / "2"
    make_tree_writable(version_dir)
    shutil.rmtree(version_dir)
    assert publish_sample(store, model_file).version == 3
