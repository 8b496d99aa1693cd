"""Purge entities (§5.6.21, DELETE /entities) over HTTP, one tenant per test."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient

API = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"

Client = TestClient  # type: ignore[type-arg]


def shelter(n: int, kind: str = "Shelter", **attrs: Any) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:{kind}:{n}",
        "type": kind,
        "name": {"type": "Property", "value": f"{kind} {n}"},
        "capacity": {"type": "Property", "value": n * 100},
        **attrs,
    }


async def seed(client: Client, tenant: str) -> None:
    bodies = [shelter(1), shelter(2), shelter(3), shelter(1, "Park")]
    resp = await client.post(
        f"{API}/entityOperations/create",
        json=bodies,
        headers={"NGSILD-Tenant": tenant, "Content-Type": "application/json"},
    )
    assert resp.status == 201, await resp.text()


async def purge(client: Client, tenant: str, params: str, status: int = 204) -> Any:
    resp = await client.delete(f"{API}/entities?{params}", headers={"NGSILD-Tenant": tenant})
    assert resp.status == status, await resp.text()
    return None if status == 204 else await resp.json()


async def remaining(client: Client, tenant: str) -> dict[str, Any]:
    resp = await client.get(f"{API}/entities?local=true", headers={"NGSILD-Tenant": tenant})
    assert resp.status == 200
    return {e["id"]: e for e in await resp.json()}


async def test_purge_by_type(client: Client, tenant: str) -> None:
    await seed(client, tenant)
    await purge(client, tenant, "type=Shelter")
    assert set(await remaining(client, tenant)) == {"urn:ngsi-ld:Park:1"}


async def test_purge_by_q_and_id(client: Client, tenant: str) -> None:
    await seed(client, tenant)
    await purge(client, tenant, "q=" + quote("capacity>=200"))
    assert set(await remaining(client, tenant)) == {"urn:ngsi-ld:Shelter:1", "urn:ngsi-ld:Park:1"}
    await purge(client, tenant, "type=Shelter,Park&id=urn:ngsi-ld:Park:1")
    assert set(await remaining(client, tenant)) == {"urn:ngsi-ld:Shelter:1"}


async def test_purge_emits_one_outbox_event_per_entity(client: Client, tenant: str) -> None:
    await seed(client, tenant)
    await purge(client, tenant, "type=Shelter")
    pool = client.app["pool"] if "pool" in client.app else None  # type: ignore[index]
    if pool is None:
        from city_os.api.keys import POOL

        pool = client.app[POOL]
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT entity_id FROM cityos.outbox WHERE tenant = $1 AND event_type LIKE '%purged%'",
            tenant,
        )
    assert sorted(r["entity_id"] for r in rows) == [f"urn:ngsi-ld:Shelter:{n}" for n in (1, 2, 3)]


async def test_drop_and_keep_attributes(client: Client, tenant: str) -> None:
    await seed(client, tenant)
    await purge(client, tenant, "type=Shelter&drop=name")
    left = await remaining(client, tenant)
    assert (
        "name" not in left["urn:ngsi-ld:Shelter:1"] and "capacity" in left["urn:ngsi-ld:Shelter:1"]
    )
    assert "name" in left["urn:ngsi-ld:Park:1"]
    await purge(client, tenant, "type=Park&keep=name")
    left = await remaining(client, tenant)
    assert "name" in left["urn:ngsi-ld:Park:1"] and "capacity" not in left["urn:ngsi-ld:Park:1"]


async def test_local_alone_purges_everything(client: Client, tenant: str) -> None:
    await seed(client, tenant)
    await purge(client, tenant, "local=true")
    assert await remaining(client, tenant) == {}


@pytest.mark.parametrize(
    "params",
    [
        "",
        "id=urn:ngsi-ld:Shelter:1",
        "idPattern=.*",
        "attrs=createdAt",
        "q=" + quote('modifiedAt>"2020-01-01T00:00:00Z"'),
        "type=Shelter&keep=name&drop=capacity",
        "type=Shelter&q=" + quote('owner{name}=="x"'),
        "type=Shelter&attrs=" + quote("owner{name}"),
        "type=Shelter&idPattern=" + quote("(unclosed"),
    ],
)
async def test_refused_purges_delete_nothing(client: Client, tenant: str, params: str) -> None:
    await seed(client, tenant)
    body = await purge(client, tenant, params, status=400)
    assert body["type"] == ERR + "BadRequestData"
    assert len(await remaining(client, tenant)) == 4
