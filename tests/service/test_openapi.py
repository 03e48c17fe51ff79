"""OpenAPI schema snapshot.

The schema is what client code is generated from, so any change must be
deliberate. After an intended change, regenerate the snapshot with::

    .venv/bin/python -c "import json, service; print(json.dumps(\\
        service.create_app().openapi(), indent=2, sort_keys=True))" \\
        > tests/service/openapi_snapshot.json
"""

from __future__ import annotations

import json
from pathlib import Path

from service import Settings, create_app

SNAPSHOT = Path(__file__).with_name("openapi_snapshot.json")


def test_openapi_matches_snapshot() -> None:
    schema = create_app(Settings()).openapi()
    stored = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert json.loads(json.dumps(schema, sort_keys=True)) == stored


def test_openapi_lists_contract_routes() -> None:
    paths = create_app(Settings()).openapi()["paths"]
    for prefix in ("", "/v1/models/{name}", "/v1/models/{name}/versions/{version}"):
        assert "post" in paths[prefix + "/transform"]
        assert "post" in paths[prefix + "/invert"]
        assert "post" in paths[prefix + "/logprob"]
        assert {"get", "post"} <= set(paths[prefix + "/diagnostics"])
        assert "get" in paths[prefix + "/diagnostics/report"]
        assert "get" in paths[prefix + "/diagnostics/report/{file}"]
    for path in ("/v1/models", "/health/live", "/health/ready", "/metrics"):
        assert "get" in paths[path]
