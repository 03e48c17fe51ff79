"""Self-contained HTML report of a training run.

The page embeds its figures as base64 data URIs and carries its own CSS, so it
renders the same when opened from disk or served at any URL. Every value taken
from the manifest is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from flow.job._figures import FIGURE_FILES

__all__ = ["render_report_html"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.text, th.text { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.4em 0; }
code { background: #f6f6f6; padding: 0 0.2em; }
.better { color: #176b1f; font-weight: 600; }
"""

_FIGURE_CAPTIONS = {
    "scatter": "First two features before (x) and after (T(x)) the flow, test split.",
    "marginals": "Histograms of each coordinate of T(x) on the test split, "
    "with the N(0, 1) density.",
    "qq": "Quantiles of each coordinate of T(x) against N(0, 1), test split.",
    "nll": "Mean negative log-likelihood per epoch on training and validation rows.",
}

_PER_FEATURE_STATISTICS = (
    ("mean", "mean"),
    ("variance", "variance"),
    ("skew", "skew"),
    ("excess_kurtosis", "excess kurtosis"),
    ("ks_statistic", "KS statistic"),
)


def render_report_html(
    manifest: Mapping[str, Any], figures: Mapping[str, bytes]
) -> str:
    """Render the report page of one model version.

    Args:
        manifest: The manifest written by the training job (name, data,
            preprocessing, training, diagnostics, baselines, ...). Missing
            sections are left out of the page.
        figures: PNG bytes by file name, as returned by ``render_figures``.

    Returns:
        The HTML document as a string.
    """
    name = str(manifest.get("name", "model"))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>gaussprobe report: {_escape(name)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>gaussprobe report: {_escape(name)}</h1>",
        _summary_section(manifest),
        _baselines_section(manifest),
        _preprocessing_section(manifest),
        _diagnostics_section(manifest),
        _figures_section(figures),
        _configuration_section(manifest),
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


def _escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _escape(value)
    if isinstance(value, int):
        return f"{value:d}"
    return f"{value:.{digits}g}"


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    text_columns: Collection[int] = (0,),
) -> str:
    """Build a table from already escaped cells; ``text_columns`` align left."""
    head = "".join(
        f'<th class="text">{cell}</th>' if index in text_columns else f"<th>{cell}</th>"
        for index, cell in enumerate(header)
    )
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="text">{cell}</td>'
            if index in text_columns
            else f"<td>{cell}</td>"
            for index, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _summary_section(manifest: Mapping[str, Any]) -> str:
    data = manifest.get("data", {})
    training = manifest.get("training", {})
    source = data.get("source", {})
    source_text = (
        source.get("name") or source.get("path") if isinstance(source, dict) else source
    )
    rows = [
        ("model", _escape(manifest.get("name", ""))),
        ("data source", _escape(source_text)),
        ("features", _escape(", ".join(manifest.get("feature_names", [])))),
        ("dtype", _escape(manifest.get("dtype", ""))),
        (
            "rows (train / validation / test)",
            _escape(
                f"{data.get('num_train', '?')} / {data.get('num_validation', '?')} / "
                f"{data.get('num_test', '?')} of {data.get('num_rows', '?')}"
            ),
        ),
        (
            "data fingerprint (SHA-256)",
            f"<code>{_escape(data.get('fingerprint_sha256', ''))}</code>",
        ),
        (
            "weights digest",
            f"<code>{_escape(manifest.get('weights_digest', ''))}</code>",
        ),
        ("epochs run", _number(training.get("epochs_run", ""))),
        ("best epoch", _number(training.get("best_epoch", ""))),
        ("training time (s)", _number(training.get("train_seconds", ""))),
        ("seed", _number(manifest.get("seed", ""))),
    ]
    if isinstance(source, dict) and source.get("attribution"):
        rows.append(("data attribution", _escape(source["attribution"])))
    return "<h2>Summary</h2>" + _table(
        ["field", "value"], [list(row) for row in rows], text_columns=(0, 1)
    )


def _baselines_section(manifest: Mapping[str, Any]) -> str:
    baselines = manifest.get("baselines")
    if not isinstance(baselines, Mapping):
        return ""
    flow_nll = baselines.get("flow", {}).get("mean_nll")
    rows = []
    for key, label in (
        ("flow", "Gaussianization flow"),
        ("gaussian", "full-covariance Gaussian"),
        ("gmm", "Gaussian mixture (full covariance)"),
    ):
        entry = baselines.get(key)
        if not isinstance(entry, Mapping):
            continue
        value = entry.get("mean_nll")
        cell = _number(value)
        if key != "flow" and isinstance(value, float) and isinstance(flow_nll, float):
            verdict = "flow better" if flow_nll < value else "baseline better"
            css = ' class="better"' if flow_nll < value else ""
            margin = abs(value - flow_nll)
            cell += f" <span{css}>({_escape(verdict)} by {margin:.4g})</span>"
        components = entry.get("num_components")
        if components is not None:
            label = f"{label}, {components} components"
        rows.append([_escape(label), cell])
    units = baselines.get("units", "")
    split = baselines.get("split", "test")
    return (
        "<h2>Held-out mean negative log-likelihood</h2>"
        f"<p>Mean NLL in nats per row on the {_escape(split)} split, "
        f"{_escape(units)}. Lower is better.</p>" + _table(["model", "mean NLL"], rows)
    )


