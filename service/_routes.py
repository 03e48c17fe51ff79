"""HTTP routes: model computations, diagnostics, metadata, health and metrics."""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import numpy as np
from fastapi import FastAPI, Request
from starlette.responses import Response

from service import _openapi
from service._arrays import prepare_input
from service._body import read_body
from service._compute import (
    ComputeFn,
    compute_diagnostics_json,
    compute_invert,
    compute_logprob,
    compute_transform,
)
from service._context import ServiceContext
from service._decode import RouteSpec, decode_payload
from service._encode import choose_media_type, encode_arrays, json_response
from service._errors import ApiError
from service._lifecycle import Phase
from service._metrics import METRICS_CONTENT_TYPE
from service._registry import LoadedModel

__all__ = ["MODEL_PREFIXES", "register_routes"]

# Bodies and responses up to this size are parsed and serialized on the event
# loop. Larger ones go to a worker thread so they do not stall other requests.
INLINE_CODEC_MAX_BYTES = 65_536
MAX_JACOBIAN_SETTING = "max_jacobian_values (GAUSSPROBE_MAX_JACOBIAN_VALUES)"
MODEL_PREFIXES = ("", "/v1/models/{name}", "/v1/models/{name}/versions/{version}")
REPORT_INDEX = "index.html"

TRANSFORM = RouteSpec(
    "transform",
    "x",
    extra_arrays=("cotangent",),
    bool_options=("return_jacobian", "return_log_det"),
)
INVERT = RouteSpec("invert", "z")
LOGPROB = RouteSpec("logprob", "x", bool_options=("return_score",))
DIAGNOSTICS = RouteSpec("diagnostics", "x", binary_response=False)

_COMPUTE: dict[str, ComputeFn] = {
    "transform": compute_transform,
    "invert": compute_invert,
    "logprob": compute_logprob,
}


def _context(request: Request) -> ServiceContext:
    context: ServiceContext = request.app.state.service
    return context


def _model_for(request: Request, route: str) -> LoadedModel:
    context = _context(request)
    params = request.path_params
    model = context.registry.get(params.get("name"), params.get("version"))
    request.scope["state"]["model"] = model.name
    model.request_counts[route] += 1
    return model


async def _run(
    context: ServiceContext, function: Callable[..., Any], *args: Any
) -> Any:
    return await anyio.to_thread.run_sync(function, *args, limiter=context.limiter)


def _response_count(
    spec: RouteSpec, payload_arrays: dict[str, Any], options: dict[str, Any]
) -> int:
    if spec is TRANSFORM:
        return (
            1
            + bool(options.get("return_log_det"))
            + bool(options.get("return_jacobian"))
            + ("cotangent" in payload_arrays)
        )
    if spec is LOGPROB:
        return 1 + bool(options.get("return_score"))
    return 1


def _decode_and_prepare(
    context: ServiceContext,
    spec: RouteSpec,
    model: LoadedModel,
    body: bytes,
    content_type: str | None,
    query: dict[str, str],
    accept: str | None,
) -> tuple[dict[str, np.ndarray], dict[str, Any], str, np.dtype[Any]]:
    settings = context.settings
    payload = decode_payload(spec, body, content_type, query, settings.max_body_bytes)
    media_type = choose_media_type(
        accept,
        array_count=_response_count(spec, payload.arrays, payload.options),
        binary_allowed=spec.binary_response,
    )
    primary = prepare_input(
        spec.primary,
        payload.arrays[spec.primary],
        dim=model.dim,
        dtype=model.dtype,
        max_batch_rows=settings.max_batch_rows,
    )
    arrays = {spec.primary: primary}
    for name in spec.extra_arrays:
        if name in payload.arrays:
            arrays[name] = prepare_input(
                name,
                payload.arrays[name],
                dim=model.dim,
                dtype=model.dtype,
                max_batch_rows=settings.max_batch_rows,
                expected_rows=primary.shape[0],
            )
    if payload.options.get("return_jacobian"):
        values = primary.shape[0] * model.dim * model.dim
        if values > settings.max_jacobian_values:
            raise ApiError(
                413,
                "batch_too_large",
                f"the Jacobian of {primary.shape[0]} rows has {values} values, over "
                f"the limit of {settings.max_jacobian_values} set by "
                f"{MAX_JACOBIAN_SETTING}; send at most "
                f"{settings.max_jacobian_values // (model.dim * model.dim)} rows "
                "with return_jacobian",
                detail={"rows": primary.shape[0], "max_jacobian_values": values},
            )
    requested = payload.options.get("dtype")
    if requested is not None:
        response_dtype = np.dtype(requested)
    elif payload.binary_dtype is not None:
        response_dtype = payload.binary_dtype
    else:
        response_dtype = model.dtype
    return arrays, payload.options, media_type, response_dtype


