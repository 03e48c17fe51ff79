"""Versioned, immutable, hash-verified store of frozen flow artifacts.

Layout::

    <store>/<name>/<version>/manifest.json     fields + sha256/size of each file
    <store>/<name>/<version>/manifest.sha256   sha256sum line for manifest.json
    <store>/<name>/<version>/model.keras, report/...
    <store>/<name>/aliases/<alias>.json         atomic pointer files
    <store>/<name>/.lock                        serializes alias updates
    <store>/<name>/.tmp-<uuid>/                 publication in progress

Exceptions (every one carries ``name``, ``version`` and ``file``)::

    StoreError
    ├── InvalidNameError (also ValueError)       bad name/alias/version/ref/path
    ├── InvalidManifestError (also ValueError)   manifest is not strict JSON
    ├── ModelNotFoundError (also LookupError)
    ├── VersionNotFoundError (also LookupError)
    ├── AliasNotFoundError (also LookupError)
    ├── ArtifactFileNotFoundError (also LookupError)
    ├── IntegrityError                           hash/size/file-set mismatch,
    │                                            links, damaged manifest or alias
    ├── ReadOnlyStoreError                       write on a read-only store
    └── PublishError                             OS error; nothing published

This package imports neither keras nor ``flow``; only
``ArtifactVersion.load_flow`` does.
"""

from ._errors import (
    AliasNotFoundError,
    ArtifactFileNotFoundError,
    IntegrityError,
    InvalidManifestError,
    InvalidNameError,
    ModelNotFoundError,
    PublishError,
    ReadOnlyStoreError,
    StoreError,
    VersionNotFoundError,
)
from ._gc import DEFAULT_GC_MIN_AGE_SECONDS
from ._names import LATEST_ALIAS, MAX_NAME_LENGTH
from ._refs import ModelRef, default_store_path, parse_ref
from ._store import ArtifactStore
from ._verify import ProblemKind, VerificationProblem
from ._version import ArtifactVersion

__all__ = [
    "DEFAULT_GC_MIN_AGE_SECONDS",
    "LATEST_ALIAS",
    "MAX_NAME_LENGTH",
    "AliasNotFoundError",
    "ArtifactFileNotFoundError",
    "ArtifactStore",
    "ArtifactVersion",
    "IntegrityError",
    "InvalidManifestError",
    "InvalidNameError",
    "ModelNotFoundError",
    "ModelRef",
    "ProblemKind",
    "PublishError",
    "ReadOnlyStoreError",
    "StoreError",
    "VerificationProblem",
    "VersionNotFoundError",
    "default_store_path",
    "parse_ref",
]
