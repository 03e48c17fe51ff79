"""Training job: data sources, preprocessing, report and the ``train`` command.

Only light modules are imported here; the flow library, the store, JAX and
scikit-learn are imported when a run starts.
"""

from flow.job._cli import EXIT_INPUT_ERROR, add_train_parser, run_train
from flow.job._dequantize import (
    DEFAULT_TIE_FRACTION,
    ColumnQuantization,
    apply_dequantization,
    estimate_quantum,
    plan_dequantization,
)
from flow.job._errors import TrainingInputError
from flow.job._settings import TrainSettings
from flow.job._sources import BUILTIN_DATASETS, LoadedData, load_source

__all__ = [
    "BUILTIN_DATASETS",
    "DEFAULT_TIE_FRACTION",
    "EXIT_INPUT_ERROR",
    "ColumnQuantization",
    "LoadedData",
    "TrainSettings",
    "TrainingInputError",
    "add_train_parser",
    "apply_dequantization",
    "estimate_quantum",
    "load_source",
    "plan_dequantization",
    "run_train",
]
