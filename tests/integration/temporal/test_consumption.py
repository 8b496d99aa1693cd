"""Temporal retrieve and query: each timerel and timeproperty, lastN, representations, every
aggregation method checked against values computed here, instance pages."""

from __future__ import annotations

import math
import statistics
from datetime import datetime, timedelta

import pytest

from city_os.api.keys import TEMPORAL
from tests.integration.temporal.helpers import T0, Client, create, get, iso, vehicle

EID = "urn:ngsi-ld:Vehicle:1"
SPEEDS = [10.0, 20.0, 35.0, 35.0, 50.0, 65.0, 80.0, 95.0]  # one per minute from T0


def _speeds(body: dict) -> list[float]:  # type: ignore[type-arg]
    speed = body.get("speed", [])
    return [i["value"] for i in (speed if isinstance(speed, list) else [speed])]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, SPEEDS),
        ({"timerel": "before", "timeAt": iso(T0 + timedelta(minutes=2))}, SPEEDS[:2]),
        ({"timerel": "after", "timeAt": iso(T0 + timedelta(minutes=5))}, SPEEDS[5:]),
        (
            {"timerel": "between", "timeAt": iso(T0 + timedelta(minutes=2)),
             "endTimeAt": iso(T0 + timedelta(minutes=4))},
            SPEEDS[2:4],
        ),
        ({"lastN": "3"}, SPEEDS[-3:]),
        ({"lastN": "2", "timerel": "before", "timeAt": iso(T0 + timedelta(minutes=3))},
         SPEEDS[1:3]),
    ],
)  # fmt: skip
async def test_timerel_and_last_n(
    client: Client, tenant: str, params: dict[str, str], expected: list[float]
) -> None:
    await create(client, tenant, vehicle(EID, SPEEDS))
    status, body, _ = await get(client, tenant, f"/entities/{EID}", **params)
    assert status == 200
    assert _speeds(body) == expected


@pytest.mark.parametrize("prop", ["createdAt", "modifiedAt"])
async def test_system_timeproperties(client: Client, tenant: str, prop: str) -> None:
    await create(client, tenant, vehicle(EID, SPEEDS))
    past = iso(T0)
    status, body, _ = await get(
        client, tenant, f"/entities/{EID}", timerel="after", timeAt=past, timeproperty=prop
    )
    assert status == 200 and sorted(_speeds(body)) == SPEEDS  # all recorded now, after 2020
    status, body, _ = await get(
        client, tenant, f"/entities/{EID}", timerel="before", timeAt=past, timeproperty=prop
    )
    assert status == 200 and "speed" not in body


async def test_deleted_at_shows_deletions(client: Client, tenant: str) -> None:
    h = {"NGSILD-Tenant": tenant}
    entity = {"id": EID, "type": "Vehicle", "speed": {"type": "Property", "value": 3}}
    assert (await client.post("/ngsi-ld/v1/entities", json=entity, headers=h)).status == 201
    r = await client.delete(f"/ngsi-ld/v1/entities/{EID}/attrs/speed", headers=h)
    assert r.status == 204
    status, body, _ = await get(client, tenant, f"/entities/{EID}", timeproperty="deletedAt")
    assert status == 200
    [deletion] = body["speed"]
    assert deletion["value"] == "urn:ngsi-ld:null" and "deletedAt" in deletion
    status, body, _ = await get(client, tenant, f"/entities/{EID}")
    assert [i.get("deletedAt") is not None for i in body["speed"]] == [False, True]


async def test_temporal_values(client: Client, tenant: str) -> None:
    await create(client, tenant, vehicle(EID, SPEEDS[:3]))
    status, body, _ = await get(client, tenant, f"/entities/{EID}", options="temporalValues")
    assert status == 200
    assert body["speed"] == {
        "type": "Property",
        "values": [[v, iso(T0 + timedelta(minutes=i))] for i, v in enumerate(SPEEDS[:3])],
    }
    status, simplified, _ = await get(client, tenant, f"/entities/{EID}", format="simplified")
    assert simplified == body


def _expected(method: str, values: list[float]) -> float:
    return {
        "totalCount": float(len(values)),
        "distinctCount": float(len(set(values))),
        "sum": sum(values),
        "avg": statistics.fmean(values),
        "min": min(values),
        "max": max(values),
        "stddev": statistics.stdev(values) if len(values) > 1 else math.nan,
        "sumsq": sum(v * v for v in values),
    }[method]


@pytest.mark.parametrize(
    "method", ["totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq"]
)
async def test_each_aggregation_method(client: Client, tenant: str, method: str) -> None:
    await create(client, tenant, vehicle(EID, SPEEDS))
    status, body, _ = await get(
        client, tenant, f"/entities/{EID}",
        options="aggregatedValues", aggrMethods=method, aggrPeriodDuration="PT3M",
    )  # fmt: skip
    assert status == 200, body
    periods = body["speed"][method]
    assert [p[1] for p in periods] == [iso(T0 + timedelta(minutes=m)) for m in (0, 3, 6)]
    assert [p[2] for p in periods] == [iso(T0 + timedelta(minutes=m)) for m in (3, 6, 9)]
    for (value, *_), chunk in zip(periods, (SPEEDS[0:3], SPEEDS[3:6], SPEEDS[6:]), strict=True):
        assert value == pytest.approx(_expected(method, chunk))


