"""Session fixtures for client tests: a trained store, a live server, the ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from client_servers import (
    ASGI_BASE_URL,
    SERVER_START_TIMEOUT_SECONDS,
    ClientStore,
    ServerProcess,
    make_app,
    open_test_client,
    train_models,
)
from gaussprobe_client import AsyncProbeClient, ProbeClient


@pytest.fixture(scope="session")
def client_store(tmp_path_factory: pytest.TempPathFactory) -> ClientStore:
    root = tmp_path_factory.mktemp("client-store")
    log_dir = tmp_path_factory.mktemp("client-logs")
    cache = tmp_path_factory.mktemp("client-jax-cache")
    trained = train_models(root, {"moons": 0, "moons-b": 1}, log_dir)
    return ClientStore(root, trained["moons"], trained["moons-b"], log_dir, cache)


@pytest.fixture(scope="session")
def in_process_flows(client_store: ClientStore) -> dict[str, Any]:
    """The served flows loaded in this process, keyed by model name."""
    from flow.store import ArtifactStore

    store = ArtifactStore(client_store.root, read_only=True)
    return {
        model.name: store.open(model.ref).load_flow()
        for model in (client_store.moons, client_store.moons_retrained)
    }


@pytest.fixture(scope="session")
def live_server(client_store: ClientStore) -> Iterator[ServerProcess]:
    server = ServerProcess(
        client_store.root,
        client_store.served_refs(),
        client_store.log_dir / "live-server.log",
        client_store.compilation_cache,
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def test_client_http(client_store: ClientStore) -> Iterator[httpx.Client]:
    """A TestClient that runs the app in a thread, after its models loaded."""
    app = make_app(client_store, client_store.served_refs(), api_key=None)
    with open_test_client(app) as client:
        ProbeClient(ASGI_BASE_URL, client=client).wait_until_ready(
            SERVER_START_TIMEOUT_SECONDS
        )
        yield client


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def asgi_http(client_store: ClientStore) -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx.AsyncClient`` on ``httpx.ASGITransport``, after the app loaded."""
    app = make_app(client_store, client_store.served_refs(), api_key=None)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport) as client:
            probe = AsyncProbeClient(ASGI_BASE_URL, client=client)
            await probe.wait_until_ready(SERVER_START_TIMEOUT_SECONDS)
            yield client
