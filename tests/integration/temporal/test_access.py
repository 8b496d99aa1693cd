"""Per-entity access control on the temporal API (issue #10, temporal/access.py), with real
tokens from a local OIDC issuer: queries hold only what the caller may read (pages and counts),
an unreadable entity is 404 on every temporal route, a readable one that may not be changed is
403 on every write, and creating needs the right to create that type."""

from __future__ import annotations

from typing import Any

from tests.integration.auth.conftest import (  # noqa: F401 (fixtures)
    Client,
    as_user,
    citizens,
    secured,
)
from tests.integration.auth.issuer import LocalIssuer
from tests.integration.temporal.helpers import T0, TEMPORAL, iso

PERMISSIONS = "/cityos/v1/permissions"


def _entity(eid: str, kind: str, values: list[float]) -> dict[str, Any]:
    return {
        "id": eid,
        "type": kind,
        "occupancy": [
            {"type": "Property", "value": v, "observedAt": iso(T0.replace(minute=i))}
            for i, v in enumerate(values)
        ],
    }


SHELTERS = [f"urn:ngsi-ld:Shelter:{n}" for n in range(3)]
AEDS = [f"urn:ngsi-ld:AED:{n}" for n in range(2)]


async def _populate(client: Client, admin: dict[str, str]) -> None:
    for eid in SHELTERS:
        r = await client.post(f"{TEMPORAL}/entities", json=_entity(eid, "Shelter", [1, 2]),
                              headers=admin)  # fmt: skip
        assert r.status == 201, await r.text()
    for eid in AEDS:
        r = await client.post(f"{TEMPORAL}/entities", json=_entity(eid, "AED", [5]), headers=admin)
        assert r.status == 201, await r.text()


async def _grant(
    client: Client, admin: dict[str, str], idp: LocalIssuer, action: str, kind: str
) -> None:
    grant = {
        "assignee": {"kind": "subject", "value": "user", "issuer": idp.url},
        "action": action,
        "target": {"types": [kind]},
    }
    r = await client.post(PERMISSIONS, json=grant, headers=admin)
    assert r.status == 201, await r.text()


async def test_queries_and_retrieves_hold_only_readable_entities(
    secured: Client,  # noqa: F811
    issuer: LocalIssuer,
    tenant: str,
) -> None:
    admin = as_user(issuer, tenant, "admin", sub="admin")
    await _populate(secured, admin)
    user = as_user(issuer, tenant, sub="user")
    # nothing granted yet: every entity is unknown to the user
    r = await secured.get(f"{TEMPORAL}/entities/{SHELTERS[0]}", headers=user)
    assert r.status == 404
    await _grant(secured, admin, issuer, "read", "Shelter")
    params = {"type": "Shelter,AED", "count": "true", "limit": "2"}
    seen: list[str] = []
    for offset in (0, 2, 4):
        r = await secured.get(
            f"{TEMPORAL}/entities", params={**params, "offset": str(offset)}, headers=user
        )
        assert r.status == 200, await r.text()
        assert r.headers["NGSILD-Results-Count"] == "3"  # the readable ones only
        seen += [e["id"] for e in await r.json()]
    assert seen == SHELTERS
    body = {"type": "Query", "entities": [{"type": "AED"}], "temporalQ": {"timerel": "after",
            "timeAt": iso(T0)}}  # fmt: skip
    r = await secured.post(f"{TEMPORAL}/entityOperations/query", json=body, headers=user)
    assert r.status == 200 and await r.json() == []
    r = await secured.get(f"{TEMPORAL}/entities/{SHELTERS[1]}", headers=user)
    assert r.status == 200
    assert [i["value"] for i in (await r.json())["occupancy"]] == [1, 2]
    r = await secured.get(f"{TEMPORAL}/entities/{AEDS[0]}", headers=user)
    assert r.status == 404  # the same answer as for an id that does not exist
    # the admin still sees everything
    r = await secured.get(f"{TEMPORAL}/entities", params={"type": "AED"}, headers=admin)
    assert [e["id"] for e in await r.json()] == AEDS


async def test_writes_need_write_and_hide_unreadable_entities(
    secured: Client,  # noqa: F811
    issuer: LocalIssuer,
    tenant: str,
) -> None:
    admin = as_user(issuer, tenant, "admin", sub="admin")
    await _populate(secured, admin)
    user = as_user(issuer, tenant, sub="user")
    await _grant(secured, admin, issuer, "read", "Shelter")
    status, body = await _instances(secured, SHELTERS[0], admin)
    assert status == 200
    instance = body["occupancy"][0]["instanceId"]
    one = {"type": "Property", "value": 9, "observedAt": iso(T0)}
    writes = [
        ("POST", "/entities", _entity(SHELTERS[0], "Shelter", [3])),
        ("POST", f"/entities/{SHELTERS[0]}/attrs", {"occupancy": one}),
        ("PATCH", f"/entities/{SHELTERS[0]}/attrs/occupancy/{instance}", {"occupancy": one}),
        ("DELETE", f"/entities/{SHELTERS[0]}/attrs/occupancy/{instance}", None),
        ("DELETE", f"/entities/{SHELTERS[0]}/attrs/occupancy", None),
        ("DELETE", f"/entities/{SHELTERS[0]}", None),
    ]
    for method, path, payload in writes:  # readable, not writable: 403
        r = await secured.request(method, TEMPORAL + path, json=payload, headers=user)
        assert r.status == 403, (method, path, await r.text())
    for method, path, payload in writes:  # not even readable: 404, as if it did not exist
        path = path.replace(SHELTERS[0], AEDS[0])
        payload = _entity(AEDS[0], "AED", [3]) if path == "/entities" else payload
        r = await secured.request(method, TEMPORAL + path, json=payload, headers=user)
        assert r.status == 404, (method, path, await r.text())
    status, body = await _instances(secured, SHELTERS[0], admin)
    assert [i["value"] for i in body["occupancy"]] == [1, 2]  # nothing was written
    # creating a temporal entity of a type the user may not write: 403; with write: 201
    r = await secured.post(
        f"{TEMPORAL}/entities", json=_entity("urn:ngsi-ld:Shelter:new", "Shelter", [1]),
        headers=user,
    )  # fmt: skip
    assert r.status == 403, await r.text()
    await _grant(secured, admin, issuer, "write", "Shelter")
    r = await secured.post(
        f"{TEMPORAL}/entities", json=_entity("urn:ngsi-ld:Shelter:new", "Shelter", [1]),
        headers=user,
    )  # fmt: skip
    assert r.status == 201, await r.text()
    r = await secured.request(
        "PATCH", f"{TEMPORAL}/entities/{SHELTERS[0]}/attrs/occupancy/{instance}",
        json={"occupancy": one}, headers=user,
    )  # fmt: skip
    assert r.status == 204, await r.text()


async def _instances(client: Client, eid: str, headers: dict[str, str]) -> tuple[int, Any]:
    r = await client.get(f"{TEMPORAL}/entities/{eid}", headers=headers)
    return r.status, await r.json()
