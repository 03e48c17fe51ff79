"""Hash verification, damaged files and planted links in a real store."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from store_helpers import make_writable, publish_sample

from flow.store import (
    ArtifactStore,
    IntegrityError,
    ModelNotFoundError,
    ProblemKind,
    VerificationProblem,
)


def flip_byte(path: Path, offset: int = 0) -> None:
    """Invert the bits of one byte of ``path`` in place."""
    make_writable(path)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def problem_summary(problems: list[VerificationProblem]) -> list[tuple[object, ...]]:
    return [(p.name, p.version, p.file, p.kind) for p in problems]


@pytest.mark.parametrize(
    ("relpath", "offset"),
    [
        pytest.param("model.keras", 0, id="model-first-byte"),
        pytest.param("model.keras", 10239, id="model-last-byte"),
        pytest.param("report/figures/nll.png", 3, id="nested-figure"),
    ],
)
def test_flipped_byte_rejected(
    store: ArtifactStore, model_file: Path, relpath: str, offset: int
) -> None:
    version = publish_sample(store, model_file)
    flip_byte(version.path / relpath, offset)

    with pytest.raises(
        IntegrityError, match=rf"{re.escape(relpath)} sha256 is"
    ) as excinfo:
        store.open("adult:1")
    assert excinfo.value.file == relpath
    assert excinfo.value.name == "adult"
    assert excinfo.value.version == 1

    problems = store.verify()
    assert problem_summary(problems) == [
        ("adult", 1, relpath, ProblemKind.HASH_MISMATCH)
    ]
    assert relpath in str(problems[0])
    assert store.verify("adult:1") == problems
    assert store.verify("adult") == problems


def test_open_passes_on_intact_version(store: ArtifactStore, model_file: Path) -> None:
    publish_sample(store, model_file)
    version = store.open("adult")
    assert version.version == 1
    assert store.verify() == []


def test_truncated_file_rejected(store: ArtifactStore, model_file: Path) -> None:
    version = publish_sample(store, model_file)
    target = version.path / "model.keras"
    make_writable(target)
    os.truncate(target, 100)
    with pytest.raises(IntegrityError, match=r"model\.keras has 100 bytes"):
        store.open("adult")
    assert problem_summary(store.verify()) == [
        ("adult", 1, "model.keras", ProblemKind.SIZE_MISMATCH)
    ]


def test_missing_file_rejected(store: ArtifactStore, model_file: Path) -> None:
    version = publish_sample(store, model_file)
    make_writable(version.path / "report")
    (version.path / "report" / "index.html").unlink()
    with pytest.raises(IntegrityError, match=r"report/index\.html is listed") as info:
        store.open("adult:1")
    assert info.value.file == "report/index.html"
    assert problem_summary(store.verify()) == [
        ("adult", 1, "report/index.html", ProblemKind.MISSING_FILE)
    ]


def test_extra_file_rejected(store: ArtifactStore, model_file: Path) -> None:
    version = publish_sample(store, model_file)
    make_writable(version.path)
    (version.path / "extra.py").write_text("import os\n")
    with pytest.raises(IntegrityError, match=r"extra\.py is not listed"):
        store.open("adult")
    assert problem_summary(store.verify()) == [
        ("adult", 1, "extra.py", ProblemKind.EXTRA_FILE)
    ]


def test_fifo_in_version_rejected(store: ArtifactStore, model_file: Path) -> None:
    version = publish_sample(store, model_file)
    make_writable(version.path)
    os.mkfifo(version.path / "pipe")
    assert problem_summary(store.verify()) == [
        ("adult", 1, "pipe", ProblemKind.NOT_A_REGULAR_FILE)
    ]


def test_tampered_manifest_rejected_by_resolve(
    store: ArtifactStore, model_file: Path
) -> None:
    version = publish_sample(store, model_file)
    manifest_path = version.path / "manifest.json"
    make_writable(manifest_path)
    text = manifest_path.read_text().replace('"seed": 7', '"seed": 8')
    manifest_path.write_text(text)
    with pytest.raises(IntegrityError, match=r"manifest\.json sha256 is") as info:
        store.resolve("adult")
    assert info.value.file == "manifest.json"
    assert problem_summary(store.verify()) == [
        ("adult", 1, "manifest.json", ProblemKind.CHECKSUM_MISMATCH)
    ]


def test_missing_checksum_rejected(store: ArtifactStore, model_file: Path) -> None:
    version = publish_sample(store, model_file)
    make_writable(version.path)
    (version.path / "manifest.sha256").unlink()
    with pytest.raises(IntegrityError, match=r"manifest\.sha256 is missing"):
        store.open("adult")


def test_unparsable_manifest_rejected(store: ArtifactStore, model_file: Path) -> None:
    version = publish_sample(store, model_file)
    make_writable(version.path)
    for name in ("manifest.json", "manifest.sha256"):
        (version.path / name).unlink()
    (version.path / "manifest.json").write_bytes(b"{not json")
    problems = store.verify()
    kinds = [problem.kind for problem in problems]
    assert kinds == [ProblemKind.MISSING_CHECKSUM, ProblemKind.INVALID_MANIFEST]
    with pytest.raises(
        IntegrityError, match=r"sha256 is missing.*\(and 1 more\)"
    ) as info:
        store.resolve("adult:1")
    assert [problem.kind for problem in info.value.problems] == kinds


def test_copied_version_directory_rejected(
    store: ArtifactStore, model_file: Path
) -> None:
    import shutil

    version = publish_sample(store, model_file)
    shutil.copytree(version.path, store.root / "adult" / "5")
    with pytest.raises(IntegrityError, match="describes adult:1 but is stored as"):
        store.open("adult:5")


def test_symlinked_payload_rejected(
    store: ArtifactStore, model_file: Path, tmp_path: Path
) -> None:
    version = publish_sample(store, model_file)
    outside = tmp_path / "outside.keras"
    outside.write_bytes((version.path / "model.keras").read_bytes())
    make_writable(version.path)
    (version.path / "model.keras").unlink()
    (version.path / "model.keras").symlink_to(outside)
    with pytest.raises(IntegrityError, match=r"model\.keras is a symbolic link"):
        store.open("adult")
    assert problem_summary(store.verify()) == [
        ("adult", 1, "model.keras", ProblemKind.SYMLINK)
    ]


def test_symlinked_report_directory_rejected(
    store: ArtifactStore, model_file: Path, tmp_path: Path
) -> None:
    import shutil

    version = publish_sample(store, model_file)
    outside = tmp_path / "outside-report"
    shutil.copytree(version.path / "report", outside)
    make_writable(version.path)
    make_writable(version.path / "report")
    make_writable(version.path / "report" / "figures")
    shutil.rmtree(version.path / "report")
    (version.path / "report").symlink_to(outside, target_is_directory=True)
    with pytest.raises(IntegrityError, match="report is a symbolic link") as info:
        store.open("adult")
    assert info.value.file == "report"


def test_symlinked_version_directory_ignored(
    store: ArtifactStore, model_file: Path
) -> None:
    publish_sample(store, model_file)
    (store.root / "adult" / "9").symlink_to(store.root / "adult" / "1")
    assert store.list_versions("adult") == [1]
    assert store.resolve("adult").version == 1
    with pytest.raises(IntegrityError, match="never follows links"):
        store.resolve("adult:9")
    assert problem_summary(store.verify()) == [("adult", 9, None, ProblemKind.SYMLINK)]


def test_symlinked_model_directory_ignored(
    store: ArtifactStore, model_file: Path, tmp_path: Path
) -> None:
    publish_sample(store, model_file)
    other = ArtifactStore(tmp_path / "other")
    publish_sample(other, model_file, name="evil")
    (store.root / "evil").symlink_to(tmp_path / "other" / "evil")
    assert store.list_models() == ["adult"]
    with pytest.raises(IntegrityError, match="never follows links"):
        store.open("evil")
    assert problem_summary(store.verify()) == [
        ("evil", None, None, ProblemKind.SYMLINK)
    ]


def test_symlinked_alias_rejected(
    store: ArtifactStore, model_file: Path, tmp_path: Path
) -> None:
    publish_sample(store, model_file)
    outside = tmp_path / "pointer.json"
    outside.write_text(json.dumps({"name": "adult", "version": 1}))
    (store.root / "adult" / "aliases" / "production.json").symlink_to(outside)
    with pytest.raises(IntegrityError, match=r"production\.json is a symbolic link"):
        store.resolve("adult@production")
    assert problem_summary(store.verify()) == [
        ("adult", None, "aliases/production.json", ProblemKind.INVALID_ALIAS)
    ]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"{", id="truncated"),
        pytest.param(b'{"name": "adult", "version": "1"}', id="string-version"),
        pytest.param(b'{"name": "adult", "version": 0}', id="zero-version"),
        pytest.param(b'{"name": "credit", "version": 1}', id="other-model"),
        pytest.param(b"[]", id="array"),
    ],
)
def test_damaged_alias_rejected(
    store: ArtifactStore, model_file: Path, content: bytes
) -> None:
    publish_sample(store, model_file)
    (store.root / "adult" / "aliases" / "production.json").write_bytes(content)
    with pytest.raises(IntegrityError, match=r"production\.json"):
        store.resolve("adult@production")
    assert [p.kind for p in store.verify()] == [ProblemKind.INVALID_ALIAS]


def test_dangling_alias_reported(store: ArtifactStore, model_file: Path) -> None:
    publish_sample(store, model_file)
    pointer = {"name": "adult", "version": 4}
    (store.root / "adult" / "aliases" / "staging.json").write_text(json.dumps(pointer))
    assert problem_summary(store.verify()) == [
        ("adult", None, "aliases/staging.json", ProblemKind.DANGLING_ALIAS)
    ]


def test_planted_empty_version_skipped(store: ArtifactStore, model_file: Path) -> None:
    publish_sample(store, model_file)
    (store.root / "adult" / "7").mkdir()
    assert store.list_versions("adult") == [1]
    assert problem_summary(store.verify()) == [
        ("adult", 7, "manifest.json", ProblemKind.MISSING_MANIFEST)
    ]
    assert publish_sample(store, model_file).version == 8


def test_model_path_is_file_rejected(store: ArtifactStore, model_file: Path) -> None:
    store.root.mkdir()
    (store.root / "adult").write_text("not a directory")
    with pytest.raises(IntegrityError, match="not a directory"):
        publish_sample(store, model_file)
    with pytest.raises(ModelNotFoundError, match="models in"):
        store.list_versions("credit")


def test_load_flow_checks_model_hash(store: ArtifactStore, model_file: Path) -> None:
    version = publish_sample(store, model_file)
    flip_byte(version.path / "model.keras", 5)
    with pytest.raises(IntegrityError, match=r"model\.keras sha256 is") as info:
        version.load_flow()
    assert info.value.file == "model.keras"