async def _handle_compute(request: Request, spec: RouteSpec) -> Response:
    context = _context(request)
    model = _model_for(request, spec.name)
    template = request.scope["route"].path
    metrics = context.metrics

    began = time.perf_counter()
    body = await read_body(request, context.settings.max_body_bytes)
    decode_args = (
        context,
        spec,
        model,
        body,
        request.headers.get("content-type"),
        dict(request.query_params),
        request.headers.get("accept"),
    )
    if len(body) > INLINE_CODEC_MAX_BYTES:
        prepared = await _run(context, _decode_and_prepare, *decode_args)
    else:
        prepared = _decode_and_prepare(*decode_args)
    arrays, options, media_type, response_dtype = prepared
    decoded = time.perf_counter()

    rows = arrays[spec.primary].shape[0]
    outputs = await _run(context, _COMPUTE[spec.name], model, arrays, options)
    computed = time.perf_counter()

    output_bytes = (
        sum(array.size for array in outputs.values()) * response_dtype.itemsize
    )
    if output_bytes > INLINE_CODEC_MAX_BYTES:
        content = await _run(
            context, encode_arrays, outputs, media_type, response_dtype
        )
    else:
        content = encode_arrays(outputs, media_type, response_dtype)
    encoded = time.perf_counter()

    labels = (template, model.name)
    metrics.phase.labels(*labels, "decode").observe(decoded - began)
    metrics.phase.labels(*labels, "compute").observe(computed - decoded)
    metrics.phase.labels(*labels, "encode").observe(encoded - computed)
    metrics.rows.labels(*labels).observe(rows)
    return Response(content, media_type=media_type, headers=model.headers)


async def transform(request: Request) -> Response:
    """Map ``x`` `(batch, d)` to ``z``; optionally ``log_det``, ``jacobian``, ``dx``."""
    return await _handle_compute(request, TRANSFORM)


async def invert(request: Request) -> Response:
    """Map ``z`` `(batch, d)` back to ``x``."""
    return await _handle_compute(request, INVERT)


async def logprob(request: Request) -> Response:
    """Return ``log_prob`` `(batch,)` of ``x``; optionally ``score`` `(batch, d)`."""
    return await _handle_compute(request, LOGPROB)


async def diagnostics_get(request: Request) -> Response:
    """Return load-time diagnostics, weight digests, request counts and uptime."""
    context = _context(request)
    model = _model_for(request, "diagnostics")
    digest_now = await _run(context, _weights_digest, model.flow)
    manifest_diagnostics = model.manifest.get("diagnostics")
    content = {
        "name": model.name,
        "version": model.version,
        "freeze_time": manifest_diagnostics,
        "weights_digest_at_load": model.digest_at_load,
        "weights_digest_now": digest_now,
        "weights_unchanged": digest_now == model.digest_at_load,
        "request_counts": dict(sorted(model.request_counts.items())),
        "uptime_seconds": context.state.uptime_seconds(),
        "num_compilations": int(model.runner.num_compilations),
        "compiled_buckets": model.runner.compiled_buckets(),
        "load_seconds": model.load_seconds,
        "self_test_max_errors": model.self_test,
    }
    return json_response(content, headers=model.headers)


def _weights_digest(flow_model: Any) -> str:
    from flow import weights_digest

    digest: str = weights_digest(flow_model)
    return digest


async def diagnostics_post(request: Request) -> Response:
    """Return ``compute_diagnostics`` of the flow on the posted batch ``x``."""
    context = _context(request)
    model = _model_for(request, "diagnostics")
    body = await read_body(request, context.settings.max_body_bytes)
    arrays, _, _, _ = await _run(
        context,
        _decode_and_prepare,
        context,
        DIAGNOSTICS,
        model,
        body,
        request.headers.get("content-type"),
        dict(request.query_params),
        request.headers.get("accept"),
    )
    result = await _run(context, compute_diagnostics_json, model, arrays["x"])
    return json_response(result, headers=model.headers)


def _report_response(model: LoadedModel, file: str) -> Response:
    data = model.report_files.get(file)
    if data is None:
        listed = ", ".join(sorted(model.report_files)) or "none"
        raise ApiError(
            404,
            "not_found",
            f"model {model.name} version {model.version} has no report file "
            f"{file!r}; its report files are: {listed}",
            detail={"file": file},
        )
    media_type = mimetypes.guess_type(file)[0] or "application/octet-stream"
    return Response(data, media_type=media_type, headers=model.headers)


