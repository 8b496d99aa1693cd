"""Every representation the Temporal API writes conforms to its OpenAPI declaration: normalized
instances, temporalValues, aggregatedValues, a 206 page, the writes and the errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from city_os.api.keys import TEMPORAL as TEMPORAL_SERVICE
from tests.integration.conformance import conforms, document
from tests.integration.temporal.helpers import T0, TEMPORAL, Client, iso, vehicle

EID = "urn:ngsi-ld:Vehicle:shapes"
ONE = "/ngsi-ld/v1/temporal/entities/{entity_id}"
MANY = "/ngsi-ld/v1/temporal/entities"
INSTANCE = ONE + "/attrs/{attr}/{instance_id}"


def _vehicle_with_datasets() -> dict[str, Any]:
    body = vehicle(EID, [10.0, 20.0, 30.0])
    body["speed"].append(
        {"type": "Property", "value": 7.0, "observedAt": iso(T0), "datasetId": "urn:ds:gps"}
    )
    body["driver"] = {"type": "Relationship", "object": "urn:ngsi-ld:Person:1",
                      "observedAt": iso(T0)}  # fmt: skip
    body["name"] = {"type": "LanguageProperty", "languageMap": {"ja": "バス", "en": "bus"},
                    "observedAt": iso(T0)}  # fmt: skip
    return body


async def test_temporal_responses_conform(client: Client, tenant: str) -> None:
    doc = await document(client)
    h = {"NGSILD-Tenant": tenant}
    r = await client.post(MANY, json=_vehicle_with_datasets(), headers=h)
    assert r.status == 201
    await conforms(doc, "POST", MANY, r)
    r = await client.post(MANY, json=vehicle(EID, [40.0]), headers=h)
    assert r.status == 204
    await conforms(doc, "POST", MANY, r)
    span = {"timerel": "after", "timeAt": iso(T0 - timedelta(days=1))}
    for params in (
        {},
        {"options": "sysAttrs"},
        {"options": "temporalValues"},
        {"options": "aggregatedValues", "aggrMethods": "totalCount,avg,min,max,sum",
         "aggrPeriodDuration": "PT2M", **span},
        {"lastN": "1"},
        {"pick": "id,speed"},
    ):  # fmt: skip
        r = await client.get(f"{TEMPORAL}/entities/{EID}", params=params, headers=h)
        assert r.status == 200, (params, await r.text())
        body = await conforms(doc, "GET", ONE, r)
        assert "speed" in body, params
    r = await client.get(f"{TEMPORAL}/entities/{EID}", headers={**h, "Accept": "text/csv"})
    assert r.status == 200
    rows = await conforms(doc, "GET", ONE, r)
    assert rows.startswith("entityId,attribute,datasetId,time,value")
    r = await client.get(MANY, params={"type": "Vehicle", "count": "true", **span}, headers=h)
    assert r.status == 200
    [entity] = await conforms(doc, "GET", MANY, r)
    assert entity["id"] == EID
    r = await client.post(
        f"{TEMPORAL}/entityOperations/query",
        json={"type": "Query", "entities": [{"type": "Vehicle"}], "temporalQ": span,
              "aggrParams": {"aggrMethods": ["max"]}},
        headers=h,
    )  # fmt: skip
    assert r.status == 200, await r.text()
    [entity] = await conforms(doc, "POST", "/ngsi-ld/v1/temporal/entityOperations/query", r)
    assert entity["speed"][0]["max"] if isinstance(entity["speed"], list) else entity["speed"]


async def test_a_partial_page_and_errors_conform(client: Client, tenant: str) -> None:
    doc = await document(client)
    h = {"NGSILD-Tenant": tenant}
    r = await client.post(MANY, json=vehicle(EID, [float(i) for i in range(6)]), headers=h)
    assert r.status == 201
    service = client.app[TEMPORAL_SERVICE]
    original, service.max_instances = service.max_instances, 3
    try:
        r = await client.get(f"{TEMPORAL}/entities/{EID}", headers=h)
        assert r.status == 206
        assert "Content-Range" in r.headers
        await conforms(doc, "GET", ONE, r)
    finally:
        service.max_instances = original
    for method, url, template, params in (
        ("GET", f"{TEMPORAL}/entities/{EID}", ONE, {"timerel": "around"}),
        ("GET", f"{TEMPORAL}/entities/urn:ngsi-ld:Vehicle:none", ONE, {}),
        ("GET", MANY, MANY, {"type": "Vehicle", "lastN": "0"}),
        ("DELETE", f"{TEMPORAL}/entities/{EID}/attrs/speed/urn:x", INSTANCE, {}),
    ):  # fmt: skip
        r = await client.request(method, url, params=params, headers=h)
        assert 400 <= r.status < 500, (url, r.status)
        problem = await conforms(doc, method, template, r)
        assert problem["detail"], problem
