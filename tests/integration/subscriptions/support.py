"""Helpers for the Subscription API tests: bodies, requests and ProblemDetails checks."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from city_os.api.keys import SETTINGS

API = "/ngsi-ld/v1"
SUBS = f"{API}/subscriptions"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
EX = "https://example.org/ns#"
CONTEXT = {"ex": EX, "Shelter": "ex:Shelter", "Tower": "ex:Tower", "capacity": "ex:capacity"}
LINK = '<{}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
ENDPOINT = "http://127.0.0.1:18061/notify"
Client = TestClient  # type: ignore[type-arg]


def hdr(tenant: str, **extra: str) -> dict[str, str]:
    return {"NGSILD-Tenant": tenant, "Content-Type": "application/json", **extra}


def ld(tenant: str) -> dict[str, str]:
    return {"NGSILD-Tenant": tenant, "Content-Type": "application/ld+json"}


def subscription(**members: Any) -> dict[str, Any]:
    """A valid Subscription; members given as None are left out."""
    body: dict[str, Any] = {
        "type": "Subscription",
        "entities": [{"type": "Shelter"}],
        "notification": {"endpoint": {"uri": ENDPOINT}},
        "@context": CONTEXT,
    }
    body.update(members)
    return {k: v for k, v in body.items() if v is not None}


async def host_context(client: Client, tenant: str) -> str:
    """CONTEXT hosted by the broker (/jsonldContexts): a URL requests can Link to."""
    resp = await client.post(
        f"{API}/jsonldContexts", json={"@context": CONTEXT}, headers=hdr(tenant)
    )
    assert resp.status == 201, await resp.text()
    # The broker resolves its own hosted URLs from its store, without an HTTP request.
    return str(client.app[SETTINGS].base_url + resp.headers["Location"])


async def create(client: Client, tenant: str, body: dict[str, Any], **headers: str) -> str:
    """POST (inline @context: JSON-LD, else JSON with ``headers``); returns the id."""
    sent = ld(tenant) if "@context" in body else hdr(tenant, **headers)
    resp = await client.post(SUBS, json=body, headers=sent)
    assert resp.status == 201, await resp.text()
    location = resp.headers["Location"]
    assert location.startswith(f"{SUBS}/")
    return location.rsplit("/", 1)[1]


async def retrieve(client: Client, tenant: str, sid: str, query: str = "", **headers: str) -> Any:
    """GET a subscription as JSON-LD (compacted with the Link @context of ``headers``)."""
    resp = await client.get(
        f"{SUBS}/{sid}{query}",
        headers={"NGSILD-Tenant": tenant, "Accept": "application/ld+json", **headers},
    )
    assert resp.status == 200, await resp.text()
    return await resp.json(content_type=None)


async def problem(resp: Any, status: int, kind: str) -> dict[str, Any]:
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    assert body["type"] == ERR + kind
    assert body["title"] and body["detail"]
    return body  # type: ignore[no-any-return]
