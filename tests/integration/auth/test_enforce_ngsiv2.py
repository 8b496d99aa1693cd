"""Access control on the NGSIv2 face (#10): decided per entity exactly like the NGSI-LD API.

An entity the caller may not read is 404 (as if absent), one it may read but not change is
403; lists, ``Fiware-Total-Count`` and ``/v2/types`` only count readable entities (the
readable scope is in the SQL); ``/v2/op/update`` decides each entity; v2 subscriptions belong to
their creator; the tenant is ``Fiware-Service`` — an ``NGSILD-Tenant`` header on a v2 request
decides nothing. Tokens come from the local OIDC issuer the tests start.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.integration.auth.conftest import as_user
from tests.integration.auth.issuer import LocalIssuer

Client = TestClient  # type: ignore[type-arg]
V2 = "/v2/entities"


def v2_user(issuer: LocalIssuer, tenant: str, *roles: str, **claims: object) -> dict[str, str]:
    """A staff user's headers on the v2 face (``Fiware-Service`` names the tenant)."""
    headers = as_user(issuer, tenant, *roles, **claims)
    del headers["NGSILD-Tenant"]
    return headers | {"Fiware-Service": tenant}


def shelter(n: int, capacity: int = 10) -> dict[str, Any]:
    return {"id": f"Shelter{n}", "type": "Shelter", "capacity": {"value": capacity}}


async def error(resp: Any) -> tuple[int, str | None]:
    if resp.status in (200, 201, 204):
        return resp.status, None
    return resp.status, (await resp.json())["error"]


async def grant(client: Client, admin: dict[str, str], body: dict[str, Any]) -> None:
    resp = await client.post("/cityos/v1/permissions", json=body, headers=admin)
    assert resp.status == 201, await resp.text()


def to_subject(issuer: LocalIssuer, sub: str, action: str, target: Any) -> dict[str, Any]:
    return {
        "assignee": {"kind": "subject", "value": sub, "issuer": issuer.url},
        "action": action,
        "target": target,
    }


def ld_admin(issuer: LocalIssuer, tenant: str) -> dict[str, str]:
    return as_user(issuer, tenant, "admin", sub="admin")


async def test_roles_per_entity(secured: Client, issuer: LocalIssuer, tenant: str) -> None:
    admin = v2_user(issuer, tenant, "admin", sub="admin")
    writer = v2_user(issuer, tenant, "writer", sub="writer")
    reader = v2_user(issuer, tenant, "reader", sub="reader")
    outsider = v2_user(issuer, "other-" + tenant, "admin", sub="x") | {"Fiware-Service": tenant}
    anonymous = {"Fiware-Service": tenant}
    assert (await secured.post(V2, json=shelter(1), headers=admin)).status == 201
    one = f"{V2}/Shelter1"
    assert (await secured.get(one, headers=reader)).status == 200
    assert (await secured.get(f"{one}/attrs/capacity/value", headers=reader)).status == 200
    for who in (outsider, anonymous):
        assert await error(await secured.get(one, headers=who)) == (404, "NotFound")
        assert await error(await secured.get(f"{one}/attrs", headers=who)) == (404, "NotFound")
    patch = {"capacity": {"value": 11}}
    for method, url, body in (
        ("PATCH", f"{one}/attrs", patch),
        ("POST", f"{one}/attrs", {"open": {"value": True}}),
        ("PUT", f"{one}/attrs", patch),
        ("PUT", f"{one}/attrs/capacity", {"value": 12}),
        ("DELETE", f"{one}/attrs/capacity", None),
        ("DELETE", one, None),
    ):
        resp = await secured.request(method, url, json=body, headers=reader)
        assert await error(resp) == (403, "Forbidden"), (method, url)
        resp = await secured.request(method, url, json=body, headers=outsider)
        assert await error(resp) == (404, "NotFound"), (method, url)
    value = await secured.put(
        f"{one}/attrs/capacity/value",
        data="13",
        headers=reader | {"Content-Type": "text/plain"},
    )
    assert await error(value) == (403, "Forbidden")
    assert await error(await secured.post(V2, json=shelter(2), headers=reader)) == (
        403,
        "Forbidden",
    )
    assert await error(await secured.post(V2, json=shelter(3), headers=outsider)) == (
        403,
        "Forbidden",
    )
    assert (await secured.patch(f"{one}/attrs", json=patch, headers=writer)).status == 204
    got = await (await secured.get(one, headers=reader, params={"options": "keyValues"})).json()
    assert got["capacity"] == 11
    assert (await secured.delete(one, headers=writer)).status == 204


