"""``gaussprobe serve`` and ``python -m service``: run the HTTP service with uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from service._logging import configure_logging
from service._settings import Settings

__all__ = [
    "add_serve_parser",
    "build_parser",
    "main",
    "run_serve",
    "settings_from_args",
]

logger = logging.getLogger(__name__)

APP_FACTORY = "service:create_app"
EXIT_USAGE = 2

_DESCRIPTION = (
    "Serve frozen flows from an artifact store over HTTP. Settings not given as "
    "flags come from GAUSSPROBE_* environment variables; the API key only from "
    "GAUSSPROBE_API_KEY or --api-key-file, so it never shows in process lists."
)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        type=Path,
        help="artifact store directory, opened read-only (env GAUSSPROBE_STORE, "
        "default ./store)",
    )
    parser.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="NAME[:VERSION|@ALIAS]",
        help="model to serve; repeat for several, the first is the default model "
        "(env GAUSSPROBE_MODELS, comma-separated; default: latest of every model)",
    )
    parser.add_argument("--host", help="bind address (env GAUSSPROBE_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (env GAUSSPROBE_PORT, 8000)")
    parser.add_argument(
        "--workers",
        type=int,
        help="worker processes, each loading every model (env GAUSSPROBE_WORKERS, 1)",
    )
    parser.add_argument(
        "--max-batch-rows",
        type=int,
        help="largest batch in rows (env GAUSSPROBE_MAX_BATCH_ROWS, 262144)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        help="largest request body in bytes (env GAUSSPROBE_MAX_BODY_BYTES, 268435456)",
    )
    parser.add_argument(
        "--warmup-max-rows",
        type=int,
        help="compile batch buckets up to this many rows at start-up; larger "
        "ones compile on first use (env GAUSSPROBE_WARMUP_MAX_ROWS; default: "
        "every bucket)",
    )
    parser.add_argument(
        "--ready-after-warmup",
        action="store_true",
        default=None,
        help="report ready only after every bucket up to --warmup-max-rows has "
        "compiled, instead of after the self-test's programs (env "
        "GAUSSPROBE_READY_AFTER_WARMUP, false)",
    )
    parser.add_argument(
        "--compilation-cache",
        type=Path,
        metavar="DIR",
        help="directory where XLA keeps compiled programs so restarts skip "
        "compiling (env GAUSSPROBE_COMPILATION_CACHE; default: no cache)",
    )
    parser.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        help="log level (env GAUSSPROBE_LOG_LEVEL, info)",
    )
    parser.add_argument(
        "--api-key-file",
        type=Path,
        help="file whose first line is the API key clients must send as a bearer "
        "token (overrides GAUSSPROBE_API_KEY)",
    )


def add_serve_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to a ``gaussprobe`` argument parser.

    The caller dispatches to :func:`run_serve` with the parsed namespace.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="serve models from a store over HTTP", description=_DESCRIPTION
    )
    _add_arguments(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of ``python -m service`` (the same flags as ``serve``)."""
    parser = argparse.ArgumentParser(prog="python -m service", description=_DESCRIPTION)
    _add_arguments(parser)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Merge parsed flags over the ``GAUSSPROBE_*`` environment.

    Raises:
        ValueError: A flag, variable or the API key file is invalid.
    """
    settings = Settings.from_env()
    changes: dict[str, object] = {}
    for name in (
        "store",
        "host",
        "port",
        "workers",
        "max_batch_rows",
        "max_body_bytes",
        "warmup_max_rows",
        "ready_after_warmup",
        "compilation_cache",
        "log_level",
    ):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    models = getattr(args, "models", None)
    if models:
        changes["models"] = tuple(models)
    key_file = getattr(args, "api_key_file", None)
    if key_file is not None:
        try:
            lines = key_file.read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise ValueError(
                f"cannot read --api-key-file {key_file}: {error}"
            ) from None
        changes["api_key"] = lines[0].strip() if lines else ""
    return settings.replace(**changes) if changes else settings


def run_serve(args: argparse.Namespace) -> int:
    """Run the service until SIGTERM or SIGINT; return the exit status.

    With one worker the app is created here. With several, uvicorn starts
    worker processes, and each builds the app from ``GAUSSPROBE_*`` variables
    exported from the merged settings.
    """
    import uvicorn

    try:
        settings = settings_from_args(args)
    except ValueError as error:
        print(f"gaussprobe serve: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings.log_level)
    graceful_seconds = int(settings.drain_timeout_seconds) + 1
    if settings.workers == 1:
        from service._app import create_app

        config = uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            access_log=False,
            timeout_graceful_shutdown=graceful_seconds,
            log_config=None,
        )
        uvicorn.Server(config).run()
        return 0
    os.environ.update(settings.to_env())
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=graceful_seconds,
        log_config=None,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m service``."""
    args = build_parser().parse_args(argv)
    return run_serve(args)