async def test_aggregation_over_a_type_in_one_request(client: Client, tenant: str) -> None:
    for n in range(3):
        await create(client, tenant, vehicle(f"urn:ngsi-ld:Vehicle:{n}", [n * 10.0, n * 10.0 + 4]))
    status, body, _ = await get(
        client, tenant, "/entities", type="Vehicle", attrs="speed",
        options="aggregatedValues", aggrMethods="max,min",
    )  # fmt: skip
    assert status == 200
    assert [(e["speed"]["min"][0][0], e["speed"]["max"][0][0]) for e in body] == [
        (0.0, 4.0), (10.0, 14.0), (20.0, 24.0),
    ]  # fmt: skip


async def test_instance_pages_see_every_instance_once(client: Client, tenant: str) -> None:
    """With more instances than a page holds: 206 and a Content-Range; asking on from after
    the range end returns the rest, every instance exactly once."""
    values = [float(i) for i in range(25)]
    body = vehicle(EID, values)
    body["speed"][11]["observedAt"] = body["speed"][10]["observedAt"]  # a tie at the cut
    await create(client, tenant, body)
    service = client.app[TEMPORAL]
    original, service.max_instances = service.max_instances, 11
    seen: list[float] = []
    start, end = iso(T0 - timedelta(days=1)), iso(T0 + timedelta(days=1))
    try:
        for _ in range(10):
            status, page, headers = await get(
                client, tenant, f"/entities/{EID}", timerel="between", timeAt=start, endTimeAt=end
            )
            seen += _speeds(page)
            if status == 200:
                break
            assert status == 206
            unit, _, span = headers["Content-Range"].partition(" ")
            assert unit == "date-time" and span.endswith("/*")
            last = page["speed"][-1]["observedAt"]
            assert span[:-2].endswith(last)
            start = iso(datetime.fromisoformat(last.replace("Z", "+00:00")) + timedelta(seconds=1))
    finally:
        service.max_instances = original
    assert seen == values


async def test_query_selects_by_type_q_and_tenant(client: Client, tenant: str) -> None:
    await create(client, tenant, vehicle("urn:ngsi-ld:Vehicle:slow", [10.0, 20.0]))
    await create(client, tenant, vehicle("urn:ngsi-ld:Vehicle:fast", [100.0, 120.0]))
    status, body, _ = await get(client, tenant, "/entities", type="Vehicle", q="speed>50")
    assert status == 200 and [e["id"] for e in body] == ["urn:ngsi-ld:Vehicle:fast"]
    status, body, headers = await get(client, tenant, "/entities", type="Vehicle", count="true")
    assert status == 200 and headers["NGSILD-Results-Count"] == "2"
    status, body, _ = await get(client, tenant + "-other", "/entities", type="Vehicle")
    assert status == 404 and body["type"].endswith("NonexistentTenant")
    r = await client.post(
        "/ngsi-ld/v1/temporal/entityOperations/query",
        json={
            "type": "Query", "entities": [{"type": "Vehicle"}], "q": "speed<50",
            "temporalQ": {"timerel": "after", "timeAt": iso(T0), "lastN": 1},
        },
        headers={"NGSILD-Tenant": tenant},
    )  # fmt: skip
    assert r.status == 200
    [slow] = await r.json()
    assert slow["id"] == "urn:ngsi-ld:Vehicle:slow" and _speeds(slow) == [20.0]


async def test_csv_for_spreadsheets(client: Client, tenant: str) -> None:
    await create(client, tenant, vehicle(EID, SPEEDS[:2]))
    h = {"NGSILD-Tenant": tenant, "Accept": "text/csv"}
    r = await client.get(f"/ngsi-ld/v1/temporal/entities/{EID}", headers=h)
    assert r.status == 200 and r.content_type == "text/csv"
    assert (await r.text()).splitlines() == [
        "entityId,attribute,datasetId,time,value",
        f"{EID},speed,,{iso(T0)},10.0",
        f"{EID},speed,,{iso(T0 + timedelta(minutes=1))},20.0",
    ]
    r = await client.get(
        "/ngsi-ld/v1/temporal/entities",
        params={"type": "Vehicle", "options": "aggregatedValues", "aggrMethods": "max"},
        headers=h,
    )
    assert (await r.text()).splitlines() == [
        "entityId,attribute,datasetId,method,start,end,value",
        f"{EID},speed,,max,{iso(T0)},{iso(T0 + timedelta(minutes=1))},20.0",
    ]
