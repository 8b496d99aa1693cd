"""Interoperability choices of docs/interoperability.md, over real HTTP against PostgreSQL/PostGIS.

Each test names the clause of ETSI GS CIM 009 v1.9.1 the choice rests on.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

API = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"

Client = TestClient  # type: ignore[type-arg]


def hdr(tenant: str) -> dict[str, str]:
    return {"NGSILD-Tenant": tenant, "Content-Type": "application/json"}


async def get(client: Client, tenant: str, eid: str) -> Any:
    resp = await client.get(f"{API}/entities/{eid}", headers={"NGSILD-Tenant": tenant})
    assert resp.status == 200, await resp.text()
    return await resp.json(content_type=None)


def sensor(n: int, **attrs: Any) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Sensor:{n}",
        "type": "Sensor",
        "temperature": {"type": "Property", "value": 20},
        **attrs,
    }


async def test_batch_update_no_overwrite_reports_what_was_written(
    client: Client, tenant: str
) -> None:
    """§5.6.9.4 applies Append Entity Attributes (§5.6.3) to each entity; with noOverwrite an
    existing attribute is not updated, which §5.6.3 reports in an UpdateResult (§5.2.18). A batch
    answers a BatchOperationResult (§5.2.16): an entity wrote in part is listed under ``success``
    (its change was committed) AND under ``errors``, whose ProblemDetails (§5.5.1, RFC 9457
    extension members) carries ``updated`` and ``notUpdated``; an entity of which nothing was
    written is only under ``errors``. The status stays 207, as ETSI 005_02_01/03 expect."""
    ops = f"{API}/entityOperations"
    resp = await client.post(ops + "/create", json=[sensor(1), sensor(2)], headers=hdr(tenant))
    assert resp.status == 201, await resp.text()
    resp = await client.post(
        ops + "/update?options=noOverwrite",
        json=[
            # one new attribute, one existing: written in part
            {
                "id": "urn:ngsi-ld:Sensor:1",
                "temperature": {"type": "Property", "value": 99},
                "humidity": {"type": "Property", "value": 40},
            },
            # only an existing attribute: nothing written
            {"id": "urn:ngsi-ld:Sensor:2", "temperature": {"type": "Property", "value": 99}},
        ],
        headers=hdr(tenant),
    )
    assert resp.status == 207
    body = await resp.json()
    assert body["success"] == ["urn:ngsi-ld:Sensor:1"]
    errors = {e["entityId"]: e["error"] for e in body["errors"]}
    assert set(errors) == {"urn:ngsi-ld:Sensor:1", "urn:ngsi-ld:Sensor:2"}
    first, second = errors["urn:ngsi-ld:Sensor:1"], errors["urn:ngsi-ld:Sensor:2"]
    assert first["type"] == ERR + "BadRequestData" and first["status"] == 400
    assert first["updated"] == ["humidity"]
    assert first["notUpdated"] == [
        {"attributeName": "temperature", "reason": "attribute exists and noOverwrite was requested"}
    ]
    assert "temperature" in first["detail"] and "written: humidity" in first["detail"]
    assert second["updated"] == [] and second["notUpdated"][0]["attributeName"] == "temperature"
    assert "written: none" in second["detail"]
    # what the report says is what is stored
    one = await get(client, tenant, "urn:ngsi-ld:Sensor:1")
    assert one["temperature"]["value"] == 20 and one["humidity"]["value"] == 40
    two = await get(client, tenant, "urn:ngsi-ld:Sensor:2")
    assert two["temperature"]["value"] == 20 and "humidity" not in two
    # every attribute new: a plain success, 204
    resp = await client.post(
        ops + "/update?options=noOverwrite",
        json=[{"id": "urn:ngsi-ld:Sensor:2", "pressure": {"type": "Property", "value": 1013}}],
        headers=hdr(tenant),
    )
    assert resp.status == 204, await resp.text()
    assert (await get(client, tenant, "urn:ngsi-ld:Sensor:2"))["pressure"]["value"] == 1013


ADDRESS = {
    "type": "Property",
    "value": {"streetAddress": "本町1-1", "postalCode": "840-0041", "addressLocality": "佐賀市"},
    "source": {"type": "Property", "value": {"name": "registry", "year": 2024}},
}


async def test_partial_attribute_update_replaces_a_json_object_value(
    client: Client, tenant: str
) -> None:
    """§5.6.4 (Partial Attribute Update) updates the members of one attribute that the fragment
    carries: a ``value`` given replaces the stored one, whatever its JSON type, as Update
    Attributes (§5.6.2) does; members and sub-attributes not given are kept. Merge-patch
    semantics inside a JSON object value (IETF RFC 7396) belong to Merge Entity (§5.6.17) and
    batch merge (§5.6.20). The ETSI suite reads §5.6.4 the same way: 012_04 and 012_08 expect a
    patched languageMap / json object to be replaced, not merged."""
    await client.post(f"{API}/entities", json=sensor(1, address=ADDRESS), headers=hdr(tenant))
    resp = await client.patch(
        f"{API}/entities/urn:ngsi-ld:Sensor:1/attrs/address",
        json={
            "value": {"streetAddress": "駅前中央2-2"},
            "source": {"type": "Property", "value": {"name": "survey"}},
        },
        headers=hdr(tenant),
    )
    assert resp.status == 204, await resp.text()
    address = (await get(client, tenant, "urn:ngsi-ld:Sensor:1"))["address"]
    assert address["value"] == {"streetAddress": "駅前中央2-2"}  # replaced, not merged
    assert address["source"]["value"] == {"name": "survey"}  # so is a sub-attribute's value
    # a member not given is kept: here the value, while a sub-attribute is added
    resp = await client.patch(
        f"{API}/entities/urn:ngsi-ld:Sensor:1/attrs/address",
        json={"checked": {"type": "Property", "value": True}},
        headers=hdr(tenant),
    )
    assert resp.status == 204, await resp.text()
    address = (await get(client, tenant, "urn:ngsi-ld:Sensor:1"))["address"]
    assert address["value"] == {"streetAddress": "駅前中央2-2"}
    assert address["checked"]["value"] is True
    assert address["source"]["value"] == {"name": "survey"}


async def test_merge_entity_merge_patches_a_json_object_value(client: Client, tenant: str) -> None:
    """Merge Entity (§5.6.17) and batch merge (§5.6.20) keep merge-patch semantics (IETF RFC
    7396) inside a JSON object value: members given replace, members not given are kept, a
    null member is removed."""
    await client.post(f"{API}/entities", json=sensor(1, address=ADDRESS), headers=hdr(tenant))
    resp = await client.patch(
        f"{API}/entities/urn:ngsi-ld:Sensor:1",
        json={
            "address": {
                "type": "Property",
                "value": {"streetAddress": "駅前中央2-2", "postalCode": None},
            }
        },
        headers=hdr(tenant),
    )
    assert resp.status == 204, await resp.text()
    address = (await get(client, tenant, "urn:ngsi-ld:Sensor:1"))["address"]
    assert address["value"] == {"streetAddress": "駅前中央2-2", "addressLocality": "佐賀市"}
    resp = await client.post(
        f"{API}/entityOperations/merge",
        json=[
            {
                "id": "urn:ngsi-ld:Sensor:1",
                "address": {"type": "Property", "value": {"postalCode": "840-0801"}},
            }
        ],
        headers=hdr(tenant),
    )
    assert resp.status == 204, await resp.text()
    address = (await get(client, tenant, "urn:ngsi-ld:Sensor:1"))["address"]
    assert address["value"] == {
        "streetAddress": "駅前中央2-2",
        "addressLocality": "佐賀市",
        "postalCode": "840-0801",
    }


POINT = {"type": "Point", "coordinates": [130.3, 33.25]}


async def test_null_members_of_a_geojson_geometry_are_absent(client: Client, tenant: str) -> None:
    """A GeoProperty value is a GeoJSON geometry (§4.7, IETF RFC 7946). RFC 7946 defines bbox
    (§5) and foreign members (§6.1) as optional members: present with a value, or absent; a JSON
    null gives them no meaning, and clients that serialize unset optional fields as null
    (pydantic's model_dump() without exclude_none) send them. So ``"bbox": null`` is read as no
    bbox, in the normalized and the concise form, on create, append and batch upsert, and
    nothing null is stored. A null type or coordinates, a null inside coordinates and a bbox
    that is not 4 or 6 numbers stay 400."""
    geo = {**POINT, "bbox": None, "crs": None}
    body = sensor(1, location={"type": "GeoProperty", "value": geo}, area=geo)
    resp = await client.post(f"{API}/entities", json=body, headers=hdr(tenant))
    assert resp.status == 201, await resp.text()
    stored = await get(client, tenant, "urn:ngsi-ld:Sensor:1")
    assert stored["location"]["value"] == POINT
    assert stored["area"] == {"type": "GeoProperty", "value": POINT}
    resp = await client.post(
        f"{API}/entities/urn:ngsi-ld:Sensor:1/attrs",
        json={"site": {"type": "GeoProperty", "value": {**POINT, "bbox": None}}},
        headers=hdr(tenant),
    )
    assert resp.status == 204, await resp.text()
    assert (await get(client, tenant, "urn:ngsi-ld:Sensor:1"))["site"]["value"] == POINT
    resp = await client.post(
        f"{API}/entityOperations/upsert",
        json=[sensor(2, location={"type": "GeoProperty", "value": geo})],
        headers=hdr(tenant),
    )
    assert resp.status == 201, await resp.text()
    # the geometry is queryable as stored
    resp = await client.get(
        f"{API}/entities",
        params={
            "type": "Sensor",
            "georel": "near;maxDistance==1000",
            "geometry": "Point",
            "coordinates": "[130.3,33.25]",
        },
        headers={"NGSILD-Tenant": tenant},
    )
    assert resp.status == 200
    assert sorted(e["id"] for e in await resp.json()) == [
        "urn:ngsi-ld:Sensor:1",
        "urn:ngsi-ld:Sensor:2",
    ]
    for bad, what in (
        ({"type": "Point", "coordinates": None}, "not a valid GeoJSON geometry"),
        ({"type": None, "coordinates": [1, 2]}, "contains a null inside its value"),
        ({"type": "Point", "coordinates": [1, None]}, "non-number"),
        ({**POINT, "bbox": [1, 2]}, "bbox must be an array of 4 or 6 numbers"),
        ({**POINT, "bbox": "130,33,131,34"}, "bbox must be"),
    ):
        resp = await client.post(
            f"{API}/entities",
            json=sensor(3, location={"type": "GeoProperty", "value": bad}),
            headers=hdr(tenant),
        )
        problem = await resp.json()
        assert resp.status == 400, problem
        assert problem["type"] == ERR + "BadRequestData" and what in problem["detail"], problem
    resp = await client.get(f"{API}/entities/urn:ngsi-ld:Sensor:3", headers=hdr(tenant))
    assert resp.status == 404  # nothing was written


async def test_merge_replaces_a_geometry_whole(client: Client, tenant: str) -> None:
    """Merge Entity (§5.6.17) merge-patches a compound Property value, but a GeoProperty value
    is a geometry: merged member by member, a new Point would keep the old shape's bbox, which
    RFC 7946 §5 requires to enclose the geometry. It is replaced whole."""
    shape = {"type": "Point", "coordinates": [130.0, 33.0], "bbox": [130.0, 33.0, 130.0, 33.0]}
    await client.post(
        f"{API}/entities",
        json=sensor(1, location={"type": "GeoProperty", "value": shape}),
        headers=hdr(tenant),
    )
    for value in (POINT, {**shape, "coordinates": [130.1, 33.1], "bbox": None}):
        resp = await client.patch(
            f"{API}/entities/urn:ngsi-ld:Sensor:1",
            json={"location": {"type": "GeoProperty", "value": value}},
            headers=hdr(tenant),
        )
        assert resp.status == 204, await resp.text()
        stored = (await get(client, tenant, "urn:ngsi-ld:Sensor:1"))["location"]["value"]
        assert stored == {k: v for k, v in value.items() if v is not None}
        await client.patch(  # the bbox back, for the next round
            f"{API}/entities/urn:ngsi-ld:Sensor:1/attrs/location",
            json={"value": shape},
            headers=hdr(tenant),
        )


async def test_a_type_list_with_a_non_string_is_a_400_not_a_500(
    client: Client, tenant: str
) -> None:
    """Found by `make fuzz` (50 examples per operation): a type list holding a list or an object
    reached the federation's write routing, which expanded every item as a term (500)."""
    for types in ([[]], [None, []], [{"a": 1}], ["Sensor", ["x"]]):
        resp = await client.post(
            f"{API}/entities",
            json={"id": "urn:ngsi-ld:Sensor:9", "type": types},
            headers=hdr(tenant),
        )
        problem = await resp.json()
        assert resp.status == 400, problem
        assert problem["type"] == ERR + "BadRequestData" and "entity type" in problem["detail"]
    resp = await client.get(f"{API}/entities/urn:ngsi-ld:Sensor:9", headers=hdr(tenant))
    assert resp.status == 404
