"""Linked Entity retrieval (§4.5.23), orderBy (§4.23) and expandValues (§4.9) over HTTP.

Entities use the core context only, so short names expand through its @vocab and come back
compacted the same way; each test module gets its own tenant.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient

API = "/ngsi-ld/v1"
Client = TestClient  # type: ignore[type-arg]


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


ENTITIES: list[dict[str, Any]] = [
    {
        "id": "urn:ngsi-ld:Building:b1",
        "type": "Building",
        "name": {"type": "Property", "value": "b"},
        "rank": {"type": "Property", "value": 5},
        "address": {"type": "Property", "value": {"city": "Amsterdam"}},
        "location": point(8.01, 40.01),
        "locatedAt": {"type": "Relationship", "object": "urn:ngsi-ld:City:c1"},
    },
    {
        "id": "urn:ngsi-ld:Building:b2",
        "type": "Building",
        "name": {"type": "Property", "value": "á"},
        "rank": {"type": "Property", "value": "abc"},
        "address": {"type": "Property", "value": {"city": "Zurich"}},
        "location": point(10, 45),
        "category": {"type": "VocabProperty", "vocab": "commercial"},
        "locatedAt": {"type": "Relationship", "object": "urn:ngsi-ld:City:c1"},
    },
    {
        "id": "urn:ngsi-ld:Building:b3",
        "type": "Building",
        "name": {"type": "Property", "value": "A"},
        "address": {"type": "Property", "value": {"city": "Berlin"}},
        "location": point(9, 41),
    },
    {
        "id": "urn:ngsi-ld:City:c1",
        "type": "City",
        "name": {"type": "Property", "value": "Paris"},
        "isIn": {"type": "Relationship", "object": "urn:ngsi-ld:Country:k1"},
    },
    {
        "id": "urn:ngsi-ld:Country:k1",
        "type": "Country",
        "name": {"type": "Property", "value": "France"},
        "capital": {"type": "Relationship", "object": "urn:ngsi-ld:City:c1"},  # a cycle
    },
]


@pytest.fixture(scope="module")
async def tenant(client: Client) -> AsyncIterator[str]:
    name = "test-linked-" + uuid.uuid4().hex[:8]
    resp = await client.post(
        f"{API}/entityOperations/create", json=ENTITIES, headers={"NGSILD-Tenant": name}
    )
    assert resp.status == 201, await resp.text()
    yield name


async def get(client: Client, tenant: str, path: str, status: int = 200) -> Any:
    resp = await client.get(f"{API}{path}", headers={"NGSILD-Tenant": tenant})
    assert resp.status == status, await resp.text()
    return await resp.json(content_type=None)


async def test_retrieve_inline_two_levels(client: Client, tenant: str) -> None:
    body = await get(client, tenant, "/entities/urn:ngsi-ld:Building:b1?join=inline&joinLevel=2")
    city = body["locatedAt"]["entity"]
    assert city["id"] == "urn:ngsi-ld:City:c1"
    country = city["isIn"]["entity"]
    assert country["name"]["value"] == "France"
    assert "entity" not in country["capital"]  # joinLevel 2 reached


async def test_retrieve_flat_and_simplified(client: Client, tenant: str) -> None:
    flat = await get(client, tenant, "/entities/urn:ngsi-ld:Building:b1?join=flat&joinLevel=5")
    assert [e["id"] for e in flat] == [
        "urn:ngsi-ld:Building:b1",
        "urn:ngsi-ld:City:c1",
        "urn:ngsi-ld:Country:k1",
    ]
    simple = await get(
        client, tenant, "/entities/urn:ngsi-ld:Building:b1?join=inline&options=keyValues"
    )
    assert simple["locatedAt"]["name"] == "Paris"
    alone = await get(client, tenant, "/entities/urn:ngsi-ld:Building:b3?join=flat")
    assert alone["id"] == "urn:ngsi-ld:Building:b3"  # nothing linked: a single object


async def test_nested_pick_and_omit(client: Client, tenant: str) -> None:
    pick = quote("id,locatedAt{id,name}")
    body = await get(
        client, tenant, f"/entities/urn:ngsi-ld:Building:b1?join=inline&joinLevel=2&pick={pick}"
    )
    assert body == {
        "id": "urn:ngsi-ld:Building:b1",
        "locatedAt": {
            "type": "Relationship",
            "object": "urn:ngsi-ld:City:c1",
            "entity": {"id": "urn:ngsi-ld:City:c1", "name": {"type": "Property", "value": "Paris"}},
        },
    }
    omit = quote("type,locatedAt{name}")
    flat = await get(client, tenant, f"/entities?type=Building&join=flat&omit={omit}")
    city = next(e for e in flat if e["id"] == "urn:ngsi-ld:City:c1")
    assert "name" not in city and city["type"] == "City"
    assert all("type" not in e for e in flat if "Building" in e["id"])
    assert [e["id"] for e in flat].count("urn:ngsi-ld:City:c1") == 1


@pytest.mark.parametrize(
    "query",
    [
        "pick=" + quote("locatedAt{name}"),
        "join=inline&pick=" + quote("locatedAt{isIn{name}}"),
        "join=flat&omit=" + quote("locatedAt{isIn{name}}"),
        "join=sideways",
        "join=flat&joinLevel=0",
    ],
)
async def test_bad_join_requests(client: Client, tenant: str, query: str) -> None:
    await get(client, tenant, f"/entities/urn:ngsi-ld:Building:b1?{query}", 400)
    await get(client, tenant, f"/entities?type=Building&{query}", 400)


async def test_query_inline_via_post(client: Client, tenant: str) -> None:
    resp = await client.post(
        f"{API}/entityOperations/query",
        json={"type": "Query", "entities": [{"type": "Building"}], "join": "inline"},
        headers={"NGSILD-Tenant": tenant},
    )
    assert resp.status == 200
    body = await resp.json()
    linked = {e["id"]: e.get("locatedAt", {}).get("entity", {}).get("id") for e in body}
    assert linked == {
        "urn:ngsi-ld:Building:b1": "urn:ngsi-ld:City:c1",
        "urn:ngsi-ld:Building:b2": "urn:ngsi-ld:City:c1",
        "urn:ngsi-ld:Building:b3": None,
    }


async def test_pick_leaving_nothing_drops_the_entity(client: Client, tenant: str) -> None:
    body = await get(client, tenant, "/entities?type=Building,City&pick=category")
    assert len(body) == 1 and "category" in body[0]


async def ordered(client: Client, tenant: str, params: str) -> list[str]:
    body = await get(client, tenant, f"/entities?type=Building&{params}")
    return [e["id"].rsplit(":", 1)[1] for e in body]


async def test_order_by_collation_types_and_subitems(client: Client, tenant: str) -> None:
    assert await ordered(client, tenant, "orderBy=name") == ["b3", "b1", "b2"]  # A b á
    assert await ordered(client, tenant, "orderBy=name&collation=und") == ["b3", "b2", "b1"]
    # numbers < strings < absent
    assert await ordered(client, tenant, "orderBy=rank") == ["b1", "b2", "b3"]
    assert await ordered(client, tenant, "orderBy=rank;desc") == ["b2", "b1", "b3"]
    assert await ordered(client, tenant, "orderBy=address[city];desc") == ["b2", "b3", "b1"]


async def test_order_by_distance(client: Client, tenant: str) -> None:
    near = "orderFrom=" + quote("[8,40]")
    assert await ordered(client, tenant, f"orderBy=location;dist-asc&{near}") == [
        "b1",
        "b3",
        "b2",
    ]
    assert await ordered(client, tenant, f"orderBy=location;dist-desc&{near}") == [
        "b2",
        "b3",
        "b1",
    ]
    resp = await client.post(
        f"{API}/entityOperations/query",
        json={
            "type": "Query",
            "entities": [{"type": "Building"}],
            "ordering": {"orderBy": ["location;dist-asc"], "coordinates": [10, 45]},
        },
        headers={"NGSILD-Tenant": tenant},
    )
    assert [e["id"][-2:] for e in await resp.json()] == ["b2", "b3", "b1"]


@pytest.mark.parametrize(
    "params",
    [
        "orderBy=name&collation=" + quote("!!nope"),
        "orderBy=name&collation=qqq",
        "orderBy=location;dist-asc",
        "orderBy=location;dist-asc&orderFrom=8,40",
        "orderBy=address[city",
    ],
)
async def test_bad_ordering(client: Client, tenant: str, params: str) -> None:
    await get(client, tenant, f"/entities?type=Building&{params}", 400)


async def test_expand_values(client: Client, tenant: str) -> None:
    q = quote("category==commercial")
    assert await get(client, tenant, f"/entities?type=Building&q={q}") == []
    found = await get(client, tenant, f"/entities?type=Building&q={q}&expandValues=category")
    assert [e["id"] for e in found] == ["urn:ngsi-ld:Building:b2"]
