"""The ``gaussprobe train`` subcommand."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from flow.job._baselines import GMM_NUM_COMPONENTS
from flow.job._dequantize import DEFAULT_TIE_FRACTION
from flow.job._errors import TrainingInputError
from flow.job._settings import SUPPORTED_DTYPES, TrainSettings
from flow.job._sources import BUILTIN_DATASETS, parse_column_list
from flow.job._split import DEFAULT_TEST_FRACTION
from flow.job._validation import DEFAULT_MIN_ROWS

__all__ = ["EXIT_INPUT_ERROR", "EXIT_STORE_ERROR", "add_train_parser", "run_train"]

logger = logging.getLogger(__name__)

EXIT_INPUT_ERROR = 2
"""Exit status for invalid data or options, the same as argparse usage errors."""

EXIT_STORE_ERROR = 1
"""Exit status when the store rejects the publish."""

_DEFAULTS = TrainSettings(source="")

_DESCRIPTION = f"""\
Train a Gaussianization flow on tabular data, freeze it and publish it to the
artifact store as a new version with its manifest, reference outputs and an
HTML report. The model includes per-feature standardization, so clients send
raw rows. Integer-valued and heavily tied columns are dequantized with uniform
noise of one quantum before training. By default 20% of the rows are held out
to compare the flow with a full-covariance Gaussian and a
{GMM_NUM_COMPONENTS}-component Gaussian mixture.
"""

_EPILOG = """\
examples:
  gaussprobe train moons --epochs 40
  gaussprobe train adult --epochs 40 --batch-size 512
  gaussprobe train german_credit --columns credit_amount,duration,age
  gaussprobe train data.csv --columns income,age --drop-missing --name income
  gaussprobe train features.npz --array-key x --alias production