async def report_index(request: Request) -> Response:
    """Return the artifact's HTML report, with a base URL so its figures resolve."""
    model = _model_for(request, "diagnostics/report")
    response = _report_response(model, REPORT_INDEX)
    base = f'<base href="{request.url.path.rstrip("/")}/">'.encode()
    body = bytes(response.body)
    if b"<base " not in body.lower():
        head = body.lower().find(b"<head>")
        if head >= 0:
            insert_at = head + len(b"<head>")
            body = body[:insert_at] + base + body[insert_at:]
    return Response(body, media_type="text/html; charset=utf-8", headers=model.headers)


async def report_file(request: Request) -> Response:
    """Return one file of the artifact's ``report/`` folder, such as a PNG figure.

    Only paths listed in the manifest under ``report/`` are served, so no
    request can read outside the folder.
    """
    model = _model_for(request, "diagnostics/report")
    return _report_response(model, request.path_params["file"])


async def list_models(request: Request) -> Response:
    """Return the default model, every model's metadata and the request limits."""
    context = _context(request)
    return json_response(
        {
            "default_model": context.registry.default_name,
            "models": [model.metadata() for model in context.registry.models()],
            "limits": {
                "max_batch_rows": context.settings.max_batch_rows,
                "max_body_bytes": context.settings.max_body_bytes,
                "max_jacobian_values": context.settings.max_jacobian_values,
            },
        }
    )


async def model_metadata(request: Request) -> Response:
    """Return the metadata of one model version."""
    model = _model_for(request, "metadata")
    return json_response(model.metadata(), headers=model.headers)


async def health_live(request: Request) -> Response:
    """Return 200 while the process runs."""
    return json_response({"status": "alive"})


async def health_ready(request: Request) -> Response:
    """Return 200 once every model passed its self-test, else 503 with the phase."""
    context = _context(request)
    state = context.state
    registry = context.registry
    content: dict[str, Any] = {
        "status": str(state.phase),
        "models": dict(registry.status),
        "in_flight": state.in_flight,
        "warmup_finished": state.warmup_finished,
    }
    if registry.errors:
        content["errors"] = dict(registry.errors)
    if state.failure and state.phase is Phase.FAILED:
        content["error"] = state.failure
    return json_response(content, status=200 if state.phase is Phase.READY else 503)


async def metrics(request: Request) -> Response:
    """Return the Prometheus metrics of this process."""
    return Response(_context(request).metrics.render(), media_type=METRICS_CONTENT_TYPE)


_ModelEndpoint = Callable[[Request], Awaitable[Response]]


def register_routes(app: FastAPI) -> None:
    """Add every route of the HTTP API to ``app``."""
    model_routes: list[tuple[str, _ModelEndpoint, str, dict[str, Any]]] = [
        ("/transform", transform, "POST", _openapi.compute_extra(TRANSFORM)),
        ("/invert", invert, "POST", _openapi.compute_extra(INVERT)),
        ("/logprob", logprob, "POST", _openapi.compute_extra(LOGPROB)),
        ("/diagnostics", diagnostics_get, "GET", {}),
        ("/diagnostics", diagnostics_post, "POST", _openapi.compute_extra(DIAGNOSTICS)),
        ("/diagnostics/report", report_index, "GET", _openapi.html_extra()),
        ("/diagnostics/report/{file:path}", report_file, "GET", _openapi.file_extra()),
    ]
    for prefix in MODEL_PREFIXES:
        tag = "default model" if not prefix else "models"
        for suffix, endpoint, method, extra in model_routes:
            app.add_api_route(
                prefix + suffix,
                endpoint,
                methods=[method],
                tags=[tag],
                openapi_extra=_openapi.with_path_parameters(prefix + suffix, extra)
                or None,
                name=f"{endpoint.__name__}:{prefix or 'default'}",
                responses=_openapi.ERROR_RESPONSES,
            )
    app.add_api_route("/v1/models", list_models, methods=["GET"], tags=["models"])
    for path in MODEL_PREFIXES[1:]:
        app.add_api_route(
            path,
            model_metadata,
            methods=["GET"],
            tags=["models"],
            openapi_extra=_openapi.with_path_parameters(path, {}),
            name=f"model_metadata:{path}",
            responses=_openapi.ERROR_RESPONSES,
        )
    app.add_api_route("/health/live", health_live, methods=["GET"], tags=["health"])
    app.add_api_route("/health/ready", health_ready, methods=["GET"], tags=["health"])
    app.add_api_route("/metrics", metrics, methods=["GET"], tags=["metrics"])
