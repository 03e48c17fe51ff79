"""Asyncio client: ``AsyncProbeClient``."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from gaussprobe_client._arrays import as_batch
from gaussprobe_client._codec import JSON, decode_json
from gaussprobe_client._core import (
    DEFAULT_CONNECT_TIMEOUT_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    ClientCore,
    ServiceInfo,
    Transport,
)
from gaussprobe_client._errors import ProbeError, ProbeHTTPError
from gaussprobe_client._failures import (
    chunk_note,
    diagnostics_batch_error,
    transport_error,
)
from gaussprobe_client._operations import (
    Operation,
    empty_outputs,
    invert_operation,
    join_outputs,
    log_prob_operation,
    split_operation,
    transform_operation,
)
from gaussprobe_client._readiness import (
    READY_POLL_INTERVAL_SECONDS,
    ReadinessTracker,
)
from gaussprobe_client._retry import (
    DEFAULT_RETRY_POLICY,
    RETRYABLE_STATUSES,
    RetryPolicy,
    is_retryable_exception,
    log_retry,
    retry_after_seconds,
)

__all__ = ["AsyncProbeClient"]


class AsyncProbeClient:
    """Asyncio client of a gaussprobe service, with the methods of ``ProbeClient``.

    Every array method takes anything ``np.asarray`` accepts with shape
    ``(batch, features)`` and returns numpy arrays of the input dtype (float32
    or float64; integers become float64). Batches over the server's
    ``max_batch_rows`` or ``max_body_bytes`` are split and joined.

    On its first call the client fetches ``GET /v1/models`` and the model's
    metadata, and raises before sending any data if the served version or
    digest differs from the pin. Every later response's ``X-Model-Version``
    and ``X-Model-Digest`` headers are checked against the pin too.

    Args:
        base_url: Service URL, e.g. ``"http://127.0.0.1:8000"``.
        model: Model name; ``None`` uses the server's default model.
        version: Integer version to pin; requests go to the versioned routes.
        expected_digest: Weights digest ``"sha256:<hex>"`` to pin.
        api_key: Bearer token sent as ``Authorization: Bearer KEY``.
        timeout: Read, write and pool timeout in seconds, or an
            ``httpx.Timeout`` that replaces both timeouts.
        connect_timeout: Connect timeout in seconds.
        retries: Retries after the first attempt, or a ``RetryPolicy``.
            Connection errors, 429 and 503 are retried with exponential
            backoff and full jitter.
        transport: ``"npy"`` (binary .npy/.npz bodies, default) or ``"json"``.
        max_chunk_rows: Cap on rows per request, below the server's limits.
        client: An ``httpx.AsyncClient`` to send requests with (for example
            one with ``transport=httpx.ASGITransport(app=app)`` to call the app
            in-process). The caller closes it, and its own timeouts apply
            instead of ``timeout`` and ``connect_timeout``.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        model: str | None = None,
        version: int | None = None,
        expected_digest: str | None = None,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT_SECONDS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        retries: int | RetryPolicy = DEFAULT_RETRY_POLICY,
        transport: Transport = "npy",
        max_chunk_rows: int | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._core = ClientCore(
            base_url,
            model=model,
            version=version,
            expected_digest=expected_digest,
            api_key=api_key,
            timeout=timeout,
            connect_timeout=connect_timeout,
            retries=retries,
            transport=transport,
            max_chunk_rows=max_chunk_rows,
        )
        self._owns_client = client is None
        # An injected client keeps its own timeouts: per-request timeouts
        # would override them, and starlette's TestClient warns about them.
        self._http = (
            client
            if client is not None
            else httpx.AsyncClient(timeout=self._core.timeout)
        )

    # Lifecycle ------------------------------------------------------------

    async def close(self) -> None:
        """Close the HTTP connection pool, unless it was passed in."""
        if self._owns_client:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncProbeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        core = self._core
        return (
            f"AsyncProbeClient({core.base_url!r}, model={core.model!r}, "
            f"version={core.version!r}, transport={core.transport!r})"
        )

    # Array methods --------------------------------------------------------

    async def transform(self, x: npt.ArrayLike) -> np.ndarray:
        """Map data to the Gaussianized space.

        Args:
            x: `(batch, features)` data.

        Returns:
            z: `(batch, features)`.
        """
        outputs = await self._run(transform_operation(x))
        return outputs["z"]

    async def transform_with_log_det(
        self, x: npt.ArrayLike
    ) -> tuple[np.ndarray, np.ndarray]:
        """Map data to the Gaussianized space with the log-determinant.

        Args:
            x: `(batch, features)` data.

        Returns:
            ``(z, log_det)``: z `(batch, features)`, log|det dz/dx| `(batch,)`.
        """
        outputs = await self._run(transform_operation(x, return_log_det=True))
        return outputs["z"], outputs["log_det"]

    async def invert(self, z: npt.ArrayLike) -> np.ndarray:
        """Map Gaussianized values back to data space.

        Args:
            z: `(batch, features)`.

        Returns:
            x: `(batch, features)`.
        """
        outputs = await self._run(invert_operation(z))
        return outputs["x"]

    async def log_prob(self, x: npt.ArrayLike) -> np.ndarray:
        """Compute the model's log-density of each row.

        Args:
            x: `(batch, features)` data.

        Returns:
            log p(x): `(batch,)`.
        """
        outputs = await self._run(log_prob_operation(x))
        return outputs["log_prob"]

    async def score(self, x: npt.ArrayLike) -> np.ndarray:
        """Compute the gradient of the log-density with respect to ``x``.

        Args:
            x: `(batch, features)` data.

        Returns:
            d log p(x) / dx: `(batch, features)`.
        """
        outputs = await self._run(log_prob_operation(x, return_score=True))
        return outputs["score"]

    async def log_prob_with_score(
        self, x: npt.ArrayLike
    ) -> tuple[np.ndarray, np.ndarray]:
        """Compute the log-density and its gradient in one request.

        Args:
            x: `(batch, features)` data.

        Returns:
            ``(log_prob, score)``: `(batch,)` and `(batch, features)`.
        """
        outputs = await self._run(log_prob_operation(x, return_score=True))
        return outputs["log_prob"], outputs["score"]

    async def vjp(self, x: npt.ArrayLike, cotangent: npt.ArrayLike) -> np.ndarray:
        """Compute the vector-Jacobian product of the transform at ``x``.

        Args:
            x: `(batch, features)` data.
            cotangent: `(batch, features)`, shaped like ``z``.

        Returns:
            dx: `(batch, features)`, ``dx[i] = cotangent[i] @ J[i]``.
        """
        outputs = await self._run(transform_operation(x, cotangent=cotangent))
        return outputs["dx"]

    async def jacobian(self, x: npt.ArrayLike) -> np.ndarray:
        """Compute the Jacobian of the transform at every row.

        Args:
            x: `(batch, features)` data.

        Returns:
            J: `(batch, features, features)` with ``J[i] = dz_i / dx``.
        """
        outputs = await self._run(transform_operation(x, return_jacobian=True))
        return outputs["jacobian"]

    # JSON methods ---------------------------------------------------------

    async def diagnostics(self, x: npt.ArrayLike | None = None) -> dict[str, Any]:
        """Fetch the served model's diagnostics, or compute them on a batch.

        Args:
            x: Optional `(batch, features)` data. Without it, returns the
                server's record (freeze-time diagnostics, digests at load and
                now, request counts, uptime). With it, returns Gaussianity
                statistics of that batch; it is sent in one request, so it
                must fit the server's ``max_batch_rows``.

        Returns:
            The diagnostics JSON object.
        """
        info = await self._ensure_info()
        path = self._core.model_path("diagnostics")
        if x is None:
            response = await self._send("GET", path, model_route=True)
            return dict(decode_json(response.content))
        batch = as_batch(x, "x")
        if batch.shape[0] > info.max_batch_rows:
            raise diagnostics_batch_error(batch.shape[0], info.max_batch_rows)
        encoded = self._core.encode(Operation("diagnostics", {"x": batch}, {}, ()))
        encoded.headers["Accept"] = JSON
        response = await self._send(
            "POST",
            path,
            content=encoded.content,
            headers=encoded.headers,
            params=encoded.params,
            model_route=True,
        )
        return dict(decode_json(response.content))

    async def metadata(self) -> dict[str, Any]:
        """Fetch the METADATA object of the model this client calls."""
        info = await self._ensure_info()
        return await self._get_json(self._core.metadata_path(info.model_name))

    async def models(self) -> dict[str, Any]:
        """Fetch ``GET /v1/models``: default model, all models' metadata, limits."""
        return await self._get_json("/v1/models")

    async def wait_until_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        """Poll ``GET /health/ready`` until the service is ready.

        Args:
            timeout: Seconds to wait in total.

        Returns:
            The ready body, ``{"status": "ready", "models": {...}}``.

        Raises:
            ProbeTimeoutError: If the service is not ready in time; the message
                names the last status or connection error.
            ProbeHTTPError: For an error status other than 503.
        """
        tracker = ReadinessTracker(self._core, timeout)
        while True:
            try:
                response = await self._http.get(
                    self._core.url("/health/ready"),
                    headers=self._core.headers(),
                    **self._poll_options(tracker),
                )
            except httpx.TransportError as exc:
                tracker.record_exception(exc)
            else:
                body = tracker.record_response(response)
                if body is not None:
                    return body
            tracker.raise_if_expired()
            await asyncio.sleep(READY_POLL_INTERVAL_SECONDS)

    # Internals ------------------------------------------------------------

    def _poll_options(self, tracker: ReadinessTracker) -> dict[str, Any]:
        """Per-poll timeout, cut to the time left, for a client this object owns."""
        if not self._owns_client:
            return {}
        return {"timeout": tracker.request_timeout()}

    async def _ensure_info(self) -> ServiceInfo:
        """Fetch limits and metadata once, checking the pins before any data."""
        core = self._core
        if core.info is not None:
            return core.info
        listing = await self._get_json("/v1/models")
        model_name = core.model or (
            listing.get("default_model") if isinstance(listing, dict) else None
        )
        if not isinstance(model_name, str):
            raise ProbeError(
                f"GET {core.base_url}/v1/models names no default_model; pass "
                "model=NAME to the client",
                code="invalid_response",
            )
        path = core.metadata_path(model_name)
        metadata = await self._get_json(path)
        return core.build_info(listing, metadata, model_name, path)

    async def _run(self, operation: Operation) -> dict[str, np.ndarray]:
        info = await self._ensure_info()
        if operation.rows == 0:
            return empty_outputs(operation)
        max_rows = self._core.chunk_rows(operation, info)
        results = []
        for start, chunk in split_operation(operation, max_rows):
            encoded = self._core.encode(chunk)
            try:
                response = await self._send(
                    "POST",
                    self._core.model_path(chunk.route),
                    content=encoded.content,
                    headers=encoded.headers,
                    params=encoded.params,
                    model_route=True,
                )
            except ProbeHTTPError as exc:
                if chunk is not operation:
                    exc.add_note(chunk_note(start, chunk.rows, operation.rows))
                raise
            results.append(self._core.decode(response, chunk))
        return join_outputs(operation, results)

    async def _get_json(self, path: str) -> Any:
        response = await self._send("GET", path)
        return decode_json(response.content)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        model_route: bool = False,
    ) -> httpx.Response:
        """Send one request with retries, raising typed errors.

        Raises:
            ProbeHTTPError: For a 4xx/5xx response (after retries for 429/503).
            ProbeConnectionError: If the service stays unreachable.
            ProbeTimeoutError: On a read or write timeout, or a connect
                timeout after every retry.
            PinningError: If a model response's headers differ from the pins.
        """
        core = self._core
        policy = core.retry_policy
        url = core.url(path)
        retry = 0
        while True:
            try:
                response = await self._http.request(
                    method,
                    url,
                    content=content,
                    headers=headers if headers is not None else core.headers(),
                    params=params,
                )
            except httpx.TransportError as exc:
                if retry >= policy.max_retries or not is_retryable_exception(exc):
                    raise transport_error(exc, method, url, retry + 1) from exc
                retry += 1
                delay = policy.delay(retry)
                log_retry(method, url, retry, policy, delay, repr(exc))
                await asyncio.sleep(delay)
                continue
            if (
                response.status_code in RETRYABLE_STATUSES
                and retry < policy.max_retries
            ):
                retry += 1
                delay = policy.delay(retry, retry_after_seconds(response))
                error = core.describe_response(response)
                log_retry(method, url, retry, policy, delay, error)
                await asyncio.sleep(delay)
                continue
            core.raise_for_status(response)
            if model_route:
                core.check_response_pins(response)
            return response
