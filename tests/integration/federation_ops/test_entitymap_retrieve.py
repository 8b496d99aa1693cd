"""EntityMaps on Retrieve Entity (§5.7.1.4): ``entityMap=true`` makes a map holding the entity
(``@none``: found here), a live map named by ``NGSILD-EntityMap`` is used and echoed unchanged,
and an unknown one is no error: a new map is made and the dead reference is not echoed.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

API = "/ngsi-ld/v1"
VEHICLE = "urn:ngsi-ld:Vehicle:em-retrieve"
Client = TestClient  # type: ignore[type-arg]


async def _retrieve(client: Client, tenant: str, **kw: Any) -> tuple[int, Any, Any]:
    headers = {"NGSILD-Tenant": tenant, **kw.pop("headers", {})}
    resp = await client.get(f"{API}/entities/{VEHICLE}", headers=headers, **kw)
    return resp.status, await resp.json(), resp.headers


async def test_retrieve_makes_uses_and_replaces_entity_maps(client: Client, tenant: str) -> None:
    resp = await client.post(
        f"{API}/entities",
        json={"id": VEHICLE, "type": "Vehicle", "speed": {"type": "Property", "value": 3}},
        headers={"NGSILD-Tenant": tenant},
    )
    assert resp.status == 201, await resp.text()

    status, body, headers = await _retrieve(client, tenant)
    assert status == 200 and "NGSILD-EntityMap" not in headers  # no map asked for

    status, body, headers = await _retrieve(client, tenant, params={"entityMap": "true"})
    assert status == 200 and body["id"] == VEHICLE and "entityMap" not in body
    location = headers["NGSILD-EntityMap"]
    resp = await client.get(
        f"{API}/entityMaps/{location.rsplit('/', 1)[1]}", headers={"NGSILD-Tenant": tenant}
    )
    assert resp.status == 200
    assert (await resp.json())["entityMap"] == {VEHICLE: ["@none"]}

    status, _, headers = await _retrieve(client, tenant, headers={"NGSILD-EntityMap": location})
    assert status == 200 and headers["NGSILD-EntityMap"] == location  # live: echoed

    dead = "urn:ngsi-ld:EntityMap:gone"
    status, _, headers = await _retrieve(client, tenant, headers={"NGSILD-EntityMap": dead})
    assert status == 200
    assert "gone" not in headers["NGSILD-EntityMap"]  # a new map, not the dead reference

    resp = await client.get(
        f"{API}/entities/{VEHICLE}",
        params={"entityMap": "maybe"},
        headers={"NGSILD-Tenant": tenant},
    )
    assert resp.status == 400
    assert "entityMap" in (await resp.json())["detail"]
