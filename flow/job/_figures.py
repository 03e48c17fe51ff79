"""PNG figures of a training run, drawn with matplotlib's Agg canvas."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy import stats

__all__ = [
    "FIGURE_FILES",
    "MAX_PLOTTED_FEATURES",
    "MAX_SCATTER_POINTS",
    "render_figures",
]

MAX_SCATTER_POINTS = 5000
"""Rows drawn in scatter plots and QQ plots; larger inputs are subsampled."""

MAX_PLOTTED_FEATURES = 16
"""Features drawn in the per-feature figures; later features are left out."""

MIN_HISTOGRAM_BINS = 10
MAX_HISTOGRAM_BINS = 60
"""Bounds on the bins of the marginal histograms, which use sqrt(rows) bins."""

PANEL_INCHES = 3.0
"""Width and height of one subplot, in inches."""

GRID_COLUMNS = 4
"""Subplots per row in the per-feature figures."""

DPI = 100
"""Resolution of the PNG files, in dots per inch."""

SUBSAMPLE_SEED = 0
"""Seed of the row subsample of scatter and QQ plots, fixed so reruns draw alike."""

FIGURE_FILES = {
    "scatter": "scatter.png",
    "marginals": "marginals.png",
    "qq": "qq.png",
    "nll": "nll.png",
}
"""File name of each figure inside the report directory."""


def render_figures(
    x: np.ndarray,
    z: np.ndarray,
    history: Mapping[str, Any],
    feature_names: Sequence[str],
) -> dict[str, bytes]:
    """Draw the report figures and return them as PNG bytes by file name.

    Args:
        x: `(rows, features)` data as the flow saw it (raw units, dequantized).
        z: `(rows, features)` the flow's output T(x) for the same rows.
        history: Training history with lists ``loss`` and ``val_loss`` (mean NLL
            per epoch) and optionally ``best_epoch`` (counted from 1).
        feature_names: One name per feature.

    Returns:
        ``{file name: PNG bytes}`` for the files in ``FIGURE_FILES``.

    Raises:
        ValueError: if ``x`` and ``z`` are not 2-D arrays of the same shape.
    """
    x = np.asarray(x, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    if x.ndim != 2 or x.shape != z.shape:
        raise ValueError(
            f"x and z must be 2-D arrays of the same shape, got {x.shape} and {z.shape}"
        )
    if len(feature_names) != x.shape[1]:
        raise ValueError(
            f"got {len(feature_names)} feature names for {x.shape[1]} features"
        )
    x_points, z_points = _subsample(x, z)
    return {
        FIGURE_FILES["scatter"]: _scatter_figure(x_points, z_points, feature_names),
        FIGURE_FILES["marginals"]: _marginals_figure(z, feature_names),
        FIGURE_FILES["qq"]: _qq_figure(z_points, feature_names),
        FIGURE_FILES["nll"]: _nll_figure(history),
    }


def _subsample(x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if x.shape[0] <= MAX_SCATTER_POINTS:
        return x, z
    rng = np.random.default_rng(SUBSAMPLE_SEED)
    rows = np.sort(rng.choice(x.shape[0], size=MAX_SCATTER_POINTS, replace=False))
    return x[rows], z[rows]


def _to_png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _scatter_figure(
    x: np.ndarray, z: np.ndarray, feature_names: Sequence[str]
) -> bytes:
    figure = Figure(figsize=(2 * PANEL_INCHES + 1, PANEL_INCHES + 0.5), layout="tight")
    before, after = figure.subplots(1, 2)
    point_style = {"s": 3, "alpha": 0.4, "linewidths": 0}
    if x.shape[1] >= 2:
        before.scatter(x[:, 0], x[:, 1], **point_style)
        before.set_xlabel(feature_names[0])
        before.set_ylabel(feature_names[1])
        before.set_title("data x (first two features)")
        after.scatter(z[:, 0], z[:, 1], color="tab:orange", **point_style)
        after.set_xlabel(f"T(x)[{feature_names[0]}]")
        after.set_ylabel(f"T(x)[{feature_names[1]}]")
        after.set_title("Gaussianized T(x)")
        after.set_aspect("equal", adjustable="datalim")
    else:
        before.hist(x[:, 0], bins=MAX_HISTOGRAM_BINS, color="tab:blue")
        before.set_xlabel(feature_names[0])
        before.set_title("data x")
        after.scatter(x[:, 0], z[:, 0], color="tab:orange", **point_style)
        after.set_xlabel(feature_names[0])
        after.set_ylabel("T(x)")
        after.set_title("map x -> T(x)")
    return _to_png(figure)


def _feature_grid(num_features: int) -> tuple[Figure, list[Any]]:
    shown = min(num_features, MAX_PLOTTED_FEATURES)
    columns = min(shown, GRID_COLUMNS)
    rows = math.ceil(shown / columns)
    figure = Figure(
        figsize=(columns * PANEL_INCHES, rows * PANEL_INCHES), layout="tight"
    )
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for unused in axes[shown:]:
        unused.set_visible(False)
    return figure, list(axes[:shown])


def _marginals_figure(z: np.ndarray, feature_names: Sequence[str]) -> bytes:
    figure, axes = _feature_grid(z.shape[1])
    grid = np.linspace(-4.0, 4.0, 200)
    bins = int(np.clip(np.sqrt(z.shape[0]), MIN_HISTOGRAM_BINS, MAX_HISTOGRAM_BINS))
    for index, axis in enumerate(axes):
        axis.hist(
            z[:, index],
            bins=bins,
            density=True,
            color="tab:orange",
            alpha=0.7,
        )
        axis.plot(grid, stats.norm.pdf(grid), color="black", linewidth=1.2)
        axis.set_xlim(-4.5, 4.5)
        axis.set_title(f"T(x)[{feature_names[index]}]")
    if axes:
        axes[0].legend(["N(0, 1) density", "T(x) histogram"], fontsize="small")
    return _to_png(figure)


def _qq_figure(z: np.ndarray, feature_names: Sequence[str]) -> bytes:
    figure, axes = _feature_grid(z.shape[1])
    num_rows = z.shape[0]
    probabilities = (np.arange(1, num_rows + 1) - 0.5) / num_rows
    theoretical = stats.norm.ppf(probabilities)
    for index, axis in enumerate(axes):
        observed = np.sort(z[:, index])
        axis.scatter(theoretical, observed, s=3, color="tab:orange", linewidths=0)
        limit = max(4.0, float(np.max(np.abs(observed))))
        axis.plot([-limit, limit], [-limit, limit], color="black", linewidth=1.0)
        axis.set_xlabel("N(0, 1) quantile")
        axis.set_ylabel("T(x) quantile")
        axis.set_title(f"QQ {feature_names[index]}")
    return _to_png(figure)


def _nll_figure(history: Mapping[str, Any]) -> bytes:
    figure = Figure(figsize=(2 * PANEL_INCHES, PANEL_INCHES + 0.5), layout="tight")
    axis = figure.subplots()
    train = [float(value) for value in history.get("loss", [])]
    validation = [float(value) for value in history.get("val_loss", [])]
    if train:
        axis.plot(range(1, len(train) + 1), train, label="train NLL")
    if validation:
        axis.plot(range(1, len(validation) + 1), validation, label="validation NLL")
    best_epoch = history.get("best_epoch")
    if isinstance(best_epoch, int) and 1 <= best_epoch <= len(validation):
        axis.axvline(best_epoch, color="gray", linestyle="--", label="best epoch")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("epoch")
    axis.set_ylabel("mean NLL (nats)")
    axis.set_title("training and validation NLL")
    if train or validation:
        axis.legend(fontsize="small")
    return _to_png(figure)