async def test_lists_counts_and_types_only_readable(
    secured: Client, issuer: LocalIssuer, tenant: str
) -> None:
    admin = v2_user(issuer, tenant, "admin", sub="admin")
    for n in range(1, 6):
        assert (await secured.post(V2, json=shelter(n, n), headers=admin)).status == 201
    aed = {"id": "AED1", "type": "AED", "capacity": {"value": 1}}
    assert (await secured.post(V2, json=aed, headers=admin)).status == 201
    # the volunteer reads Shelter2 and Shelter4 through entity permissions, nothing else
    for n in (2, 4):
        target = {"entity": f"urn:ngsiv:Shelter{n}"}
        await grant(secured, ld_admin(issuer, tenant), to_subject(issuer, "vol", "read", target))
    volunteer = v2_user(issuer, tenant, sub="vol")
    listed = await secured.get(
        V2, params={"options": "count,keyValues", "limit": "1"}, headers=volunteer
    )
    assert listed.status == 200, await listed.text()
    assert listed.headers["Fiware-Total-Count"] == "2"
    assert [e["id"] for e in await listed.json()] == ["Shelter2"]
    second = await secured.get(
        V2, params={"options": "keyValues", "limit": "1", "offset": "1"}, headers=volunteer
    )
    assert [e["id"] for e in await second.json()] == ["Shelter4"]
    q = await secured.get(V2, params={"q": "capacity>=1", "options": "count"}, headers=volunteer)
    assert q.headers["Fiware-Total-Count"] == "2"
    query = await secured.post(
        "/v2/op/query",
        json={"entities": [{"idPattern": ".*"}]},
        params={"options": "count"},
        headers=volunteer,
    )
    assert query.status == 200 and query.headers["Fiware-Total-Count"] == "2"
    assert sorted(e["id"] for e in await query.json()) == ["Shelter2", "Shelter4"]
    types = await (await secured.get("/v2/types", headers=volunteer)).json()
    assert [(t["type"], t["count"]) for t in types] == [("Shelter", 2)]
    assert (await secured.get("/v2/types/AED", headers=volunteer)).status == 404
    pattern = await secured.get(V2, params={"typePattern": "A.*"}, headers=volunteer)
    assert await pattern.json() == []
    # the admin (a role) sees everything
    everything = await secured.get(V2, params={"options": "count"}, headers=admin)
    assert everything.headers["Fiware-Total-Count"] == "6"
    # readable, not writable: 403; unreadable: 404, as an entity that does not exist
    patch = {"capacity": {"value": 0}}
    resp = await secured.patch(f"{V2}/Shelter2/attrs", json=patch, headers=volunteer)
    assert await error(resp) == (403, "Forbidden")
    resp = await secured.patch(f"{V2}/Shelter1/attrs", json=patch, headers=volunteer)
    assert await error(resp) == (404, "NotFound")


async def test_creator_owns_what_it_creates(
    secured: Client, issuer: LocalIssuer, tenant: str
) -> None:
    await grant(
        secured,
        ld_admin(issuer, tenant),
        to_subject(issuer, "vol", "write", {"types": ["Shelter"], "scopes": ["/Saga/#"]}),
    )
    volunteer = v2_user(issuer, tenant, sub="vol")
    stranger = v2_user(issuer, tenant, sub="stranger")
    outside = await secured.post(
        V2, json=shelter(1), headers=volunteer | {"Fiware-ServicePath": "/Fukuoka"}
    )
    assert await error(outside) == (403, "Forbidden")
    inside = await secured.post(
        V2, json=shelter(2), headers=volunteer | {"Fiware-ServicePath": "/Saga/Kase"}
    )
    assert inside.status == 201, await inside.text()
    assert (await secured.get(f"{V2}/Shelter2", headers=volunteer)).status == 200
    assert (await secured.get(f"{V2}/Shelter2", headers=stranger)).status == 404
    share = to_subject(issuer, "stranger", "read", {"entity": "urn:ngsiv:Shelter2"})
    owner_ld = as_user(issuer, tenant, sub="vol")
    resp = await secured.post("/cityos/v1/permissions", json=share, headers=owner_ld)
    assert resp.status == 201, await resp.text()  # the creator owns it: it may share it
    assert (await secured.get(f"{V2}/Shelter2", headers=stranger)).status == 200
    assert (await secured.delete(f"{V2}/Shelter2", headers=volunteer)).status == 204


async def test_op_update_decides_each_entity(
    secured: Client, issuer: LocalIssuer, tenant: str
) -> None:
    admin = v2_user(issuer, tenant, "admin", sub="admin")
    for n in (1, 2, 3):
        assert (await secured.post(V2, json=shelter(n, 1), headers=admin)).status == 201
    ld = ld_admin(issuer, tenant)
    await grant(secured, ld, to_subject(issuer, "vol", "write", {"entity": "urn:ngsiv:Shelter1"}))
    await grant(secured, ld, to_subject(issuer, "vol", "read", {"entity": "urn:ngsiv:Shelter2"}))
    volunteer = v2_user(issuer, tenant, sub="vol")

    async def capacities() -> dict[str, int]:
        resp = await secured.get(V2, params={"options": "keyValues"}, headers=admin)
        return {e["id"]: e["capacity"] for e in await resp.json()}

    def body(action: str, *ids: int) -> dict[str, Any]:
        return {
            "actionType": action,
            "entities": [{"id": f"Shelter{n}", "type": "Shelter", "capacity": 5} for n in ids],
        }

    update = "/v2/op/update?options=keyValues"
    resp = await secured.post(update, json=body("update", 1), headers=volunteer)
    assert resp.status == 204, await resp.text()
    # readable only: 403; unreadable: 404 like a missing entity, and it is left unchanged
    for action in ("update", "replace", "delete", "append", "appendStrict"):
        resp = await secured.post(update, json=body(action, 2), headers=volunteer)
        assert await error(resp) == (403, "Forbidden"), action
        resp = await secured.post(update, json=body(action, 3), headers=volunteer)
        assert await error(resp) == (404, "NotFound") or action in ("append", "appendStrict")
    assert await capacities() == {"Shelter1": 5, "Shelter2": 1, "Shelter3": 1}
    missing = await secured.post(update, json=body("update", 9), headers=volunteer)
    assert await error(missing) == (404, "NotFound")
    # the batch upsert (append) writes the allowed entity and refuses the other
    mixed = body("append", 1, 2)
    mixed["entities"][0]["capacity"] = 7
    resp = await secured.post(update, json=mixed, headers=volunteer)
    assert await error(resp) == (403, "Forbidden")
    assert await capacities() == {"Shelter1": 7, "Shelter2": 1, "Shelter3": 1}


