"""Small factories shared by the schema registry tests (HTTP against the session app)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp.test_utils import TestClient

Client = TestClient  # type: ignore[type-arg]

API = "/ngsi-ld/v1"
SCHEMAS = "/cityos/v1/schemas"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
NS = "https://example.org/ns#"
CTX = {
    "ex": NS,
    "Shelter": "ex:Shelter",
    "name": "ex:name",
    "capacity": "ex:capacity",
    "dateCreated": "https://smartdatamodels.org/dateCreated",
}
SHELTER = NS + "Shelter"
SHELTER_PATH = f"{SCHEMAS}/{quote(SHELTER, safe='')}"
COMMON = "https://smart-data-models.github.io/data-models/common-schema.json"

SCHEMA_V1: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "allOf": [{"$ref": COMMON + "#/definitions/GSMA-Commons"}],
    "properties": {
        "type": {"enum": ["Shelter"]},
        "name": {"type": "string"},
        "capacity": {"type": "integer", "minimum": 0},
    },
    "required": ["id", "type", "name"],
}
SCHEMA_V2: dict[str, Any] = {
    **SCHEMA_V1,
    "properties": {**SCHEMA_V1["properties"], "capacity": {"type": "integer", "maximum": 100}},
}


def hdr(tenant: str, **extra: str) -> dict[str, str]:
    return {"NGSILD-Tenant": tenant, "Content-Type": "application/json", **extra}


def ld(tenant: str) -> dict[str, str]:
    return {"NGSILD-Tenant": tenant, "Content-Type": "application/ld+json"}


def shelter(n: int = 1, capacity: Any = 50, **attrs: Any) -> dict[str, Any]:
    """A Shelter written with full IRIs and no @context: the schema's context must still apply."""
    body: dict[str, Any] = {
        "id": f"urn:ngsi-ld:Shelter:{n}",
        "type": SHELTER,
        NS + "name": {"type": "Property", "value": f"shelter {n}"},
        NS + "capacity": {"type": "Property", "value": capacity},
    }
    body.update(attrs)
    return body


async def register(
    client: Client,
    tenant: str,
    schema: dict[str, Any],
    *,
    activate: bool = True,
    status: int = 201,
) -> dict[str, Any]:
    body = {"type": "Shelter", "schema": schema, "@context": CTX, "activate": activate}
    resp = await client.post(SCHEMAS, json=body, headers=ld(tenant))
    got = await resp.json(content_type=None)
    assert resp.status == status, got
    return got  # type: ignore[no-any-return]


async def create(client: Client, tenant: str, body: dict[str, Any]) -> None:
    resp = await client.post(f"{API}/entities", json=body, headers=hdr(tenant))
    assert resp.status == 201, await resp.text()


async def get_entity(client: Client, tenant: str, eid: str) -> Any:
    resp = await client.get(f"{API}/entities/{eid}", headers={"NGSILD-Tenant": tenant})
    assert resp.status == 200, await resp.text()
    return await resp.json(content_type=None)


async def problem(resp: Any, status: int, kind: str) -> dict[str, Any]:
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    assert body["type"] == ERR + kind, body
    assert body["detail"]
    return body  # type: ignore[no-any-return]


def pointers(problem_body: dict[str, Any]) -> list[str]:
    return [v["pointer"] for v in problem_body["violations"]]


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Poll ``check`` until it is true (no fixed sleeps: returns as soon as it holds)."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)
