"""Client logic against the in-memory contract fake: codecs, chunking, pins, retries."""

from __future__ import annotations

import logging
import socket

import httpx
import numpy as np
import pytest
from client_fake_service import DIGEST, OTHER_DIGEST, FakeService
from gaussprobe_client import (
    DigestMismatchError,
    InvalidInputError,
    ModelNotFoundError,
    NotReadyError,
    ProbeClient,
    ProbeConnectionError,
    ProbeTimeoutError,
    RetryPolicy,
    VersionMismatchError,
    VersionNotFoundError,
)

BASE_URL = "http://fake.test"
NO_WAIT = RetryPolicy(max_retries=3, base_delay=0.0, max_delay=0.0)

TRANSPORTS = [pytest.param("npy", id="npy"), pytest.param("json", id="json")]
DTYPES = [
    pytest.param(np.float32, id="float32"),
    pytest.param(np.float64, id="float64"),
]


@pytest.fixture
def fake() -> FakeService:
    return FakeService()


def make_client(fake: FakeService, **kwargs: object) -> ProbeClient:
    http = httpx.Client(transport=fake.transport())
    kwargs.setdefault("retries", NO_WAIT)
    return ProbeClient(BASE_URL, client=http, **kwargs)  # type: ignore[arg-type]


def model_requests(fake: FakeService) -> int:
    return sum(
        count
        for key, count in fake.requests.items()
        if key.startswith("POST") or key.endswith("/diagnostics")
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def rows() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(7, 2))


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_methods_match_closed_form(
    fake: FakeService, rows: np.ndarray, transport: str, dtype: type
) -> None:
    x = rows.astype(dtype)
    tolerance = 1e-6 if dtype is np.float32 else 1e-12
    z_expected = (rows - fake.shift) * fake.scale
    with make_client(fake, transport=transport) as probe:
        z = probe.transform(x)
        z2, log_det = probe.transform_with_log_det(x)
        x_back = probe.invert(z)
        log_prob = probe.log_prob(x)
        score = probe.score(x)
        dx = probe.vjp(x, np.ones_like(x))
        jacobian = probe.jacobian(x)

    for array in (z, z2, log_det, x_back, log_prob, score, dx, jacobian):
        assert array.dtype == dtype
    np.testing.assert_allclose(z, z_expected, rtol=tolerance)
    np.testing.assert_array_equal(z, z2)
    np.testing.assert_allclose(log_det, np.full(7, np.log(fake.scale).sum()))
    np.testing.assert_allclose(x_back, x, rtol=tolerance, atol=tolerance)
    assert log_prob.shape == (7,)
    np.testing.assert_allclose(score, -z_expected * fake.scale, rtol=tolerance)
    np.testing.assert_allclose(dx, np.broadcast_to(fake.scale, (7, 2)))
    assert jacobian.shape == (7, 2, 2)
    np.testing.assert_allclose(jacobian[3], np.diag(fake.scale))


def test_lists_and_integers_become_float64(fake: FakeService) -> None:
    with make_client(fake) as probe:
        from_list = probe.transform([[1.0, 2.0], [3.0, 4.0]])
        from_int = probe.transform(np.array([[1, 2]], dtype=np.int32))
    assert from_list.dtype == np.float64
    assert from_int.dtype == np.float64
    np.testing.assert_allclose(from_int, [[0.0, 1.5]])


def test_one_dimensional_input_rejected(fake: FakeService) -> None:
    with (
        make_client(fake) as probe,
        pytest.raises(ValueError, match=r"got shape \(2,\).*x\.reshape\(-1, 1\)"),
    ):
        probe.transform(np.array([1.0, 2.0]))


def test_boolean_input_rejected(fake: FakeService) -> None:
    with (
        make_client(fake) as probe,
        pytest.raises(ValueError, match="dtype bool"),
    ):
        probe.transform(np.ones((2, 2), dtype=bool))


def test_cotangent_shape_mismatch_rejected(fake: FakeService, rows: np.ndarray) -> None:
    with (
        make_client(fake) as probe,
        pytest.raises(
            ValueError, match=r"cotangent must have the shape of x, \(7, 2\)"
        ),
    ):
        probe.vjp(rows, np.ones((7, 3)))


