"""State and request logic shared by the sync and async clients (no I/O here)."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Literal
from urllib.parse import quote

import httpx
import numpy as np

from gaussprobe_client._arrays import check_finite_for_json
from gaussprobe_client._codec import (
    JSON,
    NPY,
    NPZ,
    decode_json,
    decode_npy,
    decode_npz,
    encode_json,
    encode_npy,
    encode_npz,
    media_type,
)
from gaussprobe_client._errors import (
    DigestMismatchError,
    PinningError,
    ProbeProtocolError,
    VersionMismatchError,
    error_from_response,
)
from gaussprobe_client._operations import Operation, check_output_shapes
from gaussprobe_client._retry import DEFAULT_RETRY_POLICY, RetryPolicy

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_SECONDS",
    "DEFAULT_TIMEOUT_SECONDS",
    "ClientCore",
    "EncodedRequest",
    "ServiceInfo",
    "Transport",
    "normalize_digest",
]

Transport = Literal["npy", "json"]

DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0
# Read, write and pool timeout. Large batches (65,536 rows and more) with
# Jacobians can take tens of seconds on a small CPU server.
DEFAULT_TIMEOUT_SECONDS = 120.0

# Chunks aim below this fraction of the server's max_body_bytes, leaving room
# for headers, the .npy/.npz framing and the estimate error of JSON sizes.
BODY_BUDGET_FRACTION = 0.9
# Upper estimate of the JSON size of one float: sign, 17 significant digits,
# point, exponent and separator, e.g. "-1.2345678901234567e-05,".
JSON_BYTES_PER_VALUE = 26
# Per-row JSON framing: brackets and a comma.
JSON_BYTES_PER_ROW = 3

_DIGEST_PATTERN = re.compile(r"^(?:sha256:)?([0-9a-fA-F]{64})$")


def normalize_digest(digest: str) -> str:
    """Return ``digest`` as ``"sha256:<64 lowercase hex>"``.

    Raises:
        ValueError: If it is neither ``sha256:<hex>`` nor 64 hex digits.
    """
    match = _DIGEST_PATTERN.match(digest.strip())
    if match is None:
        raise ValueError(
            f"expected_digest must look like 'sha256:<64 hex digits>'; got "
            f"{digest!r}. Copy it from the model's metadata (GET /v1/models/NAME)"
        )
    return "sha256:" + match.group(1).lower()


@dataclasses.dataclass(frozen=True)
class ServiceInfo:
    """Service limits and model metadata, fetched before the first data call.

    Attributes:
        model_name: Name of the model the client calls.
        metadata: The model's METADATA object (name, version, digest, dim, ...).
        max_batch_rows: Server limit on rows per request.
        max_body_bytes: Server limit on request body size.
        max_jacobian_values: Server limit on ``rows * features**2`` of a
            Jacobian request, or ``None`` when the server reports none.
    """

    model_name: str
    metadata: dict[str, Any]
    max_batch_rows: int
    max_body_bytes: int
    max_jacobian_values: int | None = None


@dataclasses.dataclass(frozen=True)
class EncodedRequest:
    """Body, headers and query parameters of one model request."""

    content: bytes
    headers: dict[str, str]
    params: dict[str, str]


class ClientCore:
    """Configuration, pin checks and wire encoding shared by both clients."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None,
        version: int | None,
        expected_digest: str | None,
        api_key: str | None,
        timeout: float | httpx.Timeout,
        connect_timeout: float,
        retries: int | RetryPolicy,
        transport: Transport,
        max_chunk_rows: int | None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"base_url must start with http:// or https://; got {base_url!r}, "
                "e.g. 'http://127.0.0.1:8000'"
            )
        if transport not in ("npy", "json"):
            raise ValueError(f"transport must be 'npy' or 'json'; got {transport!r}")
        if version is not None and (
            isinstance(version, bool) or not isinstance(version, int) or version < 1
        ):
            raise ValueError(
                f"version must be a positive integer; got {version!r}. Aliases "
                "such as @production are resolved by the server at start-up"
            )
        if max_chunk_rows is not None and max_chunk_rows < 1:
            raise ValueError(f"max_chunk_rows must be >= 1; got {max_chunk_rows}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.version = version
        self.expected_digest = (
            normalize_digest(expected_digest) if expected_digest is not None else None
        )
        self.api_key = api_key
        if isinstance(timeout, httpx.Timeout):
            self.timeout = timeout
        else:
            self.timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self.retry_policy = (
            retries
            if isinstance(retries, RetryPolicy)
            else RetryPolicy(max_retries=retries)
            if retries is not None
            else DEFAULT_RETRY_POLICY
        )
        self.transport: Transport = transport
        self.max_chunk_rows = max_chunk_rows
        self.info: ServiceInfo | None = None

    # URLs and headers -------------------------------------------------------

    def url(self, path: str) -> str:
        """Join the base URL and an absolute path."""
        return self.base_url + path

    def headers(self) -> dict[str, str]:
        """Headers sent with every request."""
        headers = {"User-Agent": "gaussprobe-client"}
        if self.api_key is not None:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def metadata_path(self, model_name: str) -> str:
        """Path of the METADATA route of the pinned model (and version)."""
        path = f"/v1/models/{quote(model_name, safe='')}"
        if self.version is not None:
            path += f"/versions/{self.version}"
        return path

    def model_path(self, route: str) -> str:
        """Path of a model route; bare routes when neither model nor version is set.

        Raises:
            RuntimeError: If called before the service info was fetched for a
                version-pinned client without a model name.
        """
        if self.model is None and self.version is None:
            return f"/{route}"
        if self.info is None:
            raise RuntimeError("model_path needs the service info; fetch it first")
        return f"{self.metadata_path(self.info.model_name)}/{route}"

    # Service info and pins ------------------------------------------------

    def build_info(
        self, listing: Any, metadata: Any, model_name: str, route: str
    ) -> ServiceInfo:
        """Check the pins against the model's metadata and store the limits.

        Args:
            listing: Body of ``GET /v1/models``.
            metadata: Body of the model's METADATA route.
            model_name: Name of the model the client calls.
            route: METADATA route, for messages.

        Raises:
            DigestMismatchError: If ``expected_digest`` differs from the
                served digest.
            VersionMismatchError: If the served version differs from ``version``.
            ProbeProtocolError: If a body lacks the contract's fields.
        """
        if not isinstance(metadata, dict):
            raise ProbeProtocolError(f"{route} did not return a JSON object")
        limits = listing.get("limits") if isinstance(listing, dict) else None
        try:
            max_batch_rows = int(limits["max_batch_rows"])  # type: ignore[index]
            max_body_bytes = int(limits["max_body_bytes"])  # type: ignore[index]
        except (TypeError, KeyError, ValueError) as exc:
            raise ProbeProtocolError(
                f"GET /v1/models returned no usable 'limits' object: {exc!r}",
                code="invalid_response",
            ) from exc
        # Optional limit: the HTTP contract does not require it.
        raw_jacobian_limit = limits.get("max_jacobian_values")  # type: ignore[union-attr]
        max_jacobian_values = (
            int(raw_jacobian_limit) if isinstance(raw_jacobian_limit, int) else None
        )
        served_version = metadata.get("version")
        served_digest = metadata.get("digest")
        where = (
            f"the service at {self.base_url} serves model {model_name!r} "
            f"version {served_version}"
        )
        if self.version is not None and served_version != self.version:
            raise VersionMismatchError(
                f"pinned version {self.version}, but {where}; load the pinned "
                f"version on the server or change the pin",
                code="version_mismatch",
            )
        if self.expected_digest is not None and (
            not isinstance(served_digest, str)
            or _normalize_or_raw(served_digest) != self.expected_digest
        ):
            raise DigestMismatchError(
                f"pinned digest {self.expected_digest}, but {where} with "
                f"digest {served_digest}; deploy the pinned weights or "
                "update expected_digest",
                code="digest_mismatch",
            )
        self.info = ServiceInfo(
            model_name, metadata, max_batch_rows, max_body_bytes, max_jacobian_values
        )
        return self.info

    def check_response_pins(self, response: httpx.Response) -> None:
        """Compare a model response's ``X-Model-*`` headers with the pins.

        Raises:
            DigestMismatchError: If ``X-Model-Digest`` differs from the pin.
            VersionMismatchError: If ``X-Model-Version`` differs from the pin.
            PinningError: If a pinned header is missing.
        """
        request_id = response.headers.get("x-request-id")
        route = response.request.url.path
        if self.expected_digest is not None:
            digest = response.headers.get("x-model-digest")
            if digest is None:
                raise PinningError(
                    f"response of {route} has no X-Model-Digest header, so the "
                    f"pinned digest {self.expected_digest} cannot be checked",
                    code="missing_pin_header",
                    request_id=request_id,
                )
            if _normalize_or_raw(digest) != self.expected_digest:
                raise DigestMismatchError(
                    f"pinned digest {self.expected_digest}, but {route} was "
                    f"served by weights with digest {digest}; the server was "
                    "probably restarted with another model",
                    code="digest_mismatch",
                    request_id=request_id,
                )
        if self.version is not None:
            version = response.headers.get("x-model-version")
            if version is None:
                raise PinningError(
                    f"response of {route} has no X-Model-Version header, so the "
                    f"pinned version {self.version} cannot be checked",
                    code="missing_pin_header",
                    request_id=request_id,
                )
            if version.strip() != str(self.version):
                raise VersionMismatchError(
                    f"pinned version {self.version}, but {route} was served by "
                    f"version {version}",
                    code="version_mismatch",
                    request_id=request_id,
                )

    # Chunking -------------------------------------------------------------

    def chunk_rows(self, operation: Operation, info: ServiceInfo) -> int:
        """Rows per request, within every server limit and ``max_chunk_rows``."""
        values_per_row = sum(int(a.shape[1]) for a in operation.inputs.values())
        if self.transport == "npy":
            bytes_per_row = values_per_row * operation.dtype.itemsize
        else:
            bytes_per_row = values_per_row * JSON_BYTES_PER_VALUE + JSON_BYTES_PER_ROW
        budget = info.max_body_bytes * BODY_BUDGET_FRACTION
        rows = min(info.max_batch_rows, math.floor(budget / max(bytes_per_row, 1)))
        if "jacobian" in operation.outputs and info.max_jacobian_values is not None:
            values_per_jacobian = operation.features * operation.features
            rows = min(rows, info.max_jacobian_values // max(values_per_jacobian, 1))
        if self.max_chunk_rows is not None:
            rows = min(rows, self.max_chunk_rows)
        return max(rows, 1)

    # Encoding and decoding ------------------------------------------------

    def encode(self, operation: Operation) -> EncodedRequest:
        """Encode one operation in the configured transport.

        Raises:
            ValueError: For the JSON transport, if an input is not finite.
        """
        headers = self.headers()
        if self.transport == "json":
            for name, array in operation.inputs.items():
                check_finite_for_json(array, name)
            payload: dict[str, Any] = dict(operation.inputs)
            payload.update(operation.options)
            if operation.outputs:
                # Sets the dtype of response arrays, so routes that return no
                # arrays (POST /diagnostics) reject it as an unknown option.
                payload["dtype"] = operation.dtype.name
            headers["Content-Type"] = JSON
            headers["Accept"] = JSON
            return EncodedRequest(encode_json(payload), headers, {})

        params = {name: "true" for name, value in operation.options.items() if value}
        if len(operation.inputs) == 1:
            content = encode_npy(operation.primary)
            headers["Content-Type"] = NPY
        else:
            content = encode_npz(operation.inputs)
            headers["Content-Type"] = NPZ
        headers["Accept"] = NPY if len(operation.outputs) == 1 else NPZ
        return EncodedRequest(content, headers, params)

    def decode(
        self, response: httpx.Response, operation: Operation
    ) -> dict[str, np.ndarray]:
        """Decode a successful model response into arrays of the operation dtype.

        Raises:
            ProbeProtocolError: If the body is unreadable or lacks an array.
        """
        kind = media_type(response.headers.get("content-type"))
        arrays: dict[str, np.ndarray]
        if kind == NPY:
            arrays = {operation.outputs[0]: decode_npy(response.content)}
        elif kind == NPZ:
            arrays = decode_npz(response.content)
        elif kind == JSON:
            body = decode_json(response.content)
            if not isinstance(body, dict):
                raise ProbeProtocolError(
                    f"{response.request.url.path} returned JSON that is not an object",
                    code="invalid_response",
                )
            arrays = {
                name: np.asarray(body[name], dtype=operation.dtype)
                for name in operation.outputs
                if name in body
            }
        else:
            raise ProbeProtocolError(
                f"{response.request.url.path} returned Content-Type "
                f"{kind or 'none'}; expected {NPY}, {NPZ} or {JSON}",
                code="invalid_response",
            )
        arrays = {
            name: np.asarray(arrays[name]).astype(operation.dtype, copy=False)
            for name in operation.outputs
            if name in arrays
        }
        problems = check_output_shapes(operation, arrays)
        if problems:
            raise ProbeProtocolError(
                f"{response.request.url.path} returned unexpected arrays: "
                + "; ".join(problems),
                code="invalid_response",
                request_id=response.headers.get("x-request-id"),
            )
        return arrays

    @staticmethod
    def describe_response(response: httpx.Response) -> str:
        """Summarize an error response for logs: status, code and message."""
        try:
            body: Any = decode_json(response.content)
        except ProbeProtocolError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            return f"HTTP {response.status_code} {body['code']}: {body.get('message')}"
        return f"HTTP {response.status_code} {response.text[:200]}"

    @staticmethod
    def raise_for_status(response: httpx.Response) -> None:
        """Raise the typed exception for a 4xx/5xx response.

        Raises:
            ProbeHTTPError: The subclass matching the service's error code.
        """
        if response.status_code < 400:
            return
        try:
            body: Any = decode_json(response.content)
        except ProbeProtocolError:
            body = response.text
        raise error_from_response(
            response.status_code,
            body,
            request_id=response.headers.get("x-request-id"),
            route=response.request.url.path,
        )


def _normalize_or_raw(digest: str) -> str:
    try:
        return normalize_digest(digest)
    except ValueError:
        return digest
