"""Validation of names, aliases, versions, references and file paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from store_helpers import publish_sample, sample_manifest

from flow.store import (
    ArtifactStore,
    InvalidNameError,
    ModelRef,
    default_store_path,
    parse_ref,
)

INVALID_NAMES = [
    pytest.param("", id="empty"),
    pytest.param(".", id="dot"),
    pytest.param("..", id="dot-dot"),
    pytest.param("../evil", id="parent-traversal"),
    pytest.param("a/b", id="slash"),
    pytest.param("/etc", id="absolute"),
    pytest.param("a\\b", id="backslash"),
    pytest.param(".hidden", id="leading-dot"),
    pytest.param("-flag", id="leading-dash"),
    pytest.param("_under", id="leading-underscore"),
    pytest.param("Adult", id="uppercase"),
    pytest.param("adult\n", id="trailing-newline"),
    pytest.param("ad ult", id="space"),
    pytest.param("adult\x00", id="nul"),
    pytest.param("modèle", id="unicode-letter"),
    pytest.param("a٣", id="unicode-digit"),
    pytest.param("\uff41dult", id="fullwidth"),
    pytest.param("a" * 65, id="overlong"),
    pytest.param("~root", id="tilde"),
]

# Valid references, but never valid as a bare model name or alias.
REF_SEPARATOR_NAMES = [
    pytest.param("a:1", id="colon"),
    pytest.param("a@b", id="at-sign"),
]

VALID_NAMES = [
    pytest.param("adult", id="plain"),
    pytest.param("0", id="digit"),
    pytest.param("credit-v2.1_final", id="punctuation"),
    pytest.param("a..b", id="inner-dots"),
    pytest.param("a" * 64, id="max-length"),
]


@pytest.mark.parametrize("name", INVALID_NAMES + REF_SEPARATOR_NAMES)
def test_publish_rejects_invalid_name(
    store: ArtifactStore, store_root: Path, name: str
) -> None:
    with pytest.raises(InvalidNameError, match="invalid model name"):
        store.publish(name, {"model.keras": b"x"}, sample_manifest())
    assert not store_root.exists()


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_parse_ref_rejects_invalid_name(name: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid"):
        parse_ref(name)


@pytest.mark.parametrize("name", INVALID_NAMES + REF_SEPARATOR_NAMES)
def test_set_alias_rejects_invalid_alias(
    store: ArtifactStore, model_file: Path, name: str
) -> None:
    publish_sample(store, model_file)
    with pytest.raises(InvalidNameError, match="invalid alias"):
        store.set_alias("adult", 1, name)
    assert sorted(store.aliases("adult")) == ["latest"]


@pytest.mark.parametrize("name", VALID_NAMES)
def test_publish_accepts_valid_name(
    store: ArtifactStore, store_root: Path, name: str
) -> None:
    version = store.publish(name, {"model.keras": b"x"}, sample_manifest())
    assert version.path == store_root / name / "1"
    assert store.list_models() == [name]


INVALID_VERSIONS = [
    pytest.param("0", id="zero"),
    pytest.param("03", id="leading-zero"),
    pytest.param("+3", id="plus-sign"),
    pytest.param(" 3", id="space"),
    pytest.param("3\n", id="newline"),
    pytest.param("٣", id="arabic-indic-digit"),
    pytest.param("3_0", id="underscore"),
    pytest.param("-1", id="negative"),
    pytest.param("1e3", id="exponent"),
    pytest.param("1000000000", id="too-large"),
    pytest.param("", id="empty"),
    pytest.param("latest", id="word"),
]


@pytest.mark.parametrize("version", INVALID_VERSIONS)
def test_parse_ref_rejects_invalid_version(version: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid version"):
        parse_ref(f"adult:{version}")


@pytest.mark.parametrize(
    "version",
    [
        pytest.param(True, id="bool"),
        pytest.param(0, id="zero"),
        pytest.param(-2, id="negative"),
        pytest.param(2.0, id="float"),
    ],
)
def test_model_ref_rejects_invalid_version_value(version: object) -> None:
    with pytest.raises(InvalidNameError, match="invalid version"):
        ModelRef("adult", version=version)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("adult", ModelRef("adult"), id="latest"),
        pytest.param("adult:3", ModelRef("adult", version=3), id="version"),
        pytest.param(
            "adult@production", ModelRef("adult", alias="production"), id="alias"
        ),
    ],
)
def test_parse_ref_forms(text: str, expected: ModelRef) -> None:
    parsed = parse_ref(text)
    assert parsed == expected
    assert str(parsed) == text


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("adult:3@prod", id="both"),
        pytest.param("adult:", id="empty-version"),
        pytest.param("adult@", id="empty-alias"),
        pytest.param(":3", id="empty-name"),
        pytest.param("adult:3:4", id="two-colons"),
    ],
)
def test_parse_ref_rejects_malformed(text: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid"):
        parse_ref(text)


def test_model_ref_rejects_version_and_alias() -> None:
    with pytest.raises(InvalidNameError, match="not both"):
        ModelRef("adult", version=1, alias="production")


INVALID_FILE_PATHS = [
    pytest.param("", id="empty"),
    pytest.param("../model.keras", id="parent"),
    pytest.param("report/../../x", id="inner-parent"),
    pytest.param("/etc/passwd", id="absolute"),
    pytest.param("report//index.html", id="empty-component"),
    pytest.param("report/", id="trailing-slash"),
    pytest.param("./model.keras", id="dot-component"),
    pytest.param(".hidden", id="hidden"),
    pytest.param("report\\index.html", id="backslash"),
    pytest.param("modèle.keras", id="unicode"),
    pytest.param("a" * 129, id="overlong-component"),
    pytest.param("/".join("d" * 9), id="too-deep"),
    pytest.param("x\x00y", id="nul"),
]


@pytest.mark.parametrize("relpath", INVALID_FILE_PATHS)
def test_publish_rejects_invalid_file_path(
    store: ArtifactStore, store_root: Path, relpath: str
) -> None:
    with pytest.raises(InvalidNameError, match="invalid file path"):
        store.publish("adult", {relpath: b"x"}, sample_manifest())
    assert not store_root.exists()


@pytest.mark.parametrize(
    "relpath",
    [
        pytest.param("manifest.json", id="manifest"),
        pytest.param("manifest.sha256", id="checksum"),
    ],
)
def test_publish_rejects_reserved_file(store: ArtifactStore, relpath: str) -> None:
    with pytest.raises(InvalidNameError, match="the store writes this file"):
        store.publish("adult", {relpath: b"{}"}, sample_manifest())


def test_publish_rejects_file_directory_clash(store: ArtifactStore) -> None:
    files = {"report": b"a", "report/index.html": b"b"}
    with pytest.raises(InvalidNameError, match="both a file and the directory"):
        store.publish("adult", files, sample_manifest())


def test_version_file_rejects_traversal(store: ArtifactStore, model_file: Path) -> None:
    version = publish_sample(store, model_file)
    with pytest.raises(InvalidNameError, match="invalid file path"):
        version.file("../aliases/latest.json")


def test_default_store_path_reads_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAUSSPROBE_STORE", "/srv/models")
    assert default_store_path() == Path("/srv/models")
    monkeypatch.setenv("GAUSSPROBE_STORE", "")
    assert default_store_path() == Path("store")
    monkeypatch.delenv("GAUSSPROBE_STORE")
    assert default_store_path() == Path("store")


def test_store_defaults_to_env_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GAUSSPROBE_STORE", os.fspath(tmp_path / "env-store"))
    assert ArtifactStore().root == tmp_path / "env-store"
