"""Report figures and the HTML page, rendered from synthetic arrays."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pytest

from flow.job._figures import FIGURE_FILES, render_figures
from flow.job._report import render_report_html

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(png: bytes) -> tuple[int, int]:
    width = int.from_bytes(png[16:20], "big")
    height = int.from_bytes(png[20:24], "big")
    return width, height


def _history() -> dict[str, Any]:
    return {
        "loss": [3.0, 2.5, 2.2, 2.1],
        "val_loss": [3.1, 2.6, 2.4, 2.45],
        "best_epoch": 2,
        "epochs_run": 4,
        "train_seconds": 1.5,
    }


def _diagnostics(dim: int) -> dict[str, Any]:
    return {
        "num_rows": 200,
        "mean_nll": 2.5,
        "per_feature": {
            "mean": [0.01] * dim,
            "variance": [0.98] * dim,
            "skew": [0.1] * dim,
            "excess_kurtosis": [-0.2] * dim,
            "ks_statistic": [0.03] * dim,
        },
        "covariance": np.eye(dim).tolist(),
        "mardia": {
            "skew_statistic": 1.0,
            "kurtosis_statistic": 0.5,
            "skew_p_value": 0.4,
            "kurtosis_p_value": 0.6,
        },
        "round_trip_max_error": 1e-6,
        "log_det_check_max_error": 1e-5,
    }


def _manifest(feature_names: list[str]) -> dict[str, Any]:
    dim = len(feature_names)
    return {
        "name": "demo",
        "feature_names": feature_names,
        "dim": dim,
        "dtype": "float32",
        "data": {
            "source": {"kind": "csv", "path": "/tmp/<script>alert(1)</script>.csv"},
            "fingerprint_sha256": "ab" * 32,
            "num_rows": 1000,
            "num_train": 720,
            "num_validation": 80,
            "num_test": 200,
        },
        "preprocessing": {
            "standardization": {"mean": [1.0] * dim, "std": [2.0] * dim},
            "dequantization": {
                "mode": "auto",
                "columns": [
                    {"name": feature_names[0], "quantum": 1.0, "reason": "a<b"}
                ],
            },
            "dropped_rows": 3,
        },
        "training": _history(),
        "diagnostics": {"train": _diagnostics(dim), "test": _diagnostics(dim)},
        "baselines": {
            "split": "test",
            "units": "raw units",
            "flow": {"mean_nll": 2.5},
            "gaussian": {"mean_nll": 3.0},
            "gmm": {"mean_nll": 2.7, "num_components": 10},
        },
        "weights_digest": "sha256:" + "cd" * 32,
        "flow_config": {"num_blocks": 2, "note": "</pre><b>x</b>"},
        "seed": 0,
    }


@pytest.mark.parametrize("dim", [pytest.param(1, id="1d"), pytest.param(3, id="3d")])
def test_figures_are_png(dim: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.exponential(size=(300, dim))
    z = rng.normal(size=(300, dim))
    figures = render_figures(x, z, _history(), [f"f{i}" for i in range(dim)])
    assert set(figures) == set(FIGURE_FILES.values())
    for png in figures.values():
        assert png.startswith(PNG_SIGNATURE)
        width, height = _png_size(png)
        assert width >= 200
        assert height >= 200


def test_feature_grid_grows_with_features() -> None:
    rng = np.random.default_rng(0)
    small = render_figures(
        rng.normal(size=(100, 2)), rng.normal(size=(100, 2)), _history(), ["a", "b"]
    )
    names = [f"f{i}" for i in range(9)]
    large = render_figures(
        rng.normal(size=(100, 9)), rng.normal(size=(100, 9)), _history(), names
    )
    assert _png_size(large["marginals.png"])[1] > _png_size(small["marginals.png"])[1]


def test_figures_reject_shape_mismatch() -> None:
    with pytest.raises(ValueError, match=r"same shape, got \(10, 2\) and \(10, 3\)"):
        render_figures(np.zeros((10, 2)), np.zeros((10, 3)), _history(), ["a", "b"])


def test_figures_reject_wrong_name_count() -> None:
    with pytest.raises(ValueError, match=r"got 1 feature names for 2 features"):
        render_figures(np.zeros((10, 2)), np.zeros((10, 2)), _history(), ["a"])


class _TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")


def _render(feature_names: list[str]) -> tuple[str, dict[str, bytes]]:
    rng = np.random.default_rng(1)
    dim = len(feature_names)
    figures = render_figures(
        rng.normal(size=(200, dim)),
        rng.normal(size=(200, dim)),
        _history(),
        feature_names,
    )
    return render_report_html(_manifest(feature_names), figures), figures


def test_report_embeds_every_figure() -> None:
    page, figures = _render(["age", "income"])
    collector = _TagCollector()
    collector.feed(page)
    assert len(collector.images) == len(FIGURE_FILES)
    embedded = {
        base64.b64decode(src.removeprefix("data:image/png;base64,"))
        for src in collector.images
    }
    assert embedded == set(figures.values())


def test_report_escapes_manifest_values() -> None:
    page, _ = _render(["<b>age</b>", "income"])
    collector = _TagCollector()
    collector.feed(page)
    assert "script" not in collector.tags
    assert "b" not in collector.tags
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;age&lt;/b&gt;" in page
    assert "&lt;/pre&gt;&lt;b&gt;x&lt;/b&gt;" in page
    assert "a&lt;b" in page


def test_report_shows_baselines_and_diagnostics() -> None:
    page, _ = _render(["age", "income"])
    assert "Held-out mean negative log-likelihood" in page
    assert re.search(r"flow better by 0\.5\b", page)
    assert re.search(r"flow better by 0\.2\b", page)
    assert page.count("<th>KS statistic</th>") == 2
    assert "Rows dropped for missing values: 3" in page
    assert "sha256:" + "cd" * 32 in page


def test_report_without_optional_sections() -> None:
    page = render_report_html({"name": "bare"}, {})
    assert page.startswith("<!DOCTYPE html>")
    assert "gaussprobe report: bare" in page
    assert "<img" not in page
