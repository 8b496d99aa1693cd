"""Helpers for the context source registration tests: bodies, requests, ProblemDetails."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from city_os.api.keys import SETTINGS

API = "/ngsi-ld/v1"
REGS = f"{API}/csourceRegistrations"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
EX = "https://example.org/ns#"
CORE = "https://uri.etsi.org/ngsi-ld/"
CONTEXT = {
    "ex": EX, "Shelter": "ex:Shelter", "Vehicle": "ex:Vehicle", "capacity": "ex:capacity",
    "speed": "ex:speed", "owner": "ex:owner", "sourceType": "ex:sourceType",
}  # fmt: skip
ENDPOINT = "http://127.0.0.1:18071/ngsi-ld/v1"
Client = TestClient  # type: ignore[type-arg]


def ld(tenant: str) -> dict[str, str]:
    return {"NGSILD-Tenant": tenant, "Content-Type": "application/ld+json"}


def registration(**members: Any) -> dict[str, Any]:
    """A valid registration (inline @context); members given as None are left out."""
    body: dict[str, Any] = {
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": "Shelter"}]}],
        "endpoint": ENDPOINT,
        "@context": CONTEXT,
    }
    body.update(members)
    return {k: v for k, v in body.items() if v is not None}


async def create(client: Client, tenant: str, body: dict[str, Any]) -> str:
    resp = await client.post(REGS, json=body, headers=ld(tenant))
    assert resp.status == 201, await resp.text()
    location = resp.headers["Location"]
    assert location.startswith(f"{REGS}/")
    assert await resp.read() == b""
    return location.rsplit("/", 1)[1]


async def retrieve(client: Client, tenant: str, rid: str, query: str = "") -> Any:
    """GET without a @context: names come back as full IRIs (§5.10.1)."""
    resp = await client.get(
        f"{REGS}/{rid}{query}",
        headers={"NGSILD-Tenant": tenant, "Accept": "application/json"},
    )
    assert resp.status == 200, await resp.text()
    return await resp.json(content_type=None)


async def query(client: Client, tenant: str, params: dict[str, str]) -> Any:
    resp = await client.get(REGS, params=params, headers={"NGSILD-Tenant": tenant})
    assert resp.status == 200, await resp.text()
    return await resp.json(content_type=None)


async def problem(resp: Any, status: int, kind: str) -> dict[str, Any]:
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    assert body["type"] == ERR + kind
    assert body["title"] and body["detail"]
    return body  # type: ignore[no-any-return]


LINK = '<{}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


async def host_context(client: Client, tenant: str) -> str:
    """CONTEXT hosted by the broker (/jsonldContexts): a URL requests can Link to."""
    resp = await client.post(
        f"{API}/jsonldContexts",
        json={"@context": CONTEXT},
        headers={"NGSILD-Tenant": tenant, "Content-Type": "application/json"},
    )
    assert resp.status == 201, await resp.text()
    return str(client.app[SETTINGS].base_url + resp.headers["Location"])


async def read(client: Client, tenant: str, rid: str, ctx_url: str, query: str = "") -> Any:
    """GET compacted with the hosted @context (Link header)."""
    resp = await client.get(
        f"{REGS}/{rid}{query}", headers={"NGSILD-Tenant": tenant, "Link": LINK.format(ctx_url)}
    )
    assert resp.status == 200, await resp.text()
    return await resp.json(content_type=None)