"""


def add_train_parser(subparsers: Any, store_parent: argparse.ArgumentParser) -> None:
    """Add the ``train`` subcommand to a ``gaussprobe`` subparsers object.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers``.
        store_parent: Parser holding the shared ``--store`` option.
    """
    parser = subparsers.add_parser(
        "train",
        parents=[store_parent],
        help="train a flow on a data set and publish it to the store",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "source",
        metavar="DATA",
        help=(
            "built-in data set ("
            + ", ".join(sorted(BUILTIN_DATASETS))
            + ") or path to a .csv file with a header row, a .npy or a .npz file"
        ),
    )

    data = parser.add_argument_group("data")
    data.add_argument(
        "--columns",
        metavar="NAMES",
        help=(
            "comma-separated columns to use: CSV header names, or x0,x1,... / "
            "0,1,... for arrays (default: every column of a file; adult: "
            + ",".join(BUILTIN_DATASETS["adult"].default_columns)
            + "; german_credit: "
            + ",".join(BUILTIN_DATASETS["german_credit"].default_columns)
            + ")"
        ),
    )
    data.add_argument(
        "--array-key", metavar="KEY", help="array to read from a .npz file"
    )
    data.add_argument(
        "--drop-missing",
        action="store_true",
        help="drop rows with missing values (empty, NA, NaN, ?) instead of failing",
    )
    data.add_argument(
        "--min-rows",
        type=int,
        default=DEFAULT_MIN_ROWS,
        metavar="N",
        help="fail if fewer complete rows remain (default: %(default)s)",
    )
    data.add_argument(
        "--dequantize",
        choices=("auto", "off"),
        default="auto",
        help=(
            "auto: add U(-q/2, q/2) noise to integer-valued or tied columns, q the "
            "column's quantum; off: never (default: %(default)s)"
        ),
    )
    data.add_argument(
        "--tie-fraction",
        type=float,
        default=DEFAULT_TIE_FRACTION,
        metavar="F",
        help=(
            "a column whose most frequent value covers more than this fraction of "
            "rows counts as tied (default: %(default)s)"
        ),
    )
    data.add_argument(
        "--test-fraction",
        type=float,
        default=DEFAULT_TEST_FRACTION,
        metavar="F",
        help="fraction of rows held out for diagnostics and baselines "
        "(default: %(default)s)",
    )

    model = parser.add_argument_group("flow and training")
    model.add_argument(
        "--blocks",
        type=int,
        default=_DEFAULTS.num_blocks,
        metavar="N",
        help="flow blocks (default: %(default)s)",
    )
    model.add_argument(
        "--components",
        type=int,
        default=_DEFAULTS.num_components,
        metavar="K",
        help="mixture components per marginal layer (default: %(default)s)",
    )
    model.add_argument(
        "--marginal-first",
        action=argparse.BooleanOptionalAction,
        default=_DEFAULTS.marginal_first,
        help="Gaussianize each feature before the first rotation, so atoms of "
        "tied columns are not smeared across features (default: on)",
    )
    model.add_argument(
        "--epochs",
        type=int,
        default=_DEFAULTS.epochs,
        metavar="N",
        help="maximum training epochs (default: %(default)s)",
    )
    model.add_argument(
        "--batch-size",
        type=int,
        default=_DEFAULTS.batch_size,
        metavar="ROWS",
        help="rows per gradient step (default: %(default)s)",
    )
    model.add_argument(
        "--lr",
        type=float,
        default=_DEFAULTS.learning_rate,
        metavar="RATE",
        help="Adam learning rate (default: %(default)s)",
    )
    model.add_argument(
        "--patience",
        type=int,
        default=_DEFAULTS.patience,
        metavar="EPOCHS",
        help="stop after this many epochs without validation improvement "
        "(default: %(default)s)",
    )
    model.add_argument(
        "--validation-split",
        type=float,
        default=_DEFAULTS.validation_split,
        metavar="F",
        help="fraction of the training rows used for early stopping "
        "(default: %(default)s)",
    )
    model.add_argument(
        "--seed",
        type=int,
        default=_DEFAULTS.seed,
        metavar="N",
        help="seed of the split, dequantization noise and initialisation "
        "(default: %(default)s)",
    )
    model.add_argument(
        "--dtype",
        choices=SUPPORTED_DTYPES,
        default=_DEFAULTS.dtype,
        help="model dtype (default: %(default)s)",
    )

    publish = parser.add_argument_group("publishing")
    publish.add_argument(
        "--name",
        metavar="NAME",
        help="model name in the store (default: the data set name or file stem)",
    )
    publish.add_argument(
        "--alias",
        metavar="ALIAS",
        help="alias to point at the new version, e.g. production "
        "(the store always moves 'latest')",
    )
    parser.set_defaults(func=run_train)


def settings_from_args(args: argparse.Namespace) -> TrainSettings:
    """Build TrainSettings from parsed ``gaussprobe train`` arguments."""
    columns = parse_column_list(args.columns)
    return TrainSettings(
        source=args.source,
        columns=tuple(columns) if columns is not None else None,
        array_key=args.array_key,
        drop_missing=args.drop_missing,
        min_rows=args.min_rows,
        dequantize=args.dequantize,
        tie_fraction=args.tie_fraction,
        test_fraction=args.test_fraction,
        num_blocks=args.blocks,
        num_components=args.components,
        marginal_first=args.marginal_first,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        patience=args.patience,
        validation_split=args.validation_split,
        seed=args.seed,
        dtype=args.dtype,
        name=args.name,
        alias=args.alias,
    )


def run_train(args: argparse.Namespace) -> int:
    """Run ``gaussprobe train``; return the process exit status.

    Returns 0 on success, 2 for invalid data or options and 1 when the store
    rejects the publish (for example a read-only directory).
    """
    from flow.job._train import train
    from flow.store import StoreError

    try:
        settings = settings_from_args(args)
        result = train(settings, Path(args.store))
    except TrainingInputError as error:
        print(f"gaussprobe train: error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except StoreError as error:
        logger.error("publishing to the store %s failed: %s", args.store, error)
        print(f"gaussprobe train: error: publishing failed: {error}", file=sys.stderr)
        return EXIT_STORE_ERROR
    _print_summary(result.name, result.version, result.path, result.manifest)
    return 0


def _print_summary(
    name: str, version: int, path: Path, manifest: dict[str, Any]
) -> None:
    baselines = manifest.get("baselines", {})
    flow_nll = baselines.get("flow", {}).get("mean_nll")
    print(f"published {name}:{version} at {path}")
    print(
        f"held-out mean NLL ({baselines.get('num_rows', '?')} test rows, "
        "nats per row, raw units, lower is better):"
    )
    for key, label in (
        ("flow", "Gaussianization flow"),
        ("gaussian", "full-covariance Gaussian"),
        ("gmm", f"Gaussian mixture ({GMM_NUM_COMPONENTS} components)"),
    ):
        value = baselines.get(key, {}).get("mean_nll")
        if value is None:
            continue
        line = f"  {label:<36} {value:12.4f}"
        if key != "flow" and flow_nll is not None:
            line += f"   flow {'better' if flow_nll < value else 'worse'} by "
            line += f"{abs(value - flow_nll):.4f}"
        print(line)
    test = manifest.get("diagnostics", {}).get("test", {})
    per_feature = test.get("per_feature", {})
    if per_feature:
        print("T(x) on the test split (target: mean 0, variance 1):")
        for index, feature in enumerate(manifest.get("feature_names", [])):
            print(
                f"  {feature:<20} mean {per_feature['mean'][index]:+.3f}  "
                f"variance {per_feature['variance'][index]:.3f}  "
                f"skew {per_feature['skew'][index]:+.3f}  "
                f"KS {per_feature['ks_statistic'][index]:.3f}"
            )
    print(f"report: {path / 'report' / 'index.html'}")
