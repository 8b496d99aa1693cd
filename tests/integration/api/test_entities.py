"""Entity operations (§5.6) over real HTTP against PostgreSQL/PostGIS, one tenant per test."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

API = "/ngsi-ld/v1"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
CTX = {"ex": "https://example.org/ns#", "capacity": "ex:capacity", "Shelter": "ex:Shelter"}
ERR = "https://uri.etsi.org/ngsi-ld/errors/"

Client = TestClient  # type: ignore[type-arg]


def hdr(tenant: str, **extra: str) -> dict[str, str]:
    return {"NGSILD-Tenant": tenant, "Content-Type": "application/json", **extra}


def shelter(n: int = 1, **attrs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"urn:ngsi-ld:Shelter:{n}",
        "type": "Shelter",
        "name": {"type": "Property", "value": "嘉瀬小学校"},
        "capacity": {"type": "Property", "value": 200, "unitCode": "C62"},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [130.257802, 33.240969]},
        },
    }
    body.update(attrs)
    return body


async def create(client: Client, tenant: str, body: dict[str, Any]) -> None:
    resp = await client.post(f"{API}/entities", json=body, headers=hdr(tenant))
    assert resp.status == 201, await resp.text()


async def get(client: Client, tenant: str, eid: str, query: str = "", **headers: str) -> Any:
    resp = await client.get(
        f"{API}/entities/{eid}{query}", headers={"NGSILD-Tenant": tenant, **headers}
    )
    assert resp.status == 200, await resp.text()
    return await resp.json(content_type=None)


async def problem(resp: Any, status: int, kind: str) -> dict[str, Any]:
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    assert body["type"] == ERR + kind
    assert body["detail"]
    return body  # type: ignore[no-any-return]


async def test_create_retrieve_normalized(client: Client, tenant: str) -> None:
    resp = await client.post(f"{API}/entities", json=shelter(), headers=hdr(tenant))
    assert resp.status == 201
    assert resp.headers["Location"] == f"{API}/entities/urn:ngsi-ld:Shelter:1"
    body = await get(client, tenant, "urn:ngsi-ld:Shelter:1")
    assert body == {
        "id": "urn:ngsi-ld:Shelter:1",
        "type": "Shelter",
        "name": {"type": "Property", "value": "嘉瀬小学校"},
        "capacity": {"type": "Property", "value": 200, "unitCode": "C62"},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [130.257802, 33.240969]},
        },
    }


async def test_create_twice_is_conflict(client: Client, tenant: str) -> None:
    await create(client, tenant, shelter())
    resp = await client.post(f"{API}/entities", json=shelter(), headers=hdr(tenant))
    await problem(resp, 409, "AlreadyExists")


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"id": "not a uri", "type": "T"}, "BadRequestData"),
        ({"type": "T"}, "BadRequestData"),
        ({"id": "urn:a:1"}, "BadRequestData"),
        ({"id": "urn:a:1", "type": "T", "a": None}, "BadRequestData"),
        ({"id": "urn:a:1", "type": "T", "a": {"type": "Property"}}, "BadRequestData"),
        ({"id": "urn:a:1", "type": "T", "a": {"type": "Blah", "value": 1}}, "BadRequestData"),
        (
            {"id": "urn:a:1", "type": "T", "a": {"type": "Relationship", "object": "x y"}},
            "BadRequestData",
        ),
        (
            {
                "id": "urn:a:1",
                "type": "T",
                "location": {
                    "type": "GeoProperty",
                    "value": {"type": "Point", "coordinates": [500, 1]},
                },
            },
            "BadRequestData",
        ),
        (
            {
                "id": "urn:a:1",
                "type": "T",
                "a": {"type": "Property", "value": 1, "observedAt": "yesterday"},
            },
            "BadRequestData",
        ),
        ({"id": "urn:a:1", "type": "T", "a(b)": 1}, "BadRequestData"),
        ({"id": "urn:a:1", "type": "T<b>"}, "BadRequestData"),
        (
            {"id": "urn:a:1", "type": "T", "a": {"type": "LanguageProperty", "languageMap": 3}},
            "BadRequestData",
        ),
        (
            {
                "id": "urn:a:1",
                "type": "T",
                "a": [{"type": "Property", "value": 1}, {"type": "Property", "value": 2}],
            },
            "BadRequestData",
        ),
        ([1, 2], "InvalidRequest"),
    ],
)
async def test_create_rejects_bad_input_without_writing(
    client: Client, tenant: str, body: Any, kind: str
) -> None:
    resp = await client.post(f"{API}/entities", json=body, headers=hdr(tenant))
    await problem(resp, 400, kind)
    resp = await client.get(f"{API}/entities/urn:a:1", headers={"NGSILD-Tenant": tenant})
    assert resp.status == 404


async def test_malformed_json_and_media_types(client: Client, tenant: str) -> None:
    resp = await client.post(f"{API}/entities", data=b'{"id": ', headers=hdr(tenant))
    await problem(resp, 400, "InvalidRequest")
    resp = await client.post(
        f"{API}/entities", data=b"{}", headers={**hdr(tenant), "Content-Type": "text/plain"}
    )
    await problem(resp, 415, "UnsupportedMediaType")
    body = {**shelter(), "@context": CORE}
    resp = await client.post(f"{API}/entities", json=body, headers=hdr(tenant))
    await problem(resp, 400, "BadRequestData")
    ld = {**hdr(tenant), "Content-Type": "application/ld+json"}
    resp = await client.post(f"{API}/entities", json=shelter(), headers=ld)
    await problem(resp, 400, "BadRequestData")
    big = shelter(description={"type": "Property", "value": "x" * (3 * 1024 * 1024)})
    resp = await client.post(f"{API}/entities", json=big, headers=hdr(tenant))
    await problem(resp, 413, "PayloadTooLarge")
    resp = await client.get(
        f"{API}/entities/urn:ngsi-ld:Shelter:1",
        headers={"NGSILD-Tenant": tenant, "Accept": "text/html"},
    )
    assert resp.status in (404, 406)


async def test_inline_context_expands_and_compacts(client: Client, tenant: str) -> None:
    ld = {**hdr(tenant), "Content-Type": "application/ld+json"}
    body = {**shelter(), "@context": [CTX, CORE]}
    resp = await client.post(f"{API}/entities", json=body, headers=ld)
    assert resp.status == 201, await resp.text()
    # Without the context the names come back as full IRIs.
    plain = await get(client, tenant, "urn:ngsi-ld:Shelter:1")
    assert plain["type"] == "https://example.org/ns#Shelter"
    assert "https://example.org/ns#capacity" in plain
    # With it (inline, JSON-LD) they are compacted again and @context is returned.
    resp = await client.get(
        f"{API}/entities/urn:ngsi-ld:Shelter:1",
        headers={"NGSILD-Tenant": tenant, "Accept": "application/ld+json"},
    )
    assert resp.headers["Content-Type"].startswith("application/ld+json")
    assert (await resp.json(content_type=None))["@context"] == CORE


async def test_every_attribute_type_round_trips(client: Client, tenant: str) -> None:
    attrs = {
        "rel": {"type": "Relationship", "object": "urn:ngsi-ld:Building:9"},
        "label": {"type": "LanguageProperty", "languageMap": {"ja": "避難所", "en": "Shelter"}},
        "category": {"type": "VocabProperty", "vocab": "school"},
        "raw": {"type": "JsonProperty", "json": {"any": ["thing", 1]}},
        "levels": {"type": "ListProperty", "valueList": [1, 2, 3]},
        "near": {"type": "ListRelationship", "objectList": [{"object": "urn:x:1"}]},
        "temp": [
            {"type": "Property", "value": 20, "observedAt": "2026-11-26T10:00:00Z"},
            {
                "type": "Property",
                "value": 21,
                "datasetId": "urn:ngsi-ld:Dataset:b",
                "accuracy": {"type": "Property", "value": 0.5},
            },
        ],
    }
    await create(client, tenant, shelter(**attrs))
    body = await get(client, tenant, "urn:ngsi-ld:Shelter:1")
    for name, value in attrs.items():
        assert body[name] == value, name


async def test_representations(client: Client, tenant: str) -> None:
    await create(
        client,
        tenant,
        shelter(
            label={"type": "LanguageProperty", "languageMap": {"ja": "避難所", "en": "Shelter"}}
        ),
    )
    eid = "urn:ngsi-ld:Shelter:1"
    kv = await get(client, tenant, eid, "?options=keyValues")
    assert kv["capacity"] == 200 and kv["location"]["type"] == "Point"
    assert kv == await get(client, tenant, eid, "?format=simplified")
    concise = await get(client, tenant, eid, "?options=concise")
    assert concise["name"] == "嘉瀬小学校"
    assert concise["capacity"] == {"value": 200, "unitCode": "C62"}
    sys = await get(client, tenant, eid, "?options=sysAttrs")
    assert "createdAt" in sys and "modifiedAt" in sys["capacity"]
    picked = await get(client, tenant, eid, "?pick=id,capacity")
    assert set(picked) == {"id", "capacity"}
    omitted = await get(client, tenant, eid, "?omit=location,type")
    assert "location" not in omitted and "type" not in omitted and "name" in omitted
    only = await get(client, tenant, eid, "?attrs=name")
    assert set(only) == {"id", "type", "name"}
    lang = await get(client, tenant, eid, "?lang=en")
    assert lang["label"] == {"type": "Property", "value": "Shelter", "lang": "en"}
    geo = await get(client, tenant, eid, "?options=keyValues", Accept="application/geo+json")
    assert geo["type"] == "Feature"
    assert geo["geometry"] == {"type": "Point", "coordinates": [130.257802, 33.240969]}
    assert geo["properties"]["capacity"] == 200


async def test_attribute_operations(client: Client, tenant: str) -> None:
    eid = "urn:ngsi-ld:Shelter:1"
    await create(client, tenant, shelter())
    url = f"{API}/entities/{eid}/attrs"
    # append with noOverwrite: existing attribute is reported, new one is added
    resp = await client.post(
        url + "?options=noOverwrite",
        json={
            "capacity": {"type": "Property", "value": 1},
            "open": {"type": "Property", "value": True},
        },
        headers=hdr(tenant),
    )
    assert resp.status == 207
    report = await resp.json()
    assert report["updated"] == ["open"]
    assert report["notUpdated"][0]["attributeName"] == "capacity"
    # update attributes: replaces what exists, adds the rest (ETSI 011_01_03); deleting an
    # attribute that is not there is reported
    resp = await client.patch(
        url,
        json={
            "capacity": {"type": "Property", "value": 300, "unitCode": "C62"},
            "extra": 1,
            "nope": "urn:ngsi-ld:null",
        },
        headers=hdr(tenant),
    )
    assert resp.status == 207
    report = await resp.json()
    assert sorted(report["updated"]) == ["capacity", "extra"]
    assert report["notUpdated"][0]["attributeName"] == "nope"
    # partial attribute update keeps the other members
    resp = await client.patch(url + "/capacity", json={"value": 250}, headers=hdr(tenant))
    assert resp.status == 204
    body = await get(client, tenant, eid)
    assert body["capacity"] == {"type": "Property", "value": 250, "unitCode": "C62"}
    assert body["open"]["value"] is True
    # replace attribute
    resp = await client.put(
        url + "/capacity", json={"type": "Property", "value": 10}, headers=hdr(tenant)
    )
    assert resp.status == 204
    assert (await get(client, tenant, eid))["capacity"] == {"type": "Property", "value": 10}
    # missing attribute → 404
    resp = await client.patch(url + "/missing", json={"value": 1}, headers=hdr(tenant))
    await problem(resp, 404, "ResourceNotFound")
    # delete attribute
    resp = await client.delete(url + "/open", headers={"NGSILD-Tenant": tenant})
    assert resp.status == 204
    assert "open" not in await get(client, tenant, eid)
    resp = await client.delete(url + "/open", headers={"NGSILD-Tenant": tenant})
    await problem(resp, 404, "ResourceNotFound")


async def test_multi_attribute_delete_by_dataset(client: Client, tenant: str) -> None:
    eid = "urn:ngsi-ld:Shelter:1"
    temp = [
        {"type": "Property", "value": 1},
        {"type": "Property", "value": 2, "datasetId": "urn:ds:2"},
        {"type": "Property", "value": 3, "datasetId": "urn:ds:3"},
    ]
    await create(client, tenant, shelter(temp=temp))
    url = f"{API}/entities/{eid}/attrs/temp"
    t = {"NGSILD-Tenant": tenant}
    assert (await client.delete(url + "?datasetId=urn:ds:2", headers=t)).status == 204
    assert [i.get("value") for i in (await get(client, tenant, eid))["temp"]] == [1, 3]
    assert (await client.delete(url + "?deleteAll=true", headers=t)).status == 204
    assert "temp" not in await get(client, tenant, eid)


async def test_replace_merge_delete(client: Client, tenant: str) -> None:
    eid = "urn:ngsi-ld:Shelter:1"
    await create(client, tenant, shelter())
    resp = await client.put(
        f"{API}/entities/{eid}",
        json={"type": "Shelter", "capacity": {"type": "Property", "value": 5}},
        headers=hdr(tenant),
    )
    assert resp.status == 204
    assert set(await get(client, tenant, eid)) == {"id", "type", "capacity"}
    resp = await client.patch(
        f"{API}/entities/{eid}",
        json={
            "capacity": {"type": "Property", "value": 6},
            "name": "new",
            "ghost": "urn:ngsi-ld:null",
        },
        headers={**hdr(tenant), "Content-Type": "application/merge-patch+json"},
    )
    assert resp.status == 204
    body = await get(client, tenant, eid)
    assert body["capacity"]["value"] == 6 and body["name"]["value"] == "new"
    resp = await client.patch(
        f"{API}/entities/{eid}", json={"name": "urn:ngsi-ld:null"}, headers=hdr(tenant)
    )
    assert resp.status == 204
    assert "name" not in await get(client, tenant, eid)
    resp = await client.delete(f"{API}/entities/{eid}", headers={"NGSILD-Tenant": tenant})
    assert resp.status == 204
    resp = await client.delete(f"{API}/entities/{eid}", headers={"NGSILD-Tenant": tenant})
    await problem(resp, 404, "ResourceNotFound")


async def test_tenants_are_isolated(client: Client, tenant: str) -> None:
    other = tenant + "-b"
    await create(client, tenant, shelter())
    await create(client, other, shelter(capacity={"type": "Property", "value": 1}))
    assert (await get(client, tenant, "urn:ngsi-ld:Shelter:1"))["capacity"]["value"] == 200
    assert (await get(client, other, "urn:ngsi-ld:Shelter:1"))["capacity"]["value"] == 1
    resp = await client.get(
        f"{API}/entities/urn:ngsi-ld:Shelter:1", headers={"NGSILD-Tenant": tenant + "-none"}
    )
    await problem(resp, 404, "NonexistentTenant")


async def test_transient_entity_expires(client: Client, tenant: str) -> None:
    # Long enough for the two reads below on a loaded machine (1 s was not: they saw a 404).
    expires = (datetime.now(UTC) + timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
    await create(client, tenant, shelter(expiresAt=expires))
    assert "expiresAt" not in await get(client, tenant, "urn:ngsi-ld:Shelter:1")
    body = await get(client, tenant, "urn:ngsi-ld:Shelter:1", "?options=sysAttrs")
    assert body["expiresAt"] == expires
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        resp = await client.get(
            f"{API}/entities/urn:ngsi-ld:Shelter:1", headers={"NGSILD-Tenant": tenant}
        )
        if resp.status == 404:
            break
        await asyncio.sleep(0.1)
    assert resp.status == 404


async def test_batch_operations(client: Client, tenant: str) -> None:
    ops = f"{API}/entityOperations"
    resp = await client.post(
        ops + "/create",
        json=[shelter(1), shelter(2), {"id": "bad", "type": "T"}],
        headers=hdr(tenant),
    )
    assert resp.status == 207
    result = await resp.json()
    assert result["success"] == ["urn:ngsi-ld:Shelter:1", "urn:ngsi-ld:Shelter:2"]
    assert result["errors"][0]["error"]["type"] == ERR + "BadRequestData"
    resp = await client.post(ops + "/create", json=[shelter(3)], headers=hdr(tenant))
    assert resp.status == 201
    assert await resp.json() == ["urn:ngsi-ld:Shelter:3"]
    # upsert: one new (201 lists it), one replaced
    resp = await client.post(
        ops + "/upsert", json=[shelter(3, capacity=1), shelter(4)], headers=hdr(tenant)
    )
    assert resp.status == 201
    assert await resp.json() == ["urn:ngsi-ld:Shelter:4"]
    resp = await client.post(
        ops + "/upsert?options=update",
        json=[{"id": "urn:ngsi-ld:Shelter:4", "type": "Shelter", "extra": 1}],
        headers=hdr(tenant),
    )
    assert resp.status == 204
    body = await get(client, tenant, "urn:ngsi-ld:Shelter:4")
    assert body["extra"]["value"] == 1 and body["capacity"]["value"] == 200
    resp = await client.post(
        ops + "/update",
        json=[
            {"id": "urn:ngsi-ld:Shelter:1", "capacity": 7},
            {"id": "urn:ngsi-ld:Shelter:99", "capacity": 7},
        ],
        headers=hdr(tenant),
    )
    assert resp.status == 207
    assert (await resp.json())["errors"][0]["entityId"] == "urn:ngsi-ld:Shelter:99"
    resp = await client.post(
        ops + "/merge",
        json=[{"id": "urn:ngsi-ld:Shelter:2", "capacity": 8}],
        headers=hdr(tenant),
    )
    assert resp.status == 204
    assert (await get(client, tenant, "urn:ngsi-ld:Shelter:2"))["capacity"] == {
        "type": "Property",
        "value": 8,
        "unitCode": "C62",
    }
    resp = await client.post(
        ops + "/delete",
        json=["urn:ngsi-ld:Shelter:1", "urn:ngsi-ld:Shelter:2"],
        headers=hdr(tenant),
    )
    assert resp.status == 204
    resp = await client.post(ops + "/delete", json=["urn:ngsi-ld:Shelter:1"], headers=hdr(tenant))
    assert resp.status == 207
    resp = await client.post(ops + "/create", json={"id": "x"}, headers=hdr(tenant))
    await problem(resp, 400, "BadRequestData")
