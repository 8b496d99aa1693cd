"""Every NGSI-LD write path validates the RESULTING entity against the type's active schema:
refused with 400 BadRequestData listing JSON pointers, and nothing is written."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.integration.registry.helpers import (
    API,
    CTX,
    NS,
    SCHEMA_V1,
    SHELTER,
    Client,
    create,
    get_entity,
    hdr,
    pointers,
    problem,
    register,
    shelter,
)

EID = "urn:ngsi-ld:Shelter:1"


@pytest.fixture
async def stored(client: Client, tenant: str) -> dict[str, Any]:
    """A tenant with the Shelter schema active and one valid Shelter; returns its state."""
    await register(client, tenant, SCHEMA_V1)
    await create(client, tenant, shelter(1))
    return await get_entity(client, tenant, EID)  # type: ignore[no-any-return]


async def refused(resp: Any, expected: list[str]) -> dict[str, Any]:
    body = await problem(resp, 400, "BadRequestData")
    assert pointers(body) == expected, body
    assert all(v["message"] for v in body["violations"])
    assert "does not match the schema of Shelter (version 1)" in body["detail"]
    return body


async def test_create_is_validated(client: Client, tenant: str) -> None:
    await register(client, tenant, SCHEMA_V1)
    resp = await client.post(f"{API}/entities", json=shelter(2, capacity=-1), headers=hdr(tenant))
    body = await refused(resp, ["/capacity"])
    assert body["violations"][0]["keyword"] == "minimum"
    resp = await client.get(f"{API}/entities/urn:ngsi-ld:Shelter:2", headers=hdr(tenant))
    assert resp.status == 404


async def test_any_representation_and_context_is_projected(client: Client, tenant: str) -> None:
    await register(client, tenant, SCHEMA_V1)
    # concise, with a different @context that maps the same IRIs to other terms
    other = {"Refuge": SHELTER, "label": NS + "name", "places": NS + "capacity"}
    concise = {"id": "urn:ngsi-ld:Shelter:c", "type": "Refuge", "label": "x", "places": 3}
    resp = await client.post(
        f"{API}/entities",
        json={**concise, "@context": other},
        headers={"NGSILD-Tenant": tenant, "Content-Type": "application/ld+json"},
    )
    assert resp.status == 201, await resp.text()
    bad = {**concise, "id": "urn:ngsi-ld:Shelter:d", "places": "many", "@context": other}
    resp = await client.post(
        f"{API}/entities",
        json=bad,
        headers={"NGSILD-Tenant": tenant, "Content-Type": "application/ld+json"},
    )
    await refused(resp, ["/capacity"])  # pointers use the schema's terms, not the request's


async def test_values_and_common_refs(client: Client, tenant: str) -> None:
    """GSMA-Commons (a $ref into the bundled Smart Data Models common schema) checks
    dateCreated as date-time; an NGSI-LD DateTime value object counts as its plain value."""
    await register(client, tenant, SCHEMA_V1)
    date_created = "https://smartdatamodels.org/dateCreated"
    ok = {
        date_created: {
            "type": "Property",
            "value": {"@type": "DateTime", "@value": "2026-11-26T10:00:00Z"},
        }
    }
    await create(client, tenant, shelter(3, **ok))
    bad = {date_created: {"type": "Property", "value": "yesterday"}}
    resp = await client.post(f"{API}/entities", json=shelter(4, **bad), headers=hdr(tenant))
    await refused(resp, ["/dateCreated"])


async def test_replace_is_validated(client: Client, tenant: str, stored: dict[str, Any]) -> None:
    body = shelter(1)
    del body[NS + "name"]
    resp = await client.put(f"{API}/entities/{EID}", json=body, headers=hdr(tenant))
    await refused(resp, ["/name"])
    assert await get_entity(client, tenant, EID) == stored


@pytest.mark.parametrize(
    ("method", "path", "payload", "expected"),
    [
        ("POST", "/attrs", {"capacity": {"type": "Property", "value": "many"}}, ["/capacity"]),
        ("PATCH", "/attrs", {"capacity": {"type": "Property", "value": -3}}, ["/capacity"]),
        ("PATCH", "/attrs/capacity", {"value": -5}, ["/capacity"]),
        ("PUT", "/attrs/capacity", {"type": "Property", "value": 1.5}, ["/capacity"]),
        ("PATCH", "", {"name": "urn:ngsi-ld:null", "capacity": -1}, ["/capacity", "/name"]),
        ("DELETE", "/attrs/" + quote(NS + "name", safe=""), None, ["/name"]),
    ],
    ids=["append", "update", "partial-update", "replace-attribute", "merge", "delete-attribute"],
)
async def test_modifications_are_validated(
    client: Client,
    tenant: str,
    stored: dict[str, Any],
    method: str,
    path: str,
    payload: Any,
    expected: list[str],
) -> None:
    headers = {"NGSILD-Tenant": tenant}
    kwargs: dict[str, Any] = {"headers": headers}
    if payload is not None:  # terms from the schema's own context, inline
        headers["Content-Type"] = "application/ld+json"
        kwargs["json"] = {**payload, "@context": CTX}
    resp = await client.request(method, f"{API}/entities/{EID}{path}", **kwargs)
    await refused(resp, expected)
    assert await get_entity(client, tenant, EID) == stored


async def test_valid_modification_passes(
    client: Client, tenant: str, stored: dict[str, Any]
) -> None:
    resp = await client.patch(
        f"{API}/entities/{EID}/attrs/capacity",
        json={"value": 80, "@context": CTX},
        headers={"NGSILD-Tenant": tenant, "Content-Type": "application/ld+json"},
    )
    assert resp.status == 204, await resp.text()
    assert (await get_entity(client, tenant, EID))[NS + "capacity"]["value"] == 80


def _fragment(eid: str, **attrs: object) -> dict[str, object]:
    return {"id": eid, **{NS + k: v for k, v in attrs.items()}}


NINE = "urn:ngsi-ld:Shelter:9"
_BATCHES = {
    "create": [shelter(7), shelter(8, capacity=-1)],
    "upsert": [shelter(1, capacity=9), shelter(8, capacity=-1)],
    "update": [
        _fragment(EID, capacity={"type": "Property", "value": 9}),
        _fragment(NINE, capacity={"type": "Property", "value": -1}),
    ],
    "merge": [
        _fragment(EID, capacity={"type": "Property", "value": 9}),
        _fragment(NINE, name="urn:ngsi-ld:null"),
    ],
}


@pytest.mark.parametrize(("operation", "bodies"), list(_BATCHES.items()), ids=list(_BATCHES))
async def test_batches_are_validated_per_entity(
    client: Client, tenant: str, stored: dict[str, Any], operation: str, bodies: list[Any]
) -> None:
    await create(client, tenant, shelter(9))
    before = await get_entity(client, tenant, "urn:ngsi-ld:Shelter:9")
    resp = await client.post(
        f"{API}/entityOperations/{operation}", json=bodies, headers=hdr(tenant)
    )
    body = await resp.json(content_type=None)
    assert resp.status == 207, body
    (error,) = body["errors"]
    assert error["error"]["type"].endswith("BadRequestData")
    assert error["error"]["violations"][0]["pointer"] in ("/capacity", "/name")
    assert len(body["success"]) == 1
    bad_id = error["entityId"]
    if bad_id == NINE:
        assert await get_entity(client, tenant, bad_id) == before
    else:
        resp = await client.get(f"{API}/entities/{bad_id}", headers=hdr(tenant))
        assert resp.status == 404


async def test_types_without_active_schema_are_not_validated(client: Client, tenant: str) -> None:
    await create(client, tenant, shelter(1, capacity="many"))  # no schema registered
    await register(client, tenant, SCHEMA_V1, activate=False)
    await create(client, tenant, shelter(2, capacity="many"))  # registered, not active
