"""Bad temporal input: a ProblemDetails 400/404 naming the parameter, nothing written."""

from __future__ import annotations

import pytest

from tests.integration.temporal.helpers import TEMPORAL, Client, create, get, vehicle

EID = "urn:ngsi-ld:Vehicle:1"


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"timerel": "during", "timeAt": "2020-01-01T00:00:00Z"}, "timerel"),
        ({"timerel": "before"}, "timeAt"),
        ({"timerel": "between", "timeAt": "2020-01-01T00:00:00Z"}, "endTimeAt"),
        ({"timerel": "after", "timeAt": "yesterday"}, "timeAt"),
        ({"timeAt": "2020-01-01T00:00:00Z"}, "timerel"),
        ({"timeproperty": "seenAt"}, "timeproperty"),
        ({"lastN": "0"}, "lastN"),
        ({"lastN": "1.5"}, "lastN"),
        ({"options": "aggregatedValues", "aggrMethods": "median"}, "aggrMethods"),
        ({"options": "aggregatedValues"}, "aggrMethods"),
        ({"options": "aggregatedValues", "aggrMethods": "avg", "aggrPeriodDuration": "1h"},
         "aggrPeriodDuration"),
        ({"attrs": "speed{name}"}, "attrs"),
    ],
)  # fmt: skip
async def test_bad_parameters_are_400(
    client: Client, tenant: str, params: dict[str, str], named: str
) -> None:
    await create(client, tenant, vehicle(EID, [1.0]))
    status, body, _ = await get(client, tenant, f"/entities/{EID}", **params)
    assert status == 400, body
    assert body["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    assert named in body["detail"]


async def test_unknown_entity_and_instance_are_404(client: Client, tenant: str) -> None:
    await create(client, tenant, vehicle(EID, [1.0]))
    status, body, _ = await get(client, tenant, "/entities/urn:ngsi-ld:Vehicle:none")
    assert status == 404 and body["type"].endswith("ResourceNotFound")
    h = {"NGSILD-Tenant": tenant}
    missing = "urn:ngsi-ld:attribute:instance:00000000-0000-0000-0000-000000000000"
    r = await client.delete(f"{TEMPORAL}/entities/{EID}/attrs/speed/{missing}", headers=h)
    assert r.status == 404
    r = await client.patch(
        f"{TEMPORAL}/entities/{EID}/attrs/speed/not-an-instance",
        json={"speed": {"type": "Property", "value": 2}},
        headers=h,
    )
    assert r.status == 400  # not a URI
    r = await client.patch(
        f"{TEMPORAL}/entities/{EID}/attrs/speed/urn:ngsi-ld:attribute:instance:x",
        json={"speed": {"type": "Property", "value": 2}},
        headers=h,
    )
    assert r.status == 404  # a URI no instance has


async def test_bad_entity_writes_nothing(client: Client, tenant: str) -> None:
    body = vehicle(EID, [1.0, 2.0])
    body["speed"].append({"type": "Property"})  # no value
    r = await client.post(f"{TEMPORAL}/entities", json=body, headers={"NGSILD-Tenant": tenant})
    assert r.status == 400
    await create(client, tenant, vehicle("urn:ngsi-ld:Vehicle:other", [1.0]))
    status, _, _ = await get(client, tenant, f"/entities/{EID}")
    assert status == 404


@pytest.mark.parametrize(
    ("temporal_q", "named"),
    [
        ({"timerel": {}, "timeAt": "2020-01-01T00:00:00Z"}, "timerel"),
        ({"timerel": ["after"], "timeAt": "2020-01-01T00:00:00Z"}, "timerel"),
        ({"timeproperty": {"a": 1}}, "timeproperty"),
        ({"timeproperty": ["observedAt"]}, "timeproperty"),
    ],
)
async def test_temporal_q_members_of_the_wrong_type_are_400(
    client: Client, tenant: str, temporal_q: dict[str, object], named: str
) -> None:
    """Found by fuzzing: an object or array where temporalQ has a string was a 500."""
    await create(client, tenant, vehicle(EID, [1.0]))
    r = await client.post(
        f"{TEMPORAL}/entityOperations/query",
        json={"type": "Query", "entities": [{"type": "Vehicle"}], "temporalQ": temporal_q},
        headers={"NGSILD-Tenant": tenant},
    )
    body = await r.json()
    assert r.status == 400, body
    assert body["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    assert named in body["detail"]
