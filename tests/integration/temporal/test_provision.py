"""Temporal provision: create/update, add attributes, modify and delete one instance, delete an
attribute (one datasetId, or all) and the temporal entity."""

from __future__ import annotations

from datetime import timedelta

from tests.integration.temporal.helpers import T0, TEMPORAL, Client, create, get, iso, vehicle

EID = "urn:ngsi-ld:Vehicle:1"


async def test_each_provision_operation(client: Client, tenant: str) -> None:
    h = {"NGSILD-Tenant": tenant}
    r = await client.post(f"{TEMPORAL}/entities", json=vehicle(EID, [1.0, 2.0]), headers=h)
    assert r.status == 201 and r.headers["Location"].endswith(EID)
    later = vehicle(EID, [3.0], step=timedelta(minutes=2))
    later["speed"] = later["speed"][:1]
    later["speed"][0]["observedAt"] = iso(T0 + timedelta(minutes=2))
    r = await client.post(f"{TEMPORAL}/entities", json=later, headers=h)
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


async def test_an_update_replaces_the_instance_at_the_same_instant(
    client: Client, tenant: str
) -> None:
    """§5.6.11 as ETSI 008_01_01 reads it: updating a temporal entity with an instance of an
    attribute (and dataset) at an observedAt already stored replaces that instance; other
    datasets at the same instant and other instants stay."""
    h = {"NGSILD-Tenant": tenant}
    first = vehicle(EID, [120.0, 80.0])
    first["speed"].append({**first["speed"][0], "value": 7.0, "datasetId": "urn:ds:a"})
    await create(client, tenant, first)
    r = await client.post(
        f"{TEMPORAL}/entities", json=vehicle(EID, [121.0, 80.0, 100.0]), headers=h
    )
    assert r.status == 204
    _, body, _ = await get(client, tenant, f"/entities/{EID}")
    got = [(i["value"], i["observedAt"], i.get("datasetId")) for i in body["speed"]]
    assert sorted(got, key=str) == sorted(
        [
            (121.0, iso(T0), None),
            (7.0, iso(T0), "urn:ds:a"),
            (80.0, iso(T0 + timedelta(minutes=1)), None),
            (100.0, iso(T0 + timedelta(minutes=2)), None),
        ],
        key=str,
    )


async def test_patch_of_an_instance_without_attribute_name_is_405(
    client: Client, tenant: str
) -> None:
    """/attrs//{instanceId} reads as /attrs/{attrId}, which takes DELETE only (ETSI 016_02_06)."""
    await create(client, tenant, vehicle(EID, [1.0]))
    r = await client.patch(
        f"{TEMPORAL}/entities/{EID}/attrs//urn:ngsi-ld:attribute:instance:x",
        json={"speed": {"type": "Property", "value": 2}},
        headers={"NGSILD-Tenant": tenant},
    )
    assert r.status == 405
    assert (await r.json())["type"] == "https://uri.etsi.org/ngsi-ld/errors/MethodNotAllowed"
