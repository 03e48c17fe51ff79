"""Session fixtures for client tests: a trained store, a live server, the ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from client_servers import ASGI_BASE_URL, ClientStore, ServerProcess, train_models


@pytest.fixture(scope="session")
def client_store(tmp_path_factory: pytest.TempPathFactory) -> ClientStore:
    root = tmp_path_factory.mktemp("client-store")
    log_dir = tmp_path_factory.mktemp("client-logs")
    trained = train_models(root, {"moons": 0, "moons-b": 1}, log_dir)
    return ClientStore(root, trained["moons"], trained["moons-b"], log_dir)


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
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def asgi_app(client_store: ClientStore) -> Any:
    from service import Settings, create_app

    settings = Settings(
        store=client_store.root,
        models=tuple(client_store.served_refs()),
        install_signal_handlers=False,
        api_key=None,
    )
    return create_app(settings)


@pytest.fixture(scope="session")
def test_client_http(asgi_app: Any) -> Iterator[httpx.Client]:
    """``starlette.testclient.TestClient``: an ``httpx.Client`` that runs the app."""
    from starlette.testclient import TestClient

    with TestClient(asgi_app, base_url=ASGI_BASE_URL) as client:
        yield client


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def asgi_http(asgi_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx.AsyncClient`` on ``httpx.ASGITransport``, with the app's lifespan."""
    async with asgi_app.router.lifespan_context(asgi_app):
        transport = httpx.ASGITransport(app=asgi_app)
        async with httpx.AsyncClient(transport=transport) as client:
            yield client
