"""Snapshots (city_os/snapshots/, §5.16) over HTTP, one tenant per test: the fill, the frozen
copy read through NGSILD-Snapshot, update, clone, delete and purge."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from aiohttp.test_utils import TestClient

API = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
JSON = {"Content-Type": "application/json"}

Client = TestClient  # type: ignore[type-arg]


def vehicle(name: str, speed: int) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Vehicle:{name}",
        "type": "Vehicle",
        "speed": {"type": "Property", "value": speed},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [130.3, 33.2]},
        },
    }


async def _create(client: Client, tenant: str, body: Any) -> str:
    resp = await client.post(f"{API}/snapshots", json=body, headers={"NGSILD-Tenant": tenant})
    assert resp.status == 201, await resp.text()
    location = resp.headers["Location"]
    assert location.startswith(f"{API}/snapshots/")
    return location


async def _ready(client: Client, tenant: str, location: str) -> dict[str, Any]:
    """Poll (with a timeout) until the fill is over."""
    async with asyncio.timeout(10):
        while True:
            resp = await client.get(location, headers={"NGSILD-Tenant": tenant})
            assert resp.status == 200, await resp.text()
            doc: dict[str, Any] = await resp.json()
            if doc["snapshotStatus"] != "preparing":
                return doc
            await asyncio.sleep(0.05)


async def _scoped(client: Client, tenant: str, sid: str, path: str) -> Any:
    resp = await client.get(
        f"{API}{path}", headers={"NGSILD-Tenant": tenant, "NGSILD-Snapshot": sid}
    )
    assert resp.status == 200, await resp.text()
    assert resp.headers["NGSILD-Snapshot"] == sid
    return await resp.json()


async def _seed(client: Client, tenant: str) -> None:
    resp = await client.post(
        f"{API}/entityOperations/create",
        json=[vehicle("fast", 80), vehicle("slow", 30)],
        headers={"NGSILD-Tenant": tenant, **JSON},
    )
    assert resp.status == 201, await resp.text()


async def test_snapshot_freezes_query_results(client: Client, tenant: str) -> None:
    await _seed(client, tenant)
    query = {"type": "Query", "entities": [{"type": "Vehicle"}], "q": "speed>50"}
    location = await _create(
        client, tenant, {"type": "Snapshot", "snapshotQueries": [query, {**query, "q": "speed>90"}]}
    )
    doc = await _ready(client, tenant, location)
    assert doc["snapshotStatus"] == "partial"  # the second query found nothing
    assert [d["resultStatus"] for d in doc["snapshotQueriesDetails"]] == ["success", "empty"]
    assert doc["snapshotPriority"] == 5 and doc["lastUsedAt"]
    assert "createdAt" not in doc
    sid = doc["id"]

    resp = await client.patch(
        f"{API}/entities/urn:ngsi-ld:Vehicle:fast/attrs",
        json={"speed": {"type": "Property", "value": 10}},
        headers={"NGSILD-Tenant": tenant},
    )
    assert resp.status == 204
    found = await _scoped(client, tenant, sid, "/entities?type=Vehicle")
    assert [(e["id"], e["speed"]["value"]) for e in found] == [("urn:ngsi-ld:Vehicle:fast", 80)]
    # the copy answers geo queries too (its geometry was copied)
    near = "georel=near%3BmaxDistance%3D%3D1000&geometry=Point&coordinates=%5B130.3,33.2%5D"
    assert len(await _scoped(client, tenant, sid, f"/entities?type=Vehicle&{near}")) == 1
    one = await _scoped(client, tenant, sid, "/entities/urn:ngsi-ld:Vehicle:fast")
    assert one["speed"]["value"] == 80
    resp = await client.get(
        f"{API}/entities/urn:ngsi-ld:Vehicle:fast", headers={"NGSILD-Tenant": tenant}
    )
    assert (await resp.json())["speed"]["value"] == 10  # the live entity moved on

    # read-only, and an unknown Snapshot is 404
    resp = await client.delete(
        f"{API}/entities/urn:ngsi-ld:Vehicle:fast",
        headers={"NGSILD-Tenant": tenant, "NGSILD-Snapshot": sid},
    )
    assert resp.status == 400 and (await resp.json())["type"] == ERR + "BadRequestData"
    resp = await client.get(
        f"{API}/entities?type=Vehicle",
        headers={"NGSILD-Tenant": tenant, "NGSILD-Snapshot": "urn:ngsi-ld:Snapshot:absent"},
    )
    assert resp.status == 404 and (await resp.json())["type"] == ERR + "ResourceNotFound"


async def test_bad_snapshots_are_400(client: Client, tenant: str) -> None:
    bad = [
        {"type": "Snapshot"},
        {"type": "Snapshot", "snapshotQueries": []},
        {"type": "Other", "snapshotQueries": [{"type": "Query", "entities": [{"type": "V"}]}]},
        {"type": "Snapshot", "snapshotQueries": [{"type": "Query", "entities": [{"type": "V"}],
                                                   "temporalQ": {"timerel": "after"}}]},
        {"type": "Snapshot", "snapshotQueries": [{"type": "Query", "q": "speed>>"}]},
        {"type": "Snapshot", "snapshotStatus": "success",
         "snapshotQueries": [{"type": "Query", "entities": [{"type": "V"}]}]},
        {"type": "Snapshot", "snapshotPriority": 0,
         "snapshotQueries": [{"type": "Query", "entities": [{"type": "V"}]}]},
    ]  # fmt: skip
    for body in bad:
        resp = await client.post(f"{API}/snapshots", json=body, headers={"NGSILD-Tenant": tenant})
        assert resp.status == 400, (body, await resp.text())
        assert (await resp.json())["type"] == ERR + "BadRequestData"
    resp = await client.get(f"{API}/snapshots", headers={"NGSILD-Tenant": tenant})
    assert await resp.json() == []  # nothing was written


async def test_update_clone_delete_and_purge(client: Client, tenant: str) -> None:
    await _seed(client, tenant)
    body = {
        "type": "Snapshot",
        "snapshotQueries": [{"type": "Query", "entities": [{"type": "Vehicle"}]}],
    }
    location = await _create(client, tenant, body)
    await _ready(client, tenant, location)
    h = {"NGSILD-Tenant": tenant}
    resp = await client.patch(location, json={"snapshotPriority": 2}, headers=h)
    assert resp.status == 200 and (await resp.json())["snapshotPriority"] == 2
    for fragment in ({"snapshotQueries": []}, {"snapshotStatus": "failed"}, {"colour": 1}):
        resp = await client.patch(location, json=fragment, headers=h)
        assert resp.status == 400, fragment

    resp = await client.post(
        f"{location}/clone", json={"type": "Snapshot", "snapshotPriority": 9}, headers=h
    )
    assert resp.status == 201, await resp.text()
    clone_location = resp.headers["Location"]
    clone = await _ready(client, tenant, clone_location)
    assert clone["snapshotStatus"] == "success" and clone["snapshotPriority"] == 9

    resp = await client.delete(f"{API}/snapshots?q=" + quote("speed>50"), headers=h)
    assert resp.status == 400 and (await resp.json())["type"] == ERR + "BadRequestData"
    resp = await client.delete(f"{API}/snapshots?q=" + quote("snapshotPriority<5"), headers=h)
    assert resp.status == 204
    assert (await client.get(location, headers=h)).status == 404
    found = await _scoped(client, tenant, clone["id"], "/entities?type=Vehicle")
    assert sorted(e["id"] for e in found) == [
        "urn:ngsi-ld:Vehicle:fast",
        "urn:ngsi-ld:Vehicle:slow",
    ]

    resp = await client.delete(clone_location, headers=h)
    assert resp.status == 204
    assert (await client.delete(clone_location, headers=h)).status == 404
    resp = await client.get(f"{API}/snapshots", headers=h)
    assert await resp.json() == []
