"""A published model version and its files."""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import ArtifactFileNotFoundError
from ._names import RESERVED_FILES, validate_file_path
from ._verify import check_file, raise_for_problems, verify_version_dir

logger = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
"""Artifact file that ``ArtifactVersion.load_flow`` loads."""


@dataclass(frozen=True)
class ArtifactVersion:
    """One published, immutable version of a model.

    Attributes:
        name: Model name.
        version: Version number.
        path: Version directory ``<store>/<name>/<version>``.
        manifest: Parsed ``manifest.json``. Treat it as read-only.
    """

    name: str
    version: int
    path: Path
    manifest: dict[str, Any] = field(repr=False, compare=False)

    @property
    def ref(self) -> str:
        """Reference string ``name:version``."""
        return f"{self.name}:{self.version}"

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        """Manifest entries ``{relpath: {"sha256", "bytes"}}`` of the payload files."""
        files: dict[str, dict[str, Any]] = self.manifest["files"]
        return files

    def file(self, relpath: str) -> Path:
        """Return the path of a file of this version.

        Args:
            relpath: Path relative to the version directory, such as
                ``"report/index.html"`` or ``"manifest.json"``.

        Raises:
            InvalidNameError: ``relpath`` is malformed (absolute, ``..``, ...).
            ArtifactFileNotFoundError: The manifest lists no such file.
        """
        validate_file_path(relpath)
        if relpath not in self.files and relpath not in RESERVED_FILES:
            listed = ", ".join(sorted(self.files)) or "none"
            raise ArtifactFileNotFoundError(
                f"{self.ref} has no file {relpath!r}; its files are: {listed}",
                name=self.name,
                version=self.version,
                file=relpath,
            )
        return self.path / relpath

    def verify(self) -> None:
        """Re-hash every file of this version against the manifest.

        Raises:
            IntegrityError: A file is missing, extra, changed or a link. The
                error names the first such file and lists all in ``problems``.
        """
        _, problems = verify_version_dir(self.path, self.name, self.version)
        raise_for_problems(self.name, self.version, problems, self.path.parent.parent)

    def load_flow(self) -> Any:
        """Load ``model.keras`` as a frozen Gaussianization flow.

        Checks the file's sha256 first, then loads with
        ``keras.saving.load_model(path, safe_mode=True)``, which refuses
        pickled or arbitrary Python code (lambda layers). Imports ``flow``
        (which sets ``KERAS_BACKEND=jax`` if unset and registers the flow
        layers) and keras only here.

        Returns:
            The ``flow.GaussianizationFlow`` stored in this version.

        Raises:
            ArtifactFileNotFoundError: The version has no ``model.keras``.
            IntegrityError: ``model.keras`` does not match the manifest.
        """
        model_path = self.file(MODEL_FILE)
        self._verify_file(MODEL_FILE)

        # Imported here so the store itself never loads keras or JAX.
        load_flow = importlib.import_module("flow").load_flow

        logger.info("loading %s from %s", self.ref, model_path)
        return load_flow(model_path)

    def _verify_file(self, relpath: str) -> None:
        problem = check_file(
            self.path, self.name, self.version, relpath, self.files[relpath]
        )
        raise_for_problems(
            self.name,
            self.version,
            [] if problem is None else [problem],
            self.path.parent.parent,
        )
