"""An in-memory stand-in for the service, for fast tests of client-only logic.

The real service never sends 429, has no switch to fail the next N requests,
and cannot swap its model between two requests, but this fake can. It follows the
HTTP contract for one model whose transform is the affine map
``z = (x - shift) * scale`` (so every output has a closed form), and is served
through ``httpx.MockTransport``. Tests of the client against the real service
live in ``test_client_real_service.py``.
"""

from __future__ import annotations

import io
import json
import uuid
from collections import Counter
from typing import Any

import httpx
import numpy as np

__all__ = ["DIGEST", "OTHER_DIGEST", "FakeService"]

DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32
NPY = "application/x-npy"
NPZ = "application/x-npz"
JSON = "application/json"
_MODEL_ROUTES = ("transform", "invert", "logprob", "diagnostics")


class FakeService:
    """Affine two-feature model behind the HTTP contract.

    Attributes:
        scale: Per-feature scale, `(2,)`.
        shift: Per-feature shift, `(2,)`.
        digest: Weights digest sent in ``X-Model-Digest``.
        header_version: ``X-Model-Version`` to send instead of the real one.
        max_batch_rows: Row limit reported in ``/v1/models`` and enforced.
        max_jacobian_values: Optional Jacobian size limit reported in
            ``/v1/models`` (not enforced).
        fail_next: Queue of ``(status, code)`` errors returned before real responses.
        requests: Count of requests by ``METHOD path``.
        row_counts: Rows of every model request, in order.
    """

    def __init__(self, *, max_batch_rows: int = 1000) -> None:
        self.scale = np.array([2.0, 0.5])
        self.shift = np.array([1.0, -1.0])
        self.name = "affine"
        self.version = 3
        self.digest = DIGEST
        self.header_version: str | None = None
        self.max_batch_rows = max_batch_rows
        self.max_body_bytes = 1 << 20
        self.max_jacobian_values: int | None = None
        self.fail_next: list[tuple[int, str]] = []
        self.requests: Counter[str] = Counter()
        self.row_counts: list[int] = []

    def transport(self) -> httpx.MockTransport:
        """Return an httpx transport that routes requests to this fake."""
        return httpx.MockTransport(self.handle)

    # Request handling -----------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Return the response the service would send for one request."""
        path = request.url.path
        self.requests[f"{request.method} {path}"] += 1
        request_id = request.headers.get("x-request-id", uuid.uuid4().hex)
        if self.fail_next:
            status, code = self.fail_next.pop(0)
            return self._error(status, code, f"injected {code}", request_id)
        if path == "/v1/models":
            limits: dict[str, int] = {
                "max_batch_rows": self.max_batch_rows,
                "max_body_bytes": self.max_body_bytes,
            }
            if self.max_jacobian_values is not None:
                limits["max_jacobian_values"] = self.max_jacobian_values
            body = {
                "default_model": self.name,
                "models": [self.metadata()],
                "limits": limits,
            }
            return self._json(body, request_id)
        parts = path.strip("/").split("/")
        if parts[:2] == ["v1", "models"] and len(parts) >= 3:
            if parts[2] != self.name:
                return self._error(
                    404, "model_not_found", f"no model named {parts[2]!r}", request_id
                )
            rest = parts[3:]
            if rest[:1] == ["versions"]:
                if rest[1:2] != [str(self.version)]:
                    return self._error(
                        404,
                        "version_not_found",
                        f"version {rest[1]} of {self.name!r} is not loaded",
                        request_id,
                    )
                rest = rest[2:]
            if not rest:
                return self._json(self.metadata(), request_id)
            parts = rest
        if len(parts) == 1 and parts[0] in _MODEL_ROUTES:
            return self._model_route(parts[0], request, request_id)
        return self._error(404, "not_found", f"no route {path}", request_id)

    def metadata(self) -> dict[str, Any]:
        """METADATA object of the fake model."""
        return {
            "name": self.name,
            "version": self.version,
            "aliases": ["latest"],
            "digest": self.digest,
            "feature_names": ["a", "b"],
            "dim": 2,
            "dtype": "float64",
            "flow_config": {},
            "preprocessing": {},
            "created_at": "2024-01-01T00:00:00Z",
            "ready": True,
        }

    def _model_route(
        self, route: str, request: httpx.Request, request_id: str
    ) -> httpx.Response:
        headers = {
            "X-Model-Name": self.name,
            "X-Model-Version": self.header_version or str(self.version),
            "X-Model-Digest": self.digest,
        }
        if route == "diagnostics" and request.method == "GET":
            body = {"weights_digest_now": self.digest, "request_counts": {}}
            return self._json(body, request_id, headers)
        arrays, options, dtype = self._read_body(request)
        primary = arrays.get("z" if route == "invert" else "x")
        if primary is None:
            return self._error(422, "missing_field", "x is missing", request_id)
        if primary.ndim != 2 or primary.shape[1] != 2:
            return self._error(
                422, "invalid_shape", f"x has shape {primary.shape}", request_id
            )
        if len(primary) > self.max_batch_rows:
            return self._error(
                413, "batch_too_large", "over max_batch_rows", request_id
            )
        if not np.isfinite(primary).all():
            row, column = np.argwhere(~np.isfinite(primary))[0]
            message = f"x[{row}, {column}] is not finite"
            return self._error(422, "non_finite", message, request_id)
        self.row_counts.append(len(primary))
        outputs = self._compute(route, primary, arrays, options)
        if route == "diagnostics":
            return self._json({"num_rows": len(primary)}, request_id, headers)
        return self._encode(request, outputs, dtype, request_id, headers)

    def _compute(
        self,
        route: str,
        primary: np.ndarray,
        arrays: dict[str, np.ndarray],
        options: dict[str, Any],
    ) -> dict[str, np.ndarray]:
        if route == "invert":
            return {"x": primary / self.scale + self.shift}
        z = (primary - self.shift) * self.scale
        log_det = np.full(len(primary), np.log(self.scale).sum())
        if route == "logprob":
            log_prob = -0.5 * (z**2).sum(1) - np.log(2 * np.pi) + log_det
            outputs = {"log_prob": log_prob}
            if options.get("return_score"):
                outputs["score"] = -z * self.scale
            return outputs
        outputs = {"z": z}
        if options.get("return_log_det"):
            outputs["log_det"] = log_det
        if options.get("return_jacobian"):
            outputs["jacobian"] = np.broadcast_to(
                np.diag(self.scale), (len(primary), 2, 2)
            ).copy()
        if "cotangent" in arrays:
            outputs["dx"] = arrays["cotangent"] * self.scale
        return outputs

    # Wire formats ---------------------------------------------------------

    def _read_body(
        self, request: httpx.Request
    ) -> tuple[dict[str, np.ndarray], dict[str, Any], str | None]:
        kind = request.headers.get("content-type", JSON).split(";")[0]
        options: dict[str, Any] = {
            key: value == "true" for key, value in request.url.params.items()
        }
        if kind == NPY:
            array = np.load(io.BytesIO(request.content), allow_pickle=False)
            name = "z" if request.url.path.endswith("invert") else "x"
            return {name: array.astype(np.float64)}, options, array.dtype.name
        if kind == NPZ:
            with np.load(io.BytesIO(request.content), allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in archive.files}
            dtype = next(iter(arrays.values())).dtype.name
            return {k: v.astype(np.float64) for k, v in arrays.items()}, options, dtype
        body = json.loads(request.content)
        arrays = {
            key: np.asarray(body.pop(key), dtype=np.float64)
            for key in ("x", "z", "cotangent")
            if key in body
        }
        dtype = body.pop("dtype", None)
        options.update(body)
        return arrays, options, dtype

    def _encode(
        self,
        request: httpx.Request,
        outputs: dict[str, np.ndarray],
        dtype: str | None,
        request_id: str,
        headers: dict[str, str],
    ) -> httpx.Response:
        accept = request.headers.get("accept", JSON)
        cast = {k: v.astype(dtype or "float64") for k, v in outputs.items()}
        if accept == NPY:
            if len(cast) != 1:
                return self._error(406, "not_acceptable", "use npz", request_id)
            buffer = io.BytesIO()
            np.save(buffer, next(iter(cast.values())))
            return self._binary(buffer.getvalue(), NPY, request_id, headers)
        if accept == NPZ:
            buffer = io.BytesIO()
            np.savez(buffer, **cast)  # type: ignore[arg-type]
            return self._binary(buffer.getvalue(), NPZ, request_id, headers)
        body = {k: v.tolist() for k, v in cast.items()}
        return self._json(body, request_id, headers)

    @staticmethod
    def _binary(
        content: bytes, kind: str, request_id: str, headers: dict[str, str]
    ) -> httpx.Response:
        all_headers = {"Content-Type": kind, "X-Request-ID": request_id, **headers}
        return httpx.Response(200, content=content, headers=all_headers)

    @staticmethod
    def _json(
        body: Any, request_id: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        all_headers = {"X-Request-ID": request_id, **(headers or {})}
        return httpx.Response(200, json=body, headers=all_headers)

    @staticmethod
    def _error(status: int, code: str, message: str, request_id: str) -> httpx.Response:
        body = {"code": code, "message": message, "request_id": request_id}
        headers = {"X-Request-ID": request_id}
        if status in (429, 503):
            headers["Retry-After"] = "0"
        return httpx.Response(status, json=body, headers=headers)
