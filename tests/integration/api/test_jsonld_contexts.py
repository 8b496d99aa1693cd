"""/jsonldContexts (§5.13) over real HTTP against PostgreSQL: hosted, cached and core contexts.

The context table is global, so every test works with its own hosted contexts, tenants and
remote context paths and never assumes the listing holds only its own entries.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from city_os.api.keys import CONTEXT_REGISTRY
from city_os.app import create_app
from tests.conftest import test_settings as settings_for_tests

API = "/ngsi-ld/v1"
CTX = f"{API}/jsonldContexts"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
CORE_V16 = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
LINK = '<{}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
TERMS = {"capacity": "https://example.org/ns#capacity", "Shelter": "https://example.org/ns#Shelter"}

Client = TestClient  # type: ignore[type-arg]


@dataclass
class Remote:
    """A remote @context server whose documents a test can change or break."""

    base: str = ""
    documents: dict[str, Any] = field(default_factory=dict)
    down: bool = False

    def add(self, document: Any) -> str:
        name = uuid.uuid4().hex + ".jsonld"
        self.documents[name] = document
        return f"{self.base}/{name}"


@pytest.fixture
async def remote() -> AsyncIterator[Remote]:
    state = Remote()

    async def handle(request: web.Request) -> web.Response:
        document = state.documents.get(request.match_info["name"])
        if state.down or document is None:
            return web.Response(status=503)
        return web.Response(body=orjson.dumps(document), content_type="application/ld+json")

    app = web.Application()
    app.router.add_get("/{name}", handle)
    async with TestServer(app) as server:
        state.base = str(server.make_url("")).rstrip("/")
        yield state


def tenant_header(tenant: str, **extra: str) -> dict[str, str]:
    return {"NGSILD-Tenant": tenant, **extra}


def encoded(url: str) -> str:
    return quote(url, safe="")


async def problem(resp: Any, status: int, kind: str) -> None:
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    assert body["type"] == ERR + kind
    assert body["detail"]


async def host(client: Client, tenant: str, context: Any = None) -> tuple[str, str]:
    """Add a hosted context; returns its local id and URL."""
    resp = await client.post(
        CTX,
        data=orjson.dumps({"@context": TERMS if context is None else context}),
        headers=tenant_header(tenant, **{"Content-Type": "application/json"}),
    )
    assert resp.status == 201, await resp.text()
    location = resp.headers["Location"]
    assert location.startswith(CTX + "/")
    local_id = location.rsplit("/", 1)[1]
    details = await served(client, local_id, details=True, tenant=tenant)
    return local_id, details["URL"]


async def served(
    client: Client, ref: str, *, details: bool = False, tenant: str | None = None
) -> Any:
    query = "?details=true" if details else ""
    headers = tenant_header(tenant) if tenant is not None else {}
    resp = await client.get(f"{CTX}/{ref}{query}", headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json(content_type=None)


async def listed(client: Client, query: str = "", tenant: str = "") -> Any:
    resp = await client.get(f"{CTX}{query}", headers=tenant_header(tenant))
    assert resp.status == 200, await resp.text()
    return await resp.json(content_type=None)


async def create_entity(client: Client, tenant: str, context_url: str) -> str:
    entity_id = f"urn:ngsi-ld:Shelter:{uuid.uuid4().hex}"
    resp = await client.post(
        f"{API}/entities",
        data=orjson.dumps(
            {"id": entity_id, "type": "Shelter", "capacity": {"type": "Property", "value": 9}}
        ),
        headers=tenant_header(
            tenant, **{"Content-Type": "application/json", "Link": LINK.format(context_url)}
        ),
    )
    assert resp.status == 201, await resp.text()
    return entity_id


async def test_add_serve_list_delete_hosted(client: Client, tenant: str) -> None:
    local_id, url = await host(client, tenant)
    assert url.endswith(f"{CTX}/{local_id}")

    resp = await client.get(f"{CTX}/{local_id}")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert await resp.json() == {"@context": TERMS}
    resp = await client.get(f"{CTX}/{encoded(url)}", headers={"Accept": "application/ld+json"})
    assert resp.content_type == "application/ld+json"
    assert await resp.json(content_type=None) == {"@context": TERMS}

    info = await served(client, local_id, details=True, tenant=tenant)
    assert info["localId"] == local_id
    assert info["kind"] == "Hosted"
    assert info["createdAt"].endswith("Z")
    assert set(info) <= {"URL", "localId", "kind", "createdAt", "lastUsage", "numberOfHits"}

    assert url in await listed(client, tenant=tenant)
    assert url in await listed(client, "?kind=Hosted&details=false", tenant=tenant)
    assert url not in await listed(client, "?kind=Cached", tenant=tenant)
    details = await listed(client, "?details=true&kind=Hosted", tenant=tenant)
    assert [d["localId"] for d in details] == [local_id]

    resp = await client.delete(f"{CTX}/{local_id}", headers=tenant_header(tenant))
    assert resp.status == 204
    await problem(await client.get(f"{CTX}/{local_id}"), 404, "ResourceNotFound")
    await problem(
        await client.delete(f"{CTX}/{local_id}", headers=tenant_header(tenant)),
        404,
        "ResourceNotFound",
    )


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"{not json", "InvalidRequest"),
        (b'{"A1": "urn:a:A1"}', "InvalidRequest"),
        (b'["urn:a"]', "InvalidRequest"),
        (b'{"@context": 42}', "BadRequestData"),
        (b'{"@context": true}', "BadRequestData"),
        (b'{"@context": ["https://example.org/ctx.jsonld", 7]}', "BadRequestData"),
        (b'{"@context": ["relative/ctx.jsonld"]}', "BadRequestData"),
        (b'{"@context": {"A1": 5}}', "BadRequestData"),
    ],
)
async def test_add_rejects_invalid_payloads(
    client: Client, tenant: str, body: bytes, kind: str
) -> None:
    resp = await client.post(
        CTX, data=body, headers=tenant_header(tenant, **{"Content-Type": "application/json"})
    )
    await problem(resp, 400, kind)
    assert "Location" not in resp.headers
    assert await listed(client, "?kind=Hosted", tenant=tenant) == []


async def test_add_accepts_json_ld_and_rejects_other_media(client: Client, tenant: str) -> None:
    resp = await client.post(
        CTX,
        data=orjson.dumps({"@context": TERMS}),
        headers=tenant_header(tenant, **{"Content-Type": "application/ld+json"}),
    )
    assert resp.status == 201
    resp = await client.post(
        CTX, data=b"x", headers=tenant_header(tenant, **{"Content-Type": "text/plain"})
    )
    await problem(resp, 415, "UnsupportedMediaType")


async def test_hosted_context_is_usable_and_counts_hits(client: Client, tenant: str) -> None:
    local_id, url = await host(client, tenant)
    assert (await served(client, local_id, details=True))["numberOfHits"] == 1  # host() served it

    # The hosted URL is resolved from the store: the broker's base_url is not this test server.
    entity_id = await create_entity(client, tenant, url)
    resp = await client.get(
        f"{API}/entities/{entity_id}", headers=tenant_header(tenant, Link=LINK.format(url))
    )
    entity = await resp.json(content_type=None)
    assert entity["type"] == "Shelter"
    assert entity["capacity"]["value"] == 9

    info = await served(client, local_id, details=True)
    # host()'s serve + the details above + entity create + entity read; this serve not yet.
    assert info["numberOfHits"] == 4
    assert "lastUsage" in info
    assert (await served(client, local_id, details=True))["numberOfHits"] == 5


async def test_remote_contexts_are_cached_reloaded_and_deleted(
    client: Client, tenant: str, remote: Remote
) -> None:
    url = remote.add({"@context": TERMS})
    await create_entity(client, tenant, url)
    info = await served(client, encoded(url), details=True)
    assert info["kind"] == "Cached"
    assert info["numberOfHits"] == 1
    assert url in await listed(client, "?kind=Cached")
    assert await served(client, info["localId"]) == {"@context": TERMS}

    # A failed reload keeps the cached copy.
    remote.down = True
    await problem(
        await client.delete(f"{CTX}/{encoded(url)}?reload=true"), 504, "LdContextNotAvailable"
    )
    assert await served(client, encoded(url)) == {"@context": TERMS}

    remote.down = False
    changed = {"@context": {**TERMS, "extra": "https://example.org/ns#extra"}}
    remote.documents[url.rsplit("/", 1)[1]] = changed
    resp = await client.delete(f"{CTX}/{encoded(url)}?reload=true")
    assert resp.status == 204
    assert await served(client, encoded(url)) == changed
    assert (await served(client, encoded(url), details=True))["kind"] == "Cached"

    resp = await client.delete(f"{CTX}/{info['localId']}")
    assert resp.status == 204
    await problem(await client.get(f"{CTX}/{encoded(url)}?details=true"), 404, "ResourceNotFound")

    # Used again, it is fetched and cached afresh, with its own counters.
    await create_entity(client, tenant, url)
    again = await served(client, encoded(url), details=True)
    assert again["localId"] != info["localId"]
    assert again["numberOfHits"] == 1


async def test_core_context_is_listed_and_cannot_be_deleted(client: Client) -> None:
    assert CORE in await listed(client)
    cached = await listed(client, "?details=true&kind=Cached")
    core = next(c for c in cached if c["URL"] == CORE)
    assert core["kind"] == "Cached"
    for ref in (encoded(CORE), encoded(CORE_V16), core["localId"]):
        assert (await served(client, ref, details=True))["URL"] == CORE
    document = await served(client, encoded(CORE_V16))
    assert "@context" in document

    for query in ("", "?reload=false"):
        resp = await client.delete(f"{CTX}/{encoded(CORE_V16)}{query}")
        await problem(resp, 400, "BadRequestData")
    resp = await client.delete(f"{CTX}/{encoded(CORE)}?reload=true")
    assert resp.status == 204
    assert CORE in await listed(client)


@pytest.mark.parametrize(
    ("method", "path", "status", "kind"),
    [
        ("GET", f"{CTX}?kind=other", 400, "BadRequestData"),
        ("GET", f"{CTX}?details=other", 400, "BadRequestData"),
        ("GET", f"{CTX}?details=true&kind=other", 400, "BadRequestData"),
        ("GET", f"{CTX}/unknown-context", 404, "ResourceNotFound"),
        ("GET", f"{CTX}/unknown-context?details=true", 404, "ResourceNotFound"),
        ("DELETE", f"{CTX}/unknown-context", 404, "ResourceNotFound"),
        ("DELETE", f"{CTX}/unknown-context?reload=false", 404, "ResourceNotFound"),
        ("DELETE", f"{CTX}/unknown-context?reload=true", 400, "BadRequestData"),
        ("DELETE", f"{CTX}/unknown-context?reload=xxx", 400, "BadRequestData"),
    ],
)
async def test_parameter_and_lookup_errors(
    client: Client, method: str, path: str, status: int, kind: str
) -> None:
    await problem(await client.request(method, path), status, kind)


async def test_reload_applies_to_cached_contexts_only(client: Client, tenant: str) -> None:
    local_id, _ = await host(client, tenant)
    resp = await client.delete(f"{CTX}/{local_id}?reload=true", headers=tenant_header(tenant))
    await problem(resp, 400, "BadRequestData")
    await served(client, local_id)


async def test_hosted_contexts_belong_to_their_tenant(client: Client) -> None:
    owner, other = "ctx-a-" + uuid.uuid4().hex[:8], "ctx-b-" + uuid.uuid4().hex[:8]
    local_id, url = await host(client, owner)

    for query in ("", "?details=true"):
        resp = await client.get(f"{CTX}/{local_id}{query}", headers=tenant_header(other))
        await problem(resp, 404, "ResourceNotFound")
    assert url not in await listed(client, tenant=other)
    assert (
        local_id not in orjson.dumps(await listed(client, "?details=true", tenant=other)).decode()
    )
    resp = await client.delete(f"{CTX}/{local_id}", headers=tenant_header(other))
    await problem(resp, 404, "ResourceNotFound")

    # Dereferenced by URL without a tenant (as JSON-LD processors do) it is served.
    assert await served(client, local_id) == {"@context": TERMS}
    assert url in await listed(client, tenant=owner)
    resp = await client.delete(f"{CTX}/{local_id}", headers=tenant_header(owner))
    assert resp.status == 204


async def test_contexts_are_shared_by_broker_processes(client: Client, tenant: str) -> None:
    local_id, url = await host(client, tenant)
    other = create_app(settings_for_tests())
    async with TestClient(TestServer(other)) as second:
        assert await served(second, local_id) == {"@context": TERMS}
        await create_entity(second, tenant, url)
        resp = await second.delete(f"{CTX}/{local_id}", headers=tenant_header(tenant))
        assert resp.status == 204
    await problem(await client.get(f"{CTX}/{local_id}"), 404, "ResourceNotFound")


async def test_implicit_contexts_are_created_once_per_context(
    client: Client, remote: Remote
) -> None:
    registry = client.server.app[CONTEXT_REGISTRY]
    context = [remote.add({"@context": TERMS}), {"k": "https://example.org/k"}]
    url = await registry.add_implicit(context)
    assert await registry.add_implicit(context) == url
    local_id = url.rsplit("/", 1)[1]
    info = await served(client, local_id, details=True)
    assert info["kind"] == "ImplicitlyCreated"
    assert url in await listed(client, "?kind=ImplicitlyCreated")
    assert await served(client, local_id) == {"@context": context}
    resp = await client.delete(f"{CTX}/{local_id}?reload=true")
    await problem(resp, 400, "BadRequestData")
    assert (await client.delete(f"{CTX}/{local_id}")).status == 204
