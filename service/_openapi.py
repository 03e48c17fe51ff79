"""OpenAPI descriptions of the routes that read raw bodies."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from service._decode import DTYPE_OPTION, JSON_TYPE, NPY_TYPE, NPZ_TYPE, RouteSpec

__all__ = [
    "ERROR_RESPONSES",
    "ErrorBody",
    "compute_extra",
    "file_extra",
    "html_extra",
    "with_path_parameters",
]

_PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "description": "model name"},
    "version": {"type": "integer", "description": "model version number"},
    "file": {"type": "string", "description": "path below the report folder"},
}


class ErrorBody(BaseModel):
    """Body of every 4xx and 5xx response."""

    code: str
    message: str
    request_id: str
    detail: dict[str, Any] | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "invalid_json, invalid_npy or empty_body"),
        (401, "unauthorized"),
        (404, "model_not_found, version_not_found or not_found"),
        (406, "not_acceptable"),
        (413, "payload_too_large or batch_too_large"),
        (415, "unsupported_media_type"),
        (
            422,
            "missing_field, invalid_shape, ragged_rows, invalid_value, non_finite, "
            "invalid_dtype or invalid_option",
        ),
        (503, "not_ready"),
    )
}

_MATRIX = {
    "type": "array",
    "items": {"type": "array", "items": {"type": "number"}},
    "description": "2-D array `(batch, d)` as a list of rows",
}
_BINARY = {"type": "string", "format": "binary"}


def compute_extra(spec: RouteSpec) -> dict[str, Any]:
    """Describe the JSON/.npy/.npz request body and query options of a model route."""
    properties: dict[str, Any] = {name: _MATRIX for name in spec.array_names}
    for name in spec.bool_options:
        properties[name] = {"type": "boolean", "default": False}
    if spec.binary_response:
        properties[DTYPE_OPTION] = {
            "type": "string",
            "enum": ["float32", "float64"],
            "description": "dtype of the response arrays (default: model dtype)",
        }
    content: dict[str, Any] = {
        JSON_TYPE: {
            "schema": {
                "type": "object",
                "properties": properties,
                "required": [spec.primary],
                "additionalProperties": False,
            }
        },
        NPY_TYPE: {"schema": _BINARY},
    }
    if spec.extra_arrays or spec.binary_response:
        content[NPZ_TYPE] = {"schema": _BINARY}
    parameters = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "schema": {"type": "boolean"},
            "description": "option for .npy/.npz bodies",
        }
        for name in spec.bool_options
    ]
    if spec.binary_response:
        parameters.append(
            {
                "name": DTYPE_OPTION,
                "in": "query",
                "required": False,
                "schema": {"type": "string", "enum": ["float32", "float64"]},
                "description": "dtype of the response arrays",
            }
        )
    extra: dict[str, Any] = {"requestBody": {"required": True, "content": content}}
    if parameters:
        extra["parameters"] = parameters
    return extra


def html_extra() -> dict[str, Any]:
    """Describe an HTML response."""
    return {"responses": {"200": {"content": {"text/html": {}}}}}


def file_extra() -> dict[str, Any]:
    """Describe a report file response."""
    return {"responses": {"200": {"content": {"image/png": {}, "text/html": {}}}}}


def with_path_parameters(path: str, extra: dict[str, Any]) -> dict[str, Any]:
    """Add the ``{name}``, ``{version}`` and ``{file}`` parameters ``path`` has.

    The endpoints read path parameters from the request, so FastAPI cannot
    infer them; this declares them for the schema.
    """
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": schema}
        for name, schema in _PATH_PARAMETERS.items()
        if "{" + name + "}" in path or "{" + name + ":path}" in path
    ]
    if not parameters:
        return extra
    merged = dict(extra)
    merged["parameters"] = parameters + list(extra.get("parameters", []))
    return merged
