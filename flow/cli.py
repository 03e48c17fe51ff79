"""The ``gaussprobe`` console script: train, manage and serve flow probes.

Subcommands:
    train   train a flow on a data set and publish it to the store
    models  list, show, verify and alias stored model versions
    serve   serve stored models over HTTP

``serve`` is imported only when it is the requested command, so ``train`` and
``models`` never import the web stack.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["STORE_ENV_VAR", "build_parser", "main"]

STORE_ENV_VAR = "GAUSSPROBE_STORE"
"""Environment variable with the store path, used when ``--store`` is not given."""

DEFAULT_STORE = "./store"
"""Store path when neither ``--store`` nor ``GAUSSPROBE_STORE`` is set."""

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_STORE_HELP = (
    f"artifact store directory (default: ${STORE_ENV_VAR} if set, else {DEFAULT_STORE})"
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Build the ``gaussprobe`` argument parser.

    Args:
        command: The subcommand about to run. The full ``serve`` parser (which
            imports the web service) is built only when this is ``"serve"``.
    """
    parser = argparse.ArgumentParser(
        prog="gaussprobe",
        description="Train, version and serve frozen Gaussianization-flow probes.",
    )
    # A separate dest, because a subcommand's own --store default (None in
    # ``serve``) would overwrite a value given before the subcommand name.
    parser.add_argument(
        "--store", dest="global_store", default=None, metavar="PATH", help=_STORE_HELP
    )
    parser.add_argument(
        "--log-level",
        dest="global_log_level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="log level of train and models messages on standard error "
        "(default: %(default)s; serve has its own --log-level)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True

    # Subcommands also accept --store after their name; SUPPRESS keeps a value
    # given before the subcommand when it is not repeated after it.
    store_parent = argparse.ArgumentParser(add_help=False)
    store_parent.add_argument(
        "--store", default=argparse.SUPPRESS, metavar="PATH", help=_STORE_HELP
    )

    from flow.job import add_train_parser

    add_train_parser(subparsers, store_parent)
    _add_models_parser(subparsers)
    if command == "serve":
        _add_serve_parser(subparsers)
    else:
        subparsers.add_parser(
            "serve",
            help="serve stored models over HTTP (see gaussprobe serve --help)",
            add_help=False,
        )
    return parser


def _add_serve_parser(subparsers: Any) -> None:
    try:
        from service.cli import add_serve_parser, run_serve
    except ImportError as error:
        logging.getLogger(__name__).debug("serve command unavailable: %s", error)
        subparsers.add_parser("serve", help="serve stored models over HTTP")
        return
    serve_parser = add_serve_parser(subparsers)
    serve_parser.set_defaults(func=run_serve)


def _add_models_parser(subparsers: Any) -> None:
    try:
        from flow.store.cli import add_models_parser
    except ImportError as error:
        logging.getLogger(__name__).debug("models commands unavailable: %s", error)
        return
    add_models_parser(subparsers)


def _requested_command(argv: Sequence[str]) -> str | None:
    """Return the first positional argument, skipping top-level options."""
    options_with_value = {"--store", "--log-level"}
    skip_next = False
    for argument in argv:
        if skip_next:
            skip_next = False
            continue
        if argument in options_with_value:
            skip_next = True
            continue
        if argument.startswith("-"):
            continue
        return argument
    return None


def _resolve_store(args: argparse.Namespace) -> None:
    """Set ``args.store`` from the subcommand flag, the global flag or the env."""
    store = getattr(args, "store", None) or args.global_store
    if store is None:
        store = os.environ.get(STORE_ENV_VAR) or DEFAULT_STORE
    args.store = Path(store)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gaussprobe`` command line and return its exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_requested_command(arguments))
    args = parser.parse_args(arguments)
    if args.command != "serve":
        # serve configures logging from its own --log-level and environment.
        logging.basicConfig(level=args.global_log_level.upper(), format=LOG_FORMAT)
    _resolve_store(args)
    handler: Callable[[argparse.Namespace], int | None] | None = getattr(
        args, "func", None
    )
    if handler is None:
        parser.error(f"the command {args.command!r} is not available in this install")
    return int(handler(args) or 0)