async def test_fiware_service_is_the_tenant(
    secured: Client, issuer: LocalIssuer, tenant: str
) -> None:
    """An admin of another tenant gets nothing here through any v2 route, whatever
    NGSILD-Tenant it sends; its own tenant's rights do not carry over."""
    other = "other-" + tenant
    admin = v2_user(issuer, tenant, "admin", sub="admin")
    assert (await secured.post(V2, json=shelter(1), headers=admin)).status == 201
    intruder = as_user(issuer, other, "admin", sub="intruder") | {"Fiware-Service": tenant}
    assert intruder["NGSILD-Tenant"] == other  # the header of a tenant where it is admin
    assert await error(await secured.get(f"{V2}/Shelter1", headers=intruder)) == (404, "NotFound")
    listed = await secured.get(V2, params={"options": "count"}, headers=intruder)
    assert await listed.json() == [] and listed.headers["Fiware-Total-Count"] == "0"
    assert await (await secured.get("/v2/types", headers=intruder)).json() == []
    assert await error(await secured.post(V2, json=shelter(2), headers=intruder)) == (
        403,
        "Forbidden",
    )
    batch = {"actionType": "append", "entities": [shelter(1, 99)]}
    resp = await secured.post("/v2/op/update", json=batch, headers=intruder)
    assert await error(resp) == (404, "NotFound")
    regs = await secured.get("/v2/registrations", headers=intruder)
    assert await error(regs) == (403, "Forbidden")
    got = await secured.get(f"{V2}/Shelter1", headers=admin, params={"options": "keyValues"})
    assert (await got.json())["capacity"] == 10
    # and the admin of this tenant, naming another NGSILD-Tenant, still acts here only
    mixed = admin | {"NGSILD-Tenant": other}
    assert (await secured.get(f"{V2}/Shelter1", headers=mixed)).status == 200


async def test_v2_subscriptions_are_owned(
    secured: Client, issuer: LocalIssuer, tenant: str
) -> None:
    alice = v2_user(issuer, tenant, sub="alice")
    bob = v2_user(issuer, tenant, sub="bob")
    admin = v2_user(issuer, tenant, "admin", sub="admin")
    body = {
        "subject": {"entities": [{"idPattern": ".*", "type": "Shelter"}]},
        "notification": {"http": {"url": "http://127.0.0.1:9/n"}},
    }
    anonymous = await secured.post(
        "/v2/subscriptions", json=body, headers={"Fiware-Service": tenant}
    )
    assert await error(anonymous) == (401, "Unauthorized")
    resp = await secured.post("/v2/subscriptions", json=body, headers=alice)
    assert resp.status == 201, await resp.text()
    one = resp.headers["Location"]
    assert (await secured.get(one, headers=alice)).status == 200
    assert (await secured.get(one, headers=admin)).status == 200
    assert await error(await secured.get(one, headers=bob)) == (404, "NotFound")
    patch = {"description": "mine now"}
    assert await error(await secured.patch(one, json=patch, headers=bob)) == (404, "NotFound")
    assert await error(await secured.delete(one, headers=bob)) == (404, "NotFound")
    listed = await secured.get("/v2/subscriptions", params={"options": "count"}, headers=bob)
    assert await listed.json() == [] and listed.headers["Fiware-Total-Count"] == "0"
    listed = await secured.get("/v2/subscriptions", params={"options": "count"}, headers=alice)
    assert len(await listed.json()) == 1 and listed.headers["Fiware-Total-Count"] == "1"
    # the same subscription through NGSI-LD: still alice's only
    ld = "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:" + one.rsplit("/", 1)[1]
    assert (await secured.get(ld, headers=as_user(issuer, tenant, sub="bob"))).status == 404
    assert (await secured.get(ld, headers=as_user(issuer, tenant, sub="alice"))).status == 200
    assert (await secured.patch(one, json=patch, headers=alice)).status == 204
    assert (await secured.delete(one, headers=alice)).status == 204