def test_empty_batch_sends_no_data(fake: FakeService) -> None:
    with make_client(fake) as probe:
        z = probe.transform(np.empty((0, 2), np.float32))
        jacobian = probe.jacobian(np.empty((0, 2)))
    assert z.shape == (0, 2)
    assert z.dtype == np.float32
    assert jacobian.shape == (0, 2, 2)
    assert model_requests(fake) == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_large_batch_split_and_joined(fake: FakeService, transport: str) -> None:
    x = np.random.default_rng(1).normal(size=(2500, 2))
    with make_client(fake, transport=transport) as probe:
        z, log_det = probe.transform_with_log_det(x)
    assert fake.row_counts == [1000, 1000, 500]
    np.testing.assert_allclose(z, (x - fake.shift) * fake.scale)
    assert log_det.shape == (2500,)


def test_max_chunk_rows_caps_requests(fake: FakeService) -> None:
    x = np.zeros((10, 2))
    with make_client(fake, max_chunk_rows=4) as probe:
        probe.log_prob(x)
    assert fake.row_counts == [4, 4, 2]


def test_jacobian_limit_caps_chunks(fake: FakeService) -> None:
    fake.max_jacobian_values = 40
    with make_client(fake) as probe:
        jacobian = probe.jacobian(np.zeros((25, 2)))
    assert fake.row_counts == [10, 10, 5]
    assert jacobian.shape == (25, 2, 2)


def test_body_limit_caps_json_chunks(fake: FakeService) -> None:
    fake.max_body_bytes = 10_000
    with make_client(fake, transport="json") as probe:
        probe.transform(np.zeros((600, 2)))
    assert max(fake.row_counts) < 600
    assert sum(fake.row_counts) == 600


def test_json_non_finite_rejected_locally(fake: FakeService) -> None:
    x = np.zeros((3, 2))
    x[1, 1] = np.nan
    with (
        make_client(fake, transport="json") as probe,
        pytest.raises(ValueError, match=r"x\[1, 1\] is nan"),
    ):
        probe.transform(x)
    assert model_requests(fake) == 0


def test_server_rejection_carries_message(fake: FakeService) -> None:
    x = np.zeros((3, 2))
    x[2, 0] = np.inf
    with (
        make_client(fake) as probe,
        pytest.raises(InvalidInputError, match=r"x\[2, 0\] is not finite") as caught,
    ):
        probe.transform(x)
    assert caught.value.status == 422
    assert caught.value.code == "non_finite"
    assert caught.value.request_id


def test_chunk_error_notes_row_range(fake: FakeService) -> None:
    x = np.zeros((2500, 2))
    x[1500, 0] = np.nan
    with (
        make_client(fake) as probe,
        pytest.raises(InvalidInputError, match="not finite") as caught,
    ):
        probe.transform(x)
    assert "rows 1000 to 1999" in caught.value.__notes__[0]


def test_wrong_digest_raises_before_data(fake: FakeService) -> None:
    with (
        make_client(fake, expected_digest=OTHER_DIGEST) as probe,
        pytest.raises(DigestMismatchError, match="pinned digest sha256:cdcd") as caught,
    ):
        probe.transform(np.zeros((2, 2)))
    assert caught.value.code == "digest_mismatch"
    assert model_requests(fake) == 0


def test_digest_pin_accepts_bare_uppercase_hex(fake: FakeService) -> None:
    bare_hex = DIGEST.removeprefix("sha256:").upper()
    with make_client(fake, expected_digest=bare_hex) as probe:
        z = probe.transform(np.zeros((2, 2)))
    assert z.shape == (2, 2)


def test_digest_change_mid_loop_raises(fake: FakeService) -> None:
    with make_client(fake, expected_digest=DIGEST) as probe:
        probe.transform(np.zeros((2, 2)))
        fake.digest = OTHER_DIGEST
        with pytest.raises(DigestMismatchError, match="restarted with another model"):
            probe.transform(np.zeros((2, 2)))


def test_version_pin_uses_versioned_routes(fake: FakeService) -> None:
    with make_client(fake, model="affine", version=3) as probe:
        probe.transform(np.zeros((2, 2)))
    assert fake.requests["POST /v1/models/affine/versions/3/transform"] == 1


