"""Loaded models and the lookup of a request's model by name and version."""

from __future__ import annotations

import collections
import dataclasses
import threading
from typing import Any

import numpy as np

from service._errors import ApiError

__all__ = ["LoadedModel", "ModelRegistry"]

LOADING = "loading"
READY = "ready"
FAILED = "failed"


@dataclasses.dataclass
class LoadedModel:
    """A verified, warmed-up, self-tested model version.

    Attributes:
        name: Model name.
        version: Version number in the store.
        aliases: Store aliases that pointed at this version at start-up.
        manifest: The version's manifest.
        flow: The loaded ``GaussianizationFlow``.
        runner: Its ``CompiledFlow``.
        digest_at_load: ``weights_digest`` computed right after loading.
        dtype: Model dtype.
        dim: Feature count ``d``.
        report_files: Bytes of each ``report/`` file by path below ``report/``,
            checked against the manifest hashes.
        load_seconds: Time spent verifying, loading, warming up and testing.
        self_test: Largest errors the self-test measured.
        request_counts: Requests served, by route name.
    """

    name: str
    version: int
    aliases: tuple[str, ...]
    manifest: dict[str, Any]
    flow: Any
    runner: Any
    digest_at_load: str
    dtype: np.dtype[Any]
    dim: int
    report_files: dict[str, bytes]
    load_seconds: float
    self_test: dict[str, float]
    request_counts: collections.Counter[str] = dataclasses.field(
        default_factory=collections.Counter
    )

    @property
    def headers(self) -> dict[str, str]:
        """Headers every response about this model carries."""
        return {
            "X-Model-Name": self.name,
            "X-Model-Version": str(self.version),
            "X-Model-Digest": self.digest_at_load,
        }

    def metadata(self) -> dict[str, Any]:
        """Return the METADATA object of the HTTP API."""
        manifest = self.manifest
        return {
            "name": self.name,
            "version": self.version,
            "aliases": list(self.aliases),
            "digest": self.digest_at_load,
            "feature_names": list(manifest.get("feature_names") or []),
            "dim": self.dim,
            "dtype": str(self.dtype),
            "flow_config": manifest.get("flow_config"),
            "preprocessing": manifest.get("preprocessing"),
            "created_at": manifest.get("created_at"),
            "ready": True,
        }


class ModelRegistry:
    """Models of one service process and their load status.

    Written by the loading thread, read by request handlers; each entry is
    published whole under a lock, so a handler sees a model only once it
    passed every check.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[tuple[str, int], LoadedModel] = {}
        self._default_version: dict[str, int] = {}
        self.default_name: str | None = None
        self.status: dict[str, str] = {}
        self.errors: dict[str, str] = {}

    def set_loading(self, ref: str) -> None:
        """Record that ``ref`` is being loaded."""
        with self._lock:
            self.status[ref] = LOADING

    def set_failed(self, ref: str, message: str) -> None:
        """Record that ``ref`` failed to load."""
        with self._lock:
            self.status[ref] = FAILED
            self.errors[ref] = message

    def add(self, ref: str, model: LoadedModel) -> None:
        """Publish a model that passed verification and self-test.

        The first version added for a name serves ``/v1/models/{name}/...``.
        """
        key = (model.name, model.version)
        with self._lock:
            self._models[key] = model
            self._default_version.setdefault(model.name, model.version)
            self.status[ref] = READY

    def models(self) -> list[LoadedModel]:
        """Return the loaded models in load order."""
        with self._lock:
            return list(self._models.values())

    def get(self, name: str | None = None, version: str | None = None) -> LoadedModel:
        """Find the model a request addresses.

        Args:
            name: Model name; None for the default model.
            version: Version path segment; None for the name's default version.

        Raises:
            ApiError: 404 ``model_not_found`` or ``version_not_found``.
        """
        with self._lock:
            if name is None:
                name = self.default_name
            if name is None or name not in self._default_version:
                known = ", ".join(sorted(self._default_version)) or "none"
                raise ApiError(
                    404,
                    "model_not_found",
                    f"model {name!r} is not served here; served models: {known}",
                    detail={"model": name},
                )
            if version is None:
                return self._models[(name, self._default_version[name])]
            loaded = sorted(v for (n, v) in self._models if n == name)
            try:
                number = int(version)
            except ValueError:
                number = None
            model = None if number is None else self._models.get((name, number))
            if model is None:
                raise ApiError(
                    404,
                    "version_not_found",
                    f"version {version!r} of model {name!r} is not loaded; loaded "
                    f"versions: {', '.join(map(str, loaded))} (versions are integers; "
                    "aliases are resolved at start-up)",
                    detail={"model": name, "version": version},
                )
            return model
