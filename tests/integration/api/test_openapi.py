"""/openapi.json and /docs over real HTTP: the document of the running app, and a page whose
scripts and styles are served by the broker itself (no CDN)."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate


async def test_the_document_is_served_and_valid(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    doc = await resp.json()
    validate(doc)
    assert "/ngsi-ld/v1/entities/{entityId}" in doc["paths"]
    assert doc["info"]["version"] == "0.1.0"


async def test_the_page_loads_only_local_assets(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await client.get("/docs")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    page = await resp.text()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/docs/") for s in sources), sources
    for source in sources:
        asset = await client.get(source)
        assert asset.status == 200, source
        assert len(await asset.read()) > 0
    bundle = await client.get("/docs/swagger-ui-bundle.js")
    assert bundle.content_type == "text/javascript"
    init = await (await client.get("/docs/init.js")).text()
    assert '"/openapi.json"' in init


async def test_an_unknown_asset_is_a_problem(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await client.get("/docs/..%2Fconfig.py")
    assert resp.status == 404
    body = await resp.json()
    assert body["type"] == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"
