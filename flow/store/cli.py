"""``gaussprobe models`` subcommands: list, show, verify, alias and gc.

``add_models_parser(subparsers)`` registers the commands; each sets
``func`` to a handler that takes the parsed arguments and returns the exit
status: ``0`` success, ``1`` verification found problems or a file failed its
hash check, ``2`` invalid input or a reference that does not resolve.
Output is a human-readable table, or JSON on standard output with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._errors import IntegrityError, StoreError
from ._gc import DEFAULT_GC_MIN_AGE_SECONDS
from ._refs import STORE_ENV_VAR, default_store_path, parse_ref
from ._store import ArtifactStore

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "add_models_parser",
    "run_alias",
    "run_gc",
    "run_list",
    "run_show",
    "run_verify",
]

EXIT_OK = 0
EXIT_PROBLEMS = 1
"""Verification found problems, or a file failed its hash check."""
EXIT_ERROR = 2
"""Invalid input, or a model, version or alias that does not exist."""

DIGEST_DISPLAY_CHARS = 16
"""Hex digits of a sha256 shown in tables; ``--json`` shows all 64."""

_STORE_HELP = (
    f"artifact store directory (default: ${STORE_ENV_VAR} if set, else ./store)"
)


def add_models_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``models`` command and its subcommands to ``subparsers``.

    Every subcommand accepts ``--store PATH`` and ``--json``. A ``--store``
    parsed earlier (by the top-level parser) is kept unless repeated.

    Returns:
        The ``models`` parser.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store", default=argparse.SUPPRESS, metavar="PATH", help=_STORE_HELP
    )
    common.add_argument(
        "--json",
        action="store_true",
        help="print machine-readable JSON instead of a table",
    )
    models = subparsers.add_parser(
        "models",
        help="list, show, verify and alias stored model versions",
        description="Inspect and manage the versioned artifact store.",
    )
    models.add_argument(
        "--store", default=argparse.SUPPRESS, metavar="PATH", help=_STORE_HELP
    )
    commands = models.add_subparsers(dest="models_command", metavar="SUBCOMMAND")
    commands.required = True

    list_parser = commands.add_parser(
        "list",
        parents=[common],
        help="list models, or the versions of one model",
    )
    list_parser.add_argument(
        "name", nargs="?", help="model name; lists its versions when given"
    )
    list_parser.set_defaults(func=run_list)

    show_parser = commands.add_parser(
        "show", parents=[common], help="show the manifest of one version"
    )
    show_parser.add_argument(
        "ref", metavar="REF", help="NAME (latest), NAME:VERSION or NAME@ALIAS"
    )
    show_parser.set_defaults(func=run_show)

    verify_parser = commands.add_parser(
        "verify",
        parents=[common],
        help="re-hash stored files; exit status 1 if any problem is found",
    )
    verify_parser.add_argument(
        "ref",
        metavar="REF",
        nargs="?",
        help="NAME (all its versions), NAME:VERSION or NAME@ALIAS; "
        "default: the whole store",
    )
    verify_parser.set_defaults(func=run_verify)

    alias_parser = commands.add_parser(
        "alias", parents=[common], help="point an alias at a version"
    )
    alias_parser.add_argument("name", metavar="NAME", help="model name")
    alias_parser.add_argument("version", metavar="VERSION", help="version number")
    alias_parser.add_argument(
        "alias", metavar="ALIAS", help="alias name such as production"
    )
    alias_parser.set_defaults(func=run_alias)

    gc_parser = commands.add_parser(
        "gc",
        parents=[common],
        help="remove temporary entries left by interrupted publishers",
    )
    gc_parser.add_argument(
        "--min-age-seconds",
        type=float,
        default=DEFAULT_GC_MIN_AGE_SECONDS,
        help="remove only entries unmodified for this many seconds "
        "(default: %(default)s)",
    )
    gc_parser.set_defaults(func=run_gc)
    return models


def _store_from_args(args: argparse.Namespace, *, read_only: bool) -> ArtifactStore:
    store = getattr(args, "store", None)
    root = Path(store) if store else default_store_path()
    return ArtifactStore(root, read_only=read_only)


def _missing_store(store: ArtifactStore) -> bool:
    """Print an error and return True if the store directory does not exist."""
    if store.root.is_dir():
        return False
    print(
        f"gaussprobe models: error: store directory {store.root} does not exist; "
        f"pass --store PATH or set {STORE_ENV_VAR}",
        file=sys.stderr,
    )
    return True


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, sort_keys=True))


def _print_error(error: StoreError | ValueError) -> None:
    print(f"gaussprobe models: error: {error}", file=sys.stderr)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return rows as left-aligned columns separated by two spaces."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [
            max(width, len(cell)) for width, cell in zip(widths, row, strict=True)
        ]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in [list(headers), *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def _format_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _short_digest(digest: object) -> str:
    if not isinstance(digest, str):
        return "-"
    return digest.removeprefix("sha256:")[:DIGEST_DISPLAY_CHARS]


def _aliases_by_version(aliases: dict[str, int]) -> dict[int, list[str]]:
    by_version: dict[int, list[str]] = {}
    for alias, version in sorted(aliases.items()):
        by_version.setdefault(version, []).append(alias)
    return by_version


def _list_models(store: ArtifactStore, as_json: bool) -> int:
    models: list[dict[str, Any]] = []
    for name in store.list_models():
        versions = store.list_versions(name)
        aliases = store.aliases(name)
        latest = aliases["latest"]
        try:
            created_at = store.resolve(f"{name}:{latest}").manifest.get("created_at")
        except StoreError:
            created_at = None
        models.append(
            {
                "name": name,
                "versions": versions,
                "latest": latest,
                "aliases": aliases,
                "created_at": created_at,
            }
        )
    if as_json:
        _print_json({"store": str(store.root), "models": models})
        return EXIT_OK
    if not models:
        print(f"no models in {store.root}")
        return EXIT_OK
    rows = [
        [
            model["name"],
            str(len(model["versions"])),
            str(model["latest"]),
            ", ".join(
                f"{alias}={version}"
                for alias, version in model["aliases"].items()
                if alias != "latest"
            )
            or "-",
            model["created_at"] or "-",
        ]
        for model in models
    ]
    print(format_table(["MODEL", "VERSIONS", "LATEST", "ALIASES", "CREATED"], rows))
    return EXIT_OK


def _list_versions(store: ArtifactStore, name: str, as_json: bool) -> int:
    aliases = store.aliases(name)
    by_version = _aliases_by_version(aliases)
    entries: list[dict[str, Any]] = []
    for version in store.list_versions(name):
        entry: dict[str, Any] = {
            "version": version,
            "aliases": by_version.get(version, []),
        }
        try:
            manifest = store.resolve(f"{name}:{version}").manifest
        except IntegrityError as exc:
            entry["error"] = exc.message
        else:
            entry["created_at"] = manifest.get("created_at")
            entry["bytes"] = sum(item["bytes"] for item in manifest["files"].values())
            entry["weights_digest"] = manifest.get("weights_digest")
        entries.append(entry)
    if as_json:
        _print_json({"name": name, "aliases": aliases, "versions": entries})
        return EXIT_OK
    rows = [
        [
            str(entry["version"]),
            entry.get("created_at") or "-",
            ", ".join(entry["aliases"]) or "-",
            _format_bytes(entry["bytes"]) if "bytes" in entry else "-",
            _short_digest(entry.get("weights_digest"))
            if "error" not in entry
            else "damaged: run gaussprobe models verify",
        ]
        for entry in entries
    ]
    print(
        format_table(["VERSION", "CREATED", "ALIASES", "SIZE", "WEIGHTS DIGEST"], rows)
    )
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    """Print the models of the store, or the versions of ``args.name``."""
    store = _store_from_args(args, read_only=True)
    if _missing_store(store):
        return EXIT_ERROR
    try:
        if args.name is None:
            return _list_models(store, args.json)
        return _list_versions(store, args.name, args.json)
    except StoreError as exc:
        _print_error(exc)
        return EXIT_PROBLEMS if isinstance(exc, IntegrityError) else EXIT_ERROR


_SHOW_FIELDS = (
    ("created_at", ("created_at",)),
    ("format_version", ("format_version",)),
    ("dim", ("dim",)),
    ("dtype", ("dtype",)),
    ("feature_names", ("feature_names",)),
    ("seed", ("seed",)),
    ("weights_digest", ("weights_digest",)),
    ("data.source", ("data", "source")),
    ("data.num_rows", ("data", "num_rows")),
    ("training.epochs_run", ("training", "epochs_run")),
    ("test mean NLL", ("diagnostics", "test", "mean_nll")),
)


def _lookup(manifest: dict[str, Any], keys: tuple[str, ...]) -> Any:
    value: Any = manifest
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def run_show(args: argparse.Namespace) -> int:
    """Print one version's manifest summary and file table."""
    store = _store_from_args(args, read_only=True)
    try:
        version = store.resolve(parse_ref(args.ref))
        aliases = _aliases_by_version(store.aliases(version.name)).get(
            version.version, []
        )
    except StoreError as exc:
        _print_error(exc)
        return EXIT_PROBLEMS if isinstance(exc, IntegrityError) else EXIT_ERROR

    if args.json:
        _print_json(
            {
                "name": version.name,
                "version": version.version,
                "path": str(version.path),
                "aliases": aliases,
                "manifest": version.manifest,
            }
        )
        return EXIT_OK

    rows = [["path", str(version.path)], ["aliases", ", ".join(aliases) or "-"]]
    for label, keys in _SHOW_FIELDS:
        value = _lookup(version.manifest, keys)
        if value is None:
            continue
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        rows.append([label, text])

    print(version.ref)
    print(format_table(["FIELD", "VALUE"], rows))
    print()
    file_rows = [
        [relpath, str(entry["bytes"]), entry["sha256"]]
        for relpath, entry in sorted(version.files.items())
    ]
    print(format_table(["FILE", "BYTES", "SHA256"], file_rows))
    return EXIT_OK


