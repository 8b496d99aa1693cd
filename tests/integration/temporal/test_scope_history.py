"""The Scope as a temporal Property (§4.5.6, §4.18, §5.7.4.4 S4): changes through the Core API
become scope instances (observedAt a copy of modifiedAt), a removal is a deletion record, a
temporal entity may carry its scope's instances, and scopeQ in a temporal query selects by the
scopes valid within the window and keeps the instances observed while a matching one was."""

from __future__ import annotations

from typing import Any

from tests.integration.temporal.helpers import API, Client, create, get

WINDOW = {"timerel": "between", "timeAt": "2026-03-01T12:00:00Z",
          "endTimeAt": "2026-03-01T13:00:00Z"}  # fmt: skip


def _scoped(eid: str, scopes: list[tuple[str, str]], speeds: list[tuple[str, str]]) -> Any:
    return {
        "id": eid,
        "type": "Vehicle",
        "scope": [{"type": "Property", "value": v, "observedAt": t} for v, t in scopes],
        "speed": [{"type": "Property", "value": v, "observedAt": t} for v, t in speeds],
    }


async def test_core_api_scope_changes_are_scope_instances(client: Client, tenant: str) -> None:
    h = {"NGSILD-Tenant": tenant}
    eid = "urn:ngsi-ld:Vehicle:scoped"
    speed = {"type": "Property", "value": 1, "observedAt": "2026-08-10T00:00:00Z"}
    body = {"id": eid, "type": "Vehicle", "scope": "/Old", "speed": speed}
    assert (await client.post(f"{API}/entities", json=body, headers=h)).status == 201
    r = await client.patch(f"{API}/entities/{eid}", json={"scope": "/New"}, headers=h)
    assert r.status == 204
    status, got, _ = await get(client, tenant, f"/entities/{eid}", options="sysAttrs")
    assert status == 200
    values = [i["value"] for i in got["scope"]]
    assert values == [["/Old"], ["/New"]]
    for inst in got["scope"]:
        assert inst["observedAt"] == inst["modifiedAt"]
        assert set(inst) <= {"type", "value", "instanceId", "createdAt", "modifiedAt",
                             "observedAt"}  # fmt: skip
    r = await client.delete(f"{API}/entities/{eid}/attrs/scope", headers=h)
    assert r.status == 204
    status, got, _ = await get(client, tenant, f"/entities/{eid}", timeproperty="deletedAt")
    assert status == 200
    assert [(i["value"], "deletedAt" in i) for i in got["scope"]] == [([], True)]
    assert "speed" not in got  # nothing else was deleted
    status, got, _ = await get(
        client, tenant, f"/entities/{eid}", timeproperty="deletedAt", options="temporalValues"
    )
    assert got["scope"]["values"][0][0] == []


async def test_scope_q_follows_the_scopes_valid_in_the_window(client: Client, tenant: str) -> None:
    fixtures = {
        "ab": _scoped("urn:ngsi-ld:Vehicle:ab", [("/A/B", "2026-03-01T10:00:00Z")],
                      [("abval", "2026-03-01T12:05:00Z")]),
        "mid": _scoped("urn:ngsi-ld:Vehicle:mid", [("/M", "2026-03-01T12:10:00Z")],
                       [("midpre", "2026-03-01T12:05:00Z"), ("midpost", "2026-03-01T12:15:00Z")]),
        "rep": _scoped("urn:ngsi-ld:Vehicle:rep",
                       [("/R", "2026-03-01T10:00:00Z"), ("/S", "2026-03-01T12:30:00Z")],
                       [("repold", "2026-03-01T12:15:00Z"), ("repnew", "2026-03-01T12:45:00Z")]),
        "late": _scoped("urn:ngsi-ld:Vehicle:late", [("/Z", "2026-03-01T14:00:00Z")],
                        [("lateval", "2026-03-01T12:05:00Z")]),
    }  # fmt: skip
    fixtures["bare"] = {
        "id": "urn:ngsi-ld:Vehicle:bare",
        "type": "Vehicle",
        "speed": [{"type": "Property", "value": "bareval", "observedAt": "2026-03-01T12:05:00Z"}],
    }
    for body in fixtures.values():
        await create(client, tenant, body)

    async def speeds(scope_q: str) -> dict[str, list[str]]:
        status, got, _ = await get(
            client, tenant, "/entities", type="Vehicle", scopeQ=scope_q, **WINDOW
        )
        assert status == 200, got
        return {e["id"].rsplit(":", 1)[1]: [i["value"] for i in e["speed"]] for e in got}

    assert await speeds("/A/B") == {"ab": ["abval"]}
    assert await speeds("/#") == {
        "ab": ["abval"],
        "mid": ["midpost"],  # /M valid from 12:10 only
        "rep": ["repold", "repnew"],
    }  # not bare (no scope), not late (/Z set after the window)
    assert await speeds("/R") == {"rep": ["repold"]}  # /R until 12:30
    assert await speeds("/S") == {"rep": ["repnew"]}  # /S from 12:30
    assert await speeds("/Z") == {}
    # the current scope is the newest instance's; the entity API agrees
    r = await client.get(f"{API}/entities/urn:ngsi-ld:Vehicle:rep",
                         headers={"NGSILD-Tenant": tenant})  # fmt: skip
    assert (await r.json())["scope"] == "/S"
