"""Gaussianization flows on Keras 3 and JAX: train, freeze, invert, score.

Public API::

    from flow import fit_and_freeze, freeze_flow, is_fully_frozen, GaussianizationFlow

Importing the package only selects the Keras backend; Keras and JAX load on
first use of a public name, so ``flow.store`` and the command line start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from flow._backend import enable_float64, select_jax_backend

select_jax_backend()

__version__ = "0.1.0"

_EXPORTS = {
    "Bijector": "flow._bijector",
    "CompiledFlow": "flow._compiled",
    "FixedOrtho": "flow._fixed_ortho",
    "GaussianizationFlow": "flow._model",
    "Householder": "flow._householder",
    "MappingLimitError": "flow._mappings",
    "MixtureCDFGaussianization": "flow._mixture_cdf",
    "Standardize": "flow._standardize",
    "compute_diagnostics": "flow._diagnostics",
    "fit_and_freeze": "flow._training",
    "freeze_flow": "flow._freeze",
    "is_fully_frozen": "flow._freeze",
    "load_flow": "flow._saving",
    "mardia_test": "flow._diagnostics",
    "pca_rotation": "flow._fixed_ortho",
    "standard_normal_log_prob": "flow._model",
    "weights_digest": "flow._digest",
}

__all__ = [
    "Bijector",
    "CompiledFlow",
    "FixedOrtho",
    "GaussianizationFlow",
    "Householder",
    "MappingLimitError",
    "MixtureCDFGaussianization",
    "Standardize",
    "compute_diagnostics",
    "enable_float64",
    "fit_and_freeze",
    "freeze_flow",
    "is_fully_frozen",
    "load_flow",
    "mardia_test",
    "pca_rotation",
    "standard_normal_log_prob",
    "weights_digest",
]

if TYPE_CHECKING:
    from flow._bijector import Bijector
    from flow._compiled import CompiledFlow
    from flow._diagnostics import compute_diagnostics, mardia_test
    from flow._digest import weights_digest
    from flow._fixed_ortho import FixedOrtho, pca_rotation
    from flow._freeze import freeze_flow, is_fully_frozen
    from flow._householder import Householder
    from flow._mappings import MappingLimitError
    from flow._mixture_cdf import MixtureCDFGaussianization
    from flow._model import GaussianizationFlow, standard_normal_log_prob
    from flow._saving import load_flow
    from flow._standardize import Standardize
    from flow._training import fit_and_freeze


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'flow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