def run_verify(args: argparse.Namespace) -> int:
    """Re-hash stored files and print each problem with its file name.

    Returns:
        ``EXIT_PROBLEMS`` when any problem is found, else ``EXIT_OK``.
    """
    store = _store_from_args(args, read_only=True)
    if _missing_store(store):
        return EXIT_ERROR
    try:
        problems = store.verify(args.ref)
        if args.ref is None:
            checked = [
                f"{name}:{version}"
                for name in store.list_models()
                for version in store.list_versions(name)
            ]
        else:
            ref = parse_ref(args.ref)
            if ref.version is None and ref.alias is None:
                checked = [f"{ref.name}:{v}" for v in store.list_versions(ref.name)]
            else:
                checked = [str(ref)]
    except StoreError as exc:
        _print_error(exc)
        return EXIT_ERROR
    if args.json:
        _print_json(
            {
                "store": str(store.root),
                "ok": not problems,
                "checked": checked,
                "problems": [problem.to_dict() for problem in problems],
            }
        )
    else:
        for problem in problems:
            print(f"FAIL {problem}")
        summary = f"checked {len(checked)} version(s) in {store.root}: "
        print(summary + (f"{len(problems)} problem(s)" if problems else "all OK"))
    return EXIT_PROBLEMS if problems else EXIT_OK


def run_alias(args: argparse.Namespace) -> int:
    """Point ``args.alias`` of model ``args.name`` at ``args.version``."""
    store = _store_from_args(args, read_only=False)
    try:
        previous = store.set_alias(args.name, args.version, args.alias)
    except StoreError as exc:
        _print_error(exc)
        return EXIT_PROBLEMS if isinstance(exc, IntegrityError) else EXIT_ERROR
    version = int(args.version)
    if args.json:
        _print_json(
            {
                "name": args.name,
                "alias": args.alias,
                "version": version,
                "previous": previous,
            }
        )
    else:
        was = f" (was {previous})" if previous is not None else " (new alias)"
        print(f"{args.name}@{args.alias} -> {version}{was}")
    return EXIT_OK


def run_gc(args: argparse.Namespace) -> int:
    """Remove stale temporary entries and print what was removed."""
    store = _store_from_args(args, read_only=False)
    try:
        removed = store.gc(args.min_age_seconds)
    except (StoreError, ValueError) as exc:
        _print_error(exc)
        return EXIT_ERROR
    if args.json:
        _print_json({"removed": [str(path) for path in removed]})
    else:
        for path in removed:
            print(f"removed {path}")
        print(f"removed {len(removed)} temporary entries")
    return EXIT_OK
