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
