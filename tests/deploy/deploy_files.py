"""Readers for the deployment files: compose variables, Dockerfile stages, docs.

No Docker engine runs in CI, so the deployment tests read `docker-compose.yml`
and `Dockerfile` themselves. The interpolation here follows the Compose
specification for the forms the compose file uses: `$$`, `${VAR}`,
`${VAR:-default}` and `${VAR-default}`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_PATH = REPO_ROOT / "docker-compose.yml"
DOCKERFILE_PATH = REPO_ROOT / "Dockerfile"
DOCKERIGNORE_PATH = REPO_ROOT / ".dockerignore"
PYPROJECT_PATH = REPO_ROOT / "pyproject.toml"
SERVICE_DOC_PATH = REPO_ROOT / "docs" / "service.md"
TRAINING_DOC_PATH = REPO_ROOT / "docs" / "training.md"
DEPLOY_DOC_PATH = REPO_ROOT / "docs" / "deploy.md"
README_PATH = REPO_ROOT / "README.md"

STORE_MOUNT = "/store"
"""Path of the store volume inside the containers."""

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?-)(?P<default>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)
_DOC_VARIABLE_ROW = re.compile(r"^\|\s*`(GAUSSPROBE_[A-Z0-9_]+)`\s*\|", re.MULTILINE)
_GAUSSPROBE_VARIABLE = re.compile(r"\bGAUSSPROBE_[A-Z0-9_]+\b")


def load_compose() -> dict[str, Any]:
    """Parse `docker-compose.yml` without interpolating variables."""
    return yaml.safe_load(COMPOSE_PATH.read_text(encoding="utf-8"))


def interpolate(text: str, environ: Mapping[str, str]) -> str:
    """Substitute Compose variables in ``text`` from ``environ``.

    Raises:
        ValueError: ``text`` contains a `$` that is not a supported variable form.
    """
    pieces: list[str] = []
    position = 0
    for match in _VARIABLE.finditer(text):
        pieces.append(text[position : match.start()])
        position = match.end()
        if match.group("escaped"):
            pieces.append("$")
            continue
        name = match.group("braced") or match.group("plain")
        value = environ.get(name)
        operator = match.group("operator")
        if (operator == ":-" and not value) or (operator == "-" and value is None):
            value = match.group("default")
        pieces.append(value or "")
    rest = text[position:]
    if "$" in rest:
        raise ValueError(f"unsupported Compose variable syntax in {text!r}")
    pieces.append(rest)
    return "".join(pieces)


def interpolate_tree(value: Any, environ: Mapping[str, str]) -> Any:
    """Apply :func:`interpolate` to every string inside a parsed YAML value."""
    if isinstance(value, str):
        return interpolate(value, environ)
    if isinstance(value, list):
        return [interpolate_tree(item, environ) for item in value]
    if isinstance(value, dict):
        return {key: interpolate_tree(item, environ) for key, item in value.items()}
    return value


def variables_used(value: Any) -> set[str]:
    """Names of every Compose variable referenced inside a parsed YAML value."""
    if isinstance(value, str):
        return {
            match.group("braced") or match.group("plain")
            for match in _VARIABLE.finditer(value)
            if not match.group("escaped")
        }
    if isinstance(value, list):
        return set().union(*(variables_used(item) for item in value))
    if isinstance(value, dict):
        return set().union(*(variables_used(item) for item in value.values()))
    return set()


def console_scripts() -> dict[str, str]:
    """The `[project.scripts]` table of pyproject.toml."""
    with PYPROJECT_PATH.open("rb") as handle:
        return tomllib.load(handle)["project"]["scripts"]


def load_pyproject() -> dict[str, Any]:
    """The parsed pyproject.toml."""
    with PYPROJECT_PATH.open("rb") as handle:
        return tomllib.load(handle)


def settings_table_variables() -> set[str]:
    """`GAUSSPROBE_*` names in the first column of docs/service.md's tables."""
    return set(_DOC_VARIABLE_ROW.findall(SERVICE_DOC_PATH.read_text(encoding="utf-8")))


def training_doc_variables() -> set[str]:
    """`GAUSSPROBE_*` names mentioned anywhere in docs/training.md."""
    return set(
        _GAUSSPROBE_VARIABLE.findall(TRAINING_DOC_PATH.read_text(encoding="utf-8"))
    )


def deploy_table_variables() -> set[str]:
    """`GAUSSPROBE_*` names in the first column of docs/deploy.md's tables."""
    return set(_DOC_VARIABLE_ROW.findall(DEPLOY_DOC_PATH.read_text(encoding="utf-8")))


@dataclasses.dataclass
class DockerStage:
    """One `FROM` stage of a Dockerfile: its base, name and instructions."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def arguments(self, keyword: str) -> list[str]:
        """Arguments of every instruction ``keyword`` (upper case) in order."""
        return [text for name, text in self.instructions if name == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[DockerStage]]:
    """Split a Dockerfile into global `ARG` defaults and its stages.

    Continuation lines (trailing backslash) are joined and comments dropped.
    `ARG` references in `FROM` lines are substituted with their defaults.
    """
    logical_lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical_lines.append(pending + stripped)
        pending = ""
    if pending:
        logical_lines.append(pending)

    global_args: dict[str, str] = {}
    stages: list[DockerStage] = []
    for line in logical_lines:
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        arguments = arguments.strip()
        if keyword == "FROM":
            words = interpolate(arguments, global_args).split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(DockerStage(base=words[0], name=name))
        elif not stages:
            if keyword == "ARG":
                key, _, default = arguments.partition("=")
                global_args[key] = default
        else:
            stages[-1].instructions.append((keyword, arguments))
    return global_args, stages


def exec_form(arguments: str) -> list[str]:
    """Parse the JSON exec form of `CMD` or `ENTRYPOINT`.

    Raises:
        ValueError: ``arguments`` is the shell form, not a JSON list of strings.
    """
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as error:
        raise ValueError(f"not the JSON exec form: {arguments!r}") from error
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"not a JSON list of strings: {arguments!r}")
    return value


def replace_option(command: list[str], option: str, value: str) -> list[str]:
    """Return ``command`` with the value after ``option`` replaced.

    Raises:
        ValueError: ``option`` is not in ``command`` followed by a value.
    """
    if option not in command[:-1]:
        raise ValueError(f"{option} with a value not found in {command}")
    index = command.index(option)
    return [*command[: index + 1], value, *command[index + 2 :]]
