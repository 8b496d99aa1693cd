"""Access control on entity CRUD (phase 2): read needs read (else 404, ids don't leak), changes
need write on the stored entity (404 if unreadable, 403 if only readable) and on the new facts
when types or scopes change; create needs write on the new entity's types/scopes and gives the
creator ``own``; public open data is served without a token; a writer of another tenant gets
nothing."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.integration.auth.conftest import as_user
from tests.integration.auth.issuer import LocalIssuer

Client = TestClient  # type: ignore[type-arg]
ENTITIES = "/ngsi-ld/v1/entities"
PERMISSIONS = "/cityos/v1/permissions"
NOT_FOUND = "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"
DENIED = "https://uri.etsi.org/ngsi-ld/errors/AccessDenied"


def shelter(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Shelter:e{n}",
        "type": "Shelter",
        "name": {"type": "Property", "value": f"shelter {n}"},
        **extra,
    }


async def grant(client: Client, admin: dict[str, str], body: dict[str, Any]) -> None:
    resp = await client.post(PERMISSIONS, json=body, headers=admin)
    assert resp.status == 201, await resp.json()


async def status_and_type(resp: Any) -> tuple[int, str | None]:
    if resp.status in (201, 204):
        return resp.status, None
    body = await resp.json()
    return resp.status, body.get("type") if isinstance(body, dict) else None


async def test_roles_on_crud(secured: Client, issuer: LocalIssuer, tenant: str) -> None:
    admin = as_user(issuer, tenant, "admin")
    writer = as_user(issuer, tenant, "writer")
    reader = as_user(issuer, tenant, "reader")
    outsider = as_user(issuer, "other-" + tenant, "writer") | {"NGSILD-Tenant": tenant}
    anonymous = {"NGSILD-Tenant": tenant}
    assert (await secured.post(ENTITIES, json=shelter(1), headers=admin)).status == 201
    one = f"{ENTITIES}/urn:ngsi-ld:Shelter:e1"
    assert (await secured.get(one, headers=reader)).status == 200
    assert await status_and_type(await secured.get(one, headers=outsider)) == (404, NOT_FOUND)
    assert await status_and_type(await secured.get(one, headers=anonymous)) == (404, NOT_FOUND)
    patch = {"name": {"type": "Property", "value": "renamed"}}
    assert await status_and_type(
        await secured.patch(f"{one}/attrs", json=patch, headers=reader)
    ) == (403, DENIED)
    assert await status_and_type(
        await secured.patch(f"{one}/attrs", json=patch, headers=outsider)
    ) == (404, NOT_FOUND)
    assert (await secured.patch(f"{one}/attrs", json=patch, headers=writer)).status == 204
    assert await status_and_type(await secured.delete(one, headers=reader)) == (403, DENIED)
    assert await status_and_type(await secured.post(ENTITIES, json=shelter(2), headers=reader)) == (
        403,
        DENIED,
    )
    assert await status_and_type(
        await secured.post(ENTITIES, json=shelter(3), headers=outsider)
    ) == (403, DENIED)
    assert (await secured.delete(one, headers=writer)).status == 204
    stored = await secured.get(f"{ENTITIES}/urn:ngsi-ld:Shelter:e1", headers=admin)
    assert stored.status == 404


async def test_permissions_and_ownership(secured: Client, issuer: LocalIssuer, tenant: str) -> None:
    admin = as_user(issuer, tenant, "admin")
    volunteer = as_user(issuer, tenant, sub="volunteer")
    stranger = as_user(issuer, tenant, sub="stranger")
    await grant(
        secured,
        admin,
        {
            "assignee": {"kind": "subject", "value": "volunteer", "issuer": issuer.url},
            "action": "write",
            "target": {"types": ["Shelter"], "scopes": ["/Saga/#"]},
        },
    )
    # writing outside the granted scope, or another type, is refused
    outside = shelter(10, scope="/Fukuoka")
    resp = await secured.post(ENTITIES, json=outside, headers=volunteer)
    assert await status_and_type(resp) == (403, DENIED)
    other = {"id": "urn:ngsi-ld:AED:e11", "type": "AED", "scope": "/Saga"}
    assert await status_and_type(await secured.post(ENTITIES, json=other, headers=volunteer)) == (
        403,
        DENIED,
    )
    # inside it: created, and the creator owns it (may share it with the stranger)
    inside = shelter(12, scope="/Saga/Kase")
    assert (await secured.post(ENTITIES, json=inside, headers=volunteer)).status == 201
    one = f"{ENTITIES}/urn:ngsi-ld:Shelter:e12"
    assert (await secured.get(one, headers=volunteer)).status == 200
    assert (await secured.get(one, headers=stranger)).status == 404
    share = {
        "assignee": {"kind": "subject", "value": "stranger", "issuer": issuer.url},
        "action": "read",
        "target": {"entity": "urn:ngsi-ld:Shelter:e12"},
    }
    assert (await secured.post(PERMISSIONS, json=share, headers=volunteer)).status == 201
    assert (await secured.get(one, headers=stranger)).status == 200
    patch = {"name": {"type": "Property", "value": "x"}}
    resp = await secured.patch(f"{one}/attrs", json=patch, headers=stranger)
    assert await status_and_type(resp) == (403, DENIED)
    # moving the entity out of the granted scope is a create on the new facts: refused
    resp = await secured.patch(f"{one}/attrs", json={"scope": "/Fukuoka"}, headers=volunteer)
    assert await status_and_type(resp) == (403, DENIED)
    resp = await secured.post(f"{one}/attrs", json={"scope": "/Saga/Ogi"}, headers=volunteer)
    assert resp.status in (204, 207)
    assert (await secured.delete(one, headers=volunteer)).status == 204


async def test_public_open_data(secured: Client, issuer: LocalIssuer, tenant: str) -> None:
    admin = as_user(issuer, tenant, "admin")
    await grant(
        secured,
        admin,
        {"assignee": {"kind": "public"}, "action": "read", "target": {"types": ["AED"]}},
    )
    aed = {"id": "urn:ngsi-ld:AED:p1", "type": "AED"}
    assert (await secured.post(ENTITIES, json=aed, headers=admin)).status == 201
    assert (await secured.post(ENTITIES, json=shelter(20), headers=admin)).status == 201
    anonymous = {"NGSILD-Tenant": tenant}
    assert (await secured.get(f"{ENTITIES}/urn:ngsi-ld:AED:p1", headers=anonymous)).status == 200
    hidden = await secured.get(f"{ENTITIES}/urn:ngsi-ld:Shelter:e20", headers=anonymous)
    assert hidden.status == 404
    resp = await secured.delete(f"{ENTITIES}/urn:ngsi-ld:AED:p1", headers=anonymous)
    assert await status_and_type(resp) == (403, DENIED)


async def test_batch_per_entity(secured: Client, issuer: LocalIssuer, tenant: str) -> None:
    admin = as_user(issuer, tenant, "admin", sub="admin")
    volunteer = as_user(issuer, tenant, sub="volunteer")
    for action, kind in (("write", "Shelter"), ("read", "AED")):
        await grant(
            secured,
            admin,
            {
                "assignee": {"kind": "subject", "value": "volunteer", "issuer": issuer.url},
                "action": action,
                "target": {"types": [kind]},
            },
        )
    hidden = {"id": "urn:ngsi-ld:Hydrant:b0", "type": "Hydrant"}
    aed = {"id": "urn:ngsi-ld:AED:b1", "type": "AED"}
    ops = "/ngsi-ld/v1/entityOperations"
    resp = await secured.post(f"{ops}/create", json=[hidden, aed], headers=admin)
    assert resp.status == 201
    mine = shelter(30)
    resp = await secured.post(
        f"{ops}/create", json=[mine, {"id": "urn:ngsi-ld:AED:b2", "type": "AED"}], headers=volunteer
    )
    body = await resp.json()
    assert resp.status == 207, body
    assert body["success"] == [mine["id"]]
    assert [(e["entityId"], e["error"]["status"]) for e in body["errors"]] == [
        ("urn:ngsi-ld:AED:b2", 403)
    ]
    name = {"type": "Property", "value": "n"}
    updates = [{**e, "name": name} for e in (mine, hidden, aed)]
    for op in ("update", "upsert", "merge"):
        resp = await secured.post(f"{ops}/{op}", json=updates, headers=volunteer)
        body = await resp.json()
        assert resp.status == 207, (op, body)
        assert body["success"] == [mine["id"]], op
        assert sorted((e["entityId"], e["error"]["status"]) for e in body["errors"]) == [
            ("urn:ngsi-ld:AED:b1", 403),
            ("urn:ngsi-ld:Hydrant:b0", 404),
        ], op
    ids = [mine["id"], hidden["id"], aed["id"]]
    resp = await secured.post(f"{ops}/delete", json=ids, headers=volunteer)
    body = await resp.json()
    assert resp.status == 207, body
    assert body["success"] == [mine["id"]]
    assert sorted((e["entityId"], e["error"]["status"]) for e in body["errors"]) == [
        ("urn:ngsi-ld:AED:b1", 403),
        ("urn:ngsi-ld:Hydrant:b0", 404),
    ]
    # the others are untouched
    assert (await secured.get(f"{ENTITIES}/{hidden['id']}", headers=admin)).status == 200
    got = await (await secured.get(f"{ENTITIES}/{aed['id']}", headers=admin)).json()
    assert "name" not in got
    # a writer of another tenant gets nothing by batch either
    outsider = as_user(issuer, "other-" + tenant, "writer") | {"NGSILD-Tenant": tenant}
    resp = await secured.post(f"{ops}/delete", json=[hidden["id"]], headers=outsider)
    body = await resp.json()
    assert [e["error"]["status"] for e in body["errors"]] == [404]


async def test_linked_entities_only_readable(
    secured: Client, issuer: LocalIssuer, tenant: str
) -> None:
    admin = as_user(issuer, tenant, "admin")
    await grant(
        secured,
        admin,
        {"assignee": {"kind": "public"}, "action": "read", "target": {"types": ["AED"]}},
    )
    hidden = {"id": "urn:ngsi-ld:Building:l1", "type": "Building"}
    aed = {
        "id": "urn:ngsi-ld:AED:l2",
        "type": "AED",
        "inBuilding": {"type": "Relationship", "object": hidden["id"]},
    }
    for body in (hidden, aed):
        assert (await secured.post(ENTITIES, json=body, headers=admin)).status == 201
    one = f"{ENTITIES}/{aed['id']}"
    params = {"join": "inline", "joinLevel": "1"}
    staff = await (await secured.get(one, params=params, headers=admin)).json()
    assert staff["inBuilding"]["entity"]["id"] == hidden["id"]
    anonymous = await secured.get(one, params=params, headers={"NGSILD-Tenant": tenant})
    body = await anonymous.json()
    assert anonymous.status == 200, body
    assert "entity" not in body["inBuilding"]