def _preprocessing_section(manifest: Mapping[str, Any]) -> str:
    preprocessing = manifest.get("preprocessing")
    if not isinstance(preprocessing, Mapping):
        return ""
    names = list(manifest.get("feature_names", []))
    parts = ["<h2>Preprocessing</h2>"]
    standardization = preprocessing.get("standardization")
    if isinstance(standardization, Mapping):
        means = standardization.get("mean", [])
        stds = standardization.get("std", [])
        rows = [
            [_escape(name), _number(mean), _number(std)]
            for name, mean, std in zip(names, means, stds, strict=False)
        ]
        parts.append(
            "<p>Each feature is standardized with the training mean and standard "
            "deviation inside the model, so the model takes raw rows.</p>"
            + _table(["feature", "mean", "std"], rows)
        )
    dequantization = preprocessing.get("dequantization")
    if isinstance(dequantization, Mapping):
        columns = dequantization.get("columns", [])
        if columns:
            rows = [
                [
                    _escape(entry.get("name", "")),
                    _number(entry.get("quantum")),
                    _escape(entry.get("reason", "")),
                ]
                for entry in columns
            ]
            parts.append(
                "<p>Columns with repeated values were dequantized: uniform noise "
                "U(-q/2, q/2) of the column's quantum q was added to every row "
                "before training and evaluation.</p>"
                + _table(["feature", "quantum q", "reason"], rows, text_columns=(0, 2))
            )
        else:
            mode = _escape(dequantization.get("mode", ""))
            parts.append(f"<p>No column was dequantized (mode {mode}).</p>")
    dropped = preprocessing.get("dropped_rows")
    if dropped:
        parts.append(f"<p>Rows dropped for missing values: {_number(dropped)}.</p>")
    return "".join(parts)


def _diagnostics_section(manifest: Mapping[str, Any]) -> str:
    diagnostics = manifest.get("diagnostics")
    if not isinstance(diagnostics, Mapping):
        return ""
    names = list(manifest.get("feature_names", []))
    parts = [
        "<h2>Diagnostics of T(x)</h2>",
        "<p>For a perfect Gaussianization every coordinate has mean 0, variance 1, "
        "skew 0, excess kurtosis 0 and a small KS statistic against N(0, 1).</p>",
    ]
    summary_rows = []
    for split, result in diagnostics.items():
        if not isinstance(result, Mapping):
            continue
        per_feature = result.get("per_feature", {})
        header = ["feature", *(label for _, label in _PER_FEATURE_STATISTICS)]
        rows = []
        for index, name in enumerate(names):
            row = [_escape(name)]
            for key, _ in _PER_FEATURE_STATISTICS:
                values = per_feature.get(key, [])
                row.append(_number(values[index]) if index < len(values) else "")
            rows.append(row)
        num_rows = _number(result.get("num_rows", ""))
        parts.append(f"<h3>{_escape(split)} split ({num_rows} rows)</h3>")
        parts.append(_table([_escape(cell) for cell in header], rows))
        mardia = result.get("mardia", {})
        summary_rows.append(
            [
                _escape(split),
                _number(result.get("mean_nll", "")),
                _number(mardia.get("skew_p_value", "")),
                _number(mardia.get("kurtosis_p_value", "")),
                _number(result.get("round_trip_max_error", "")),
                _number(result.get("log_det_check_max_error", "")),
            ]
        )
    parts.append(
        _table(
            [
                "split",
                "mean NLL",
                "Mardia skew p",
                "Mardia kurtosis p",
                "round-trip max error",
                "log-det check max error",
            ],
            summary_rows,
        )
    )
    return "".join(parts)


def _figures_section(figures: Mapping[str, bytes]) -> str:
    if not figures:
        return ""
    parts = ["<h2>Figures</h2>"]
    for key, filename in FIGURE_FILES.items():
        png = figures.get(filename)
        if png is None:
            continue
        encoded = base64.b64encode(png).decode("ascii")
        caption = _FIGURE_CAPTIONS.get(key, "")
        parts.append(
            f'<figure><img src="data:image/png;base64,{encoded}" '
            f'alt="{_escape(caption)}"><figcaption>{_escape(caption)}</figcaption></figure>'
        )
    return "".join(parts)


def _configuration_section(manifest: Mapping[str, Any]) -> str:
    sections = {
        key: manifest[key]
        for key in ("flow_config", "hyperparameters", "library_versions")
        if key in manifest
    }
    if not sections:
        return ""
    text = json.dumps(sections, indent=2, sort_keys=True, default=str)
    return f"<h2>Configuration</h2><pre>{_escape(text)}</pre>"