def test_version_change_mid_loop_raises(fake: FakeService) -> None:
    with make_client(fake, model="affine", version=3) as probe:
        probe.transform(np.zeros((2, 2)))
        fake.header_version = "4"
        with pytest.raises(VersionMismatchError, match="served by version 4"):
            probe.invert(np.zeros((2, 2)))


def test_unserved_version_raises(fake: FakeService) -> None:
    with (
        make_client(fake, model="affine", version=9) as probe,
        pytest.raises(VersionNotFoundError, match="version 9 of 'affine'"),
    ):
        probe.transform(np.zeros((2, 2)))
    assert model_requests(fake) == 0


def test_unknown_model_raises(fake: FakeService) -> None:
    with (
        make_client(fake, model="nope") as probe,
        pytest.raises(ModelNotFoundError, match="no model named 'nope'") as caught,
    ):
        probe.log_prob(np.zeros((2, 2)))
    assert caught.value.status == 404


@pytest.mark.parametrize(
    "status",
    [pytest.param(503, id="not-ready"), pytest.param(429, id="rate-limited")],
)
def test_transient_status_retried_and_logged(
    fake: FakeService, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    with make_client(fake) as probe:
        probe.metadata()
        fake.fail_next = [(status, "not_ready"), (status, "not_ready")]
        with caplog.at_level(logging.WARNING, logger="gaussprobe_client"):
            z = probe.transform(np.zeros((2, 2)))
    assert z.shape == (2, 2)
    retries = [r for r in caplog.records if r.name == "gaussprobe_client"]
    assert len(retries) == 2
    assert "retry 2 of 3" in retries[1].getMessage()
    assert "/transform" in retries[1].getMessage()
    assert f"HTTP {status}" in retries[1].getMessage()


def test_retries_exhausted_raise_typed_error(fake: FakeService) -> None:
    fake.fail_next = [(503, "not_ready")] * 10
    with (
        make_client(fake) as probe,
        pytest.raises(NotReadyError, match="injected not_ready"),
    ):
        probe.models()
    assert fake.requests["GET /v1/models"] == 4


def test_client_error_not_retried(fake: FakeService) -> None:
    fake.fail_next = [(422, "invalid_option")]
    with make_client(fake) as probe, pytest.raises(InvalidInputError, match="injected"):
        probe.models()
    assert fake.requests["GET /v1/models"] == 1


def test_connection_refused_retried_then_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    policy = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.01)
    with (
        caplog.at_level(logging.WARNING, logger="gaussprobe_client"),
        ProbeClient(url, retries=policy) as probe,
        pytest.raises(ProbeConnectionError, match="failed after 3 attempts"),
    ):
        probe.transform(np.zeros((1, 2)))
    assert len(caplog.records) == 2
    assert "ConnectError" in caplog.records[0].getMessage()


def test_wait_until_ready_times_out() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with (
        ProbeClient(url) as probe,
        pytest.raises(ProbeTimeoutError, match=r"not ready after 0\.5 s"),
    ):
        probe.wait_until_ready(timeout=0.5)


def test_diagnostics_batch_over_limit_rejected(fake: FakeService) -> None:
    with (
        make_client(fake) as probe,
        pytest.raises(ValueError, match="at most 1000 \\(max_batch_rows\\)"),
    ):
        probe.diagnostics(np.zeros((1001, 2)))


def test_diagnostics_of_batch_and_record(fake: FakeService) -> None:
    with make_client(fake) as probe:
        of_batch = probe.diagnostics(np.zeros((5, 2)))
        record = probe.diagnostics()
    assert of_batch == {"num_rows": 5}
    assert record["weights_digest_now"] == DIGEST


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"expected_digest": "abc"}, "sha256:<64 hex", id="digest"),
        pytest.param({"transport": "xml"}, "'npy' or 'json'", id="transport"),
        pytest.param({"version": 0}, "positive integer", id="version"),
        pytest.param({"max_chunk_rows": 0}, "max_chunk_rows must be", id="chunk"),
    ],
)
def test_bad_settings_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProbeClient(BASE_URL, **kwargs)  # type: ignore[arg-type]


def test_base_url_without_scheme_rejected() -> None:
    with pytest.raises(ValueError, match="must start with http"):
        ProbeClient("127.0.0.1:8000")
