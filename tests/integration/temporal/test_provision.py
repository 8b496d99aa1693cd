"""Temporal provision: create/update, add attributes, modify and delete one instance, delete an
attribute (one datasetId, or all) and the temporal entity."""

from __future__ import annotations

from tests.integration.temporal.helpers import TEMPORAL, Client, create, get, vehicle

EID = "urn:ngsi-ld:Vehicle:1"


async def test_each_provision_operation(client: Client, tenant: str) -> None:
    h = {"NGSILD-Tenant": tenant}
    r = await client.post(f"{TEMPORAL}/entities", json=vehicle(EID, [1.0, 2.0]), headers=h)
    assert r.status == 201 and r.headers["Location"].endswith(EID)
    r = await client.post(f"{TEMPORAL}/entities", json=vehicle(EID, [3.0]), headers=h)
    assert r.status == 204  # instances added to the existing temporal entity
    more = {
        "fuel": [
            {"type": "Property", "value": 50, "observedAt": "2020-08-01T12:00:00Z"},
            {"type": "Property", "value": 9, "datasetId": "urn:ds:b",
             "observedAt": "2020-08-01T12:00:00Z"},
        ]
    }  # fmt: skip
    r = await client.post(f"{TEMPORAL}/entities/{EID}/attrs", json=more, headers=h)
    assert r.status == 204
    _, body, _ = await get(client, tenant, f"/entities/{EID}")
    assert sorted(i["value"] for i in body["speed"]) == [1.0, 2.0, 3.0]
    assert sorted(i["value"] for i in body["fuel"]) == [9, 50]

    first = next(i for i in body["speed"] if i["value"] == 1.0)["instanceId"]
    patch = {"speed": {"type": "Property", "value": 11.0, "observedAt": "2020-08-01T12:00:00Z"}}
    r = await client.patch(f"{TEMPORAL}/entities/{EID}/attrs/speed/{first}", json=patch, headers=h)
    assert r.status == 204
    _, body, _ = await get(client, tenant, f"/entities/{EID}")
    assert sorted(i["value"] for i in body["speed"]) == [2.0, 3.0, 11.0]
    r = await client.delete(f"{TEMPORAL}/entities/{EID}/attrs/speed/{first}", headers=h)
    assert r.status == 204
    _, body, _ = await get(client, tenant, f"/entities/{EID}")
    assert sorted(i["value"] for i in body["speed"]) == [2.0, 3.0]

    r = await client.delete(f"{TEMPORAL}/entities/{EID}/attrs/fuel?datasetId=urn:ds:b", headers=h)
    assert r.status == 204
    _, body, _ = await get(client, tenant, f"/entities/{EID}")
    assert [i["value"] for i in body["fuel"]] == [50]
    r = await client.delete(f"{TEMPORAL}/entities/{EID}/attrs/fuel?deleteAll=true", headers=h)
    assert r.status == 204
    _, body, _ = await get(client, tenant, f"/entities/{EID}")
    assert "fuel" not in body
    r = await client.delete(f"{TEMPORAL}/entities/{EID}/attrs/fuel", headers=h)
    assert r.status == 404

    assert (await client.delete(f"{TEMPORAL}/entities/{EID}", headers=h)).status == 204
    status, _, _ = await get(client, tenant, f"/entities/{EID}")
    assert status == 404
    assert (await client.delete(f"{TEMPORAL}/entities/{EID}", headers=h)).status == 404


async def test_tenants_are_separate(client: Client, tenant: str) -> None:
    await create(client, tenant, vehicle(EID, [1.0]))
    other = tenant[:-1] + ("0" if tenant[-1] != "0" else "1")
    await create(client, other, vehicle(EID, [7.0, 8.0]))
    _, mine, _ = await get(client, tenant, f"/entities/{EID}")
    _, theirs, _ = await get(client, other, f"/entities/{EID}")
    assert [i["value"] for i in mine["speed"]] == [1.0]
    assert [i["value"] for i in theirs["speed"]] == [7.0, 8.0]


async def test_deletions_and_new_types_in_an_upsert(client: Client, tenant: str) -> None:
    """§5.6.11.4: an upsert unions the types; an instance whose value is the NGSI-LD Null is a
    deletion in the history (§4.5.7); a Null first-level member is refused (§5.5.4)."""
    h = {"NGSILD-Tenant": tenant}
    await create(client, tenant, vehicle(EID, [1.0]))
    second = {
        "id": EID, "type": ["Vehicle", "Truck"],
        "speed": [{"type": "Property", "value": "urn:ngsi-ld:null",
                   "observedAt": "2020-08-02T00:00:00Z"}],
    }  # fmt: skip
    r = await client.post(f"{TEMPORAL}/entities", json=second, headers=h)
    assert r.status == 204
    _, body, _ = await get(client, tenant, f"/entities/{EID}")
    assert body["type"] == ["Vehicle", "Truck"] or sorted(body["type"]) == ["Truck", "Vehicle"]
    assert [("deletedAt" in i, i["value"]) for i in body["speed"]] == [
        (False, 1.0), (True, "urn:ngsi-ld:null"),
    ]  # fmt: skip
    bad = {**vehicle("urn:ngsi-ld:Vehicle:2", [1.0]), "expiresAt": "urn:ngsi-ld:null"}
    r = await client.post(f"{TEMPORAL}/entities", json=bad, headers=h)
    assert r.status == 400
    status, _, _ = await get(client, tenant, "/entities/urn:ngsi-ld:Vehicle:2")
    assert status == 404
