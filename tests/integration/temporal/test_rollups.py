"""Hourly rollups (tenant_temporal_rollups.sql) answer exactly what the instances answer.

A hypothesis test writes random instances through POST /temporal/entities (numbers of any
magnitude, strings, two datasets), then changes some (PATCH and DELETE of one instance, DELETE
of a dataset's instances, a partial update with observedAt through the entity API, whose
instance the capture trigger merges into the rollups in its own statement), and compares,
for random aligned queries, the rollup path of TemporalRepository.aggregate with its exact
path over attr_instances — and the rollup table
with the instances it summarises (the attr_rollup_source view). The API answers from the
rollups for those queries: the last check reads the same through HTTP.
"""

from __future__ import annotations

import math
import uuid
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from city_os.api.keys import POOL
from city_os.store.postgres.db import schema_name
from city_os.store.postgres.temporal import InstanceFilter, TemporalRepository
from city_os.store.postgres.temporal_rollups import ROLLED_UP, usable
from city_os.temporal.params import parse_temporal
from tests.integration.temporal.helpers import API, T0, TEMPORAL, Client, create, get, iso

ATTR = "https://uri.etsi.org/ngsi-ld/default-context/level"
_number = st.one_of(
    st.integers(-1000, 1000),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).filter(
        lambda x: x == 0 or abs(x) >= 1e-6  # products of tiny floats fail in PostgreSQL
    ),
    st.floats(1e8, 1e8 + 1, allow_nan=False),  # a large mean, a small spread: stddev's trap
)
_value = st.one_of(_number, _number, _number, st.sampled_from(["low", "high"]))
_instance = st.tuples(_value, st.integers(0, 6 * 60 - 1), st.sampled_from([None, "urn:ds:a"]))
_change = st.one_of(
    st.tuples(st.just("modify"), st.integers(0, 10_000), _number),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("drop-dataset"), st.just(0), st.just(0)),
    st.tuples(st.just("entity-patch"), st.integers(0, 6 * 60 - 1), _value),
)
_query = st.fixed_dictionaries(
    {
        "timerel": st.sampled_from(["between", "after", "before"]),
        "at": st.integers(-1, 5),
        "hours": st.integers(1, 7),
        "period": st.sampled_from([None, "PT1H", "PT2H", "PT3H", "P1D", "P1M", "P1MT1H"]),
        "methods": st.lists(st.sampled_from(sorted(ROLLED_UP)), min_size=1, unique=True),
    }
)


def _body(eid: str, instances: list[tuple[Any, int, str | None]]) -> dict[str, Any]:
    level = []
    for value, minute, dataset in instances:
        inst: dict[str, Any] = {
            "type": "Property",
            "value": value,
            "observedAt": iso(T0 + timedelta(minutes=minute, seconds=7)),
        }
        if dataset:
            inst["datasetId"] = dataset
        level.append(inst)
    return {"id": eid, "type": "Gauge", "level": level}


def _raw(q: dict[str, Any]) -> dict[str, str]:
    at = T0 + timedelta(hours=q["at"])
    raw = {"timerel": q["timerel"], "timeAt": iso(at), "aggrMethods": ",".join(q["methods"])}
    if q["timerel"] == "between":
        raw["endTimeAt"] = iso(at + timedelta(hours=q["hours"]))
    if q["period"]:
        raw["aggrPeriodDuration"] = q["period"]
    return raw


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return bool(a == b)


async def _change_some(
    client: Client, tenant: str, eid: str, changes: list[tuple[str, int, Any]]
) -> None:
    h = {"NGSILD-Tenant": tenant}
    for kind, pick, value in changes:
        if kind == "entity-patch":  # pick: the minute of observedAt
            observed = iso(T0 + timedelta(minutes=pick, seconds=31))
            r = await client.patch(
                f"{API}/entities/{eid}/attrs/level",
                json={"value": value, "observedAt": observed},
                headers=h,
            )
            # 404: no default instance (only urn:ds:a's)
            assert r.status in (204, 404), await r.text()
            continue
        status, body, _ = await get(client, tenant, f"/entities/{eid}", attrs="level")
        instances = body.get("level", []) if status == 200 else []
        if kind == "drop-dataset":
            r = await client.delete(
                f"{TEMPORAL}/entities/{eid}/attrs/level?datasetId=urn:ds:a", headers=h
            )
            assert r.status in (204, 404)
            continue
        if not instances:
            continue
        inst = instances[pick % len(instances)]
        url = f"{TEMPORAL}/entities/{eid}/attrs/level/{inst['instanceId']}"
        if kind == "delete":
            assert (await client.delete(url, headers=h)).status == 204
        else:
            new = {"type": "Property", "value": value, "observedAt": inst["observedAt"]}
            if "datasetId" in inst:
                new["datasetId"] = inst["datasetId"]
            r = await client.patch(url, json={"level": new}, headers=h)
            assert r.status == 204, await r.text()


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    instances=st.lists(_instance, min_size=1, max_size=40),
    changes=st.lists(_change, max_size=4),
    queries=st.lists(_query, min_size=1, max_size=4),
)
async def test_rollups_equal_the_exact_aggregation(
    client: Client,
    instances: list[tuple[Any, int, str | None]],
    changes: list[tuple[str, int, Any]],
    queries: list[dict[str, Any]],
) -> None:
    tenant = "test-" + uuid.uuid4().hex[:12]
    eid = "urn:ngsi-ld:Gauge:" + uuid.uuid4().hex[:8]
    await create(client, tenant, _body(eid, instances))
    await _change_some(client, tenant, eid, changes)
    pool = client.app[POOL]
    schema = schema_name(tenant)
    async with pool.acquire() as conn:
        stored = await conn.fetch(
            f"SELECT * FROM {schema}.attr_rollups ORDER BY entity_id, attr, hour, dataset_id"
        )
        source = await conn.fetch(
            f"SELECT * FROM {schema}.attr_rollup_source ORDER BY entity_id, attr, hour, dataset_id"
        )
    assert [r["hour"] for r in stored] == [r["hour"] for r in source]
    for kept, fresh in zip(stored, source, strict=True):
        for column in ("cnt", "n", "total", "sumsq", "lo", "hi", "m2", "first_t", "last_t"):
            assert _close(kept[column], fresh[column]), (column, dict(kept), dict(fresh))
        assert kept["wild"] == fresh["wild"]
    repo = TemporalRepository(pool)
    for q in queries:
        tq = parse_temporal(_raw(q), aggregated=True)
        assert usable(tq)
        f = InstanceFilter(attrs=(ATTR,), query=tq)
        rolled = await repo.aggregate(schema, [eid], f)
        exact = await repo.aggregate(schema, [eid], f, exact=True)
        assert [(r["dataset_id"], r["start"], r["end"]) for r in rolled] == [
            (r["dataset_id"], r["start"], r["end"]) for r in exact
        ], q
        for a, b in zip(rolled, exact, strict=True):
            for m in q["methods"]:
                assert _close(a[m], b[m]), (q, m, a[m], b[m])


async def test_the_api_answers_aligned_hours_from_the_rollups(client: Client, tenant: str) -> None:
    """Hourly max over 3 h through HTTP equals what the test computes from its instances, and
    the rollup path is the one taken (the statement reads attr_rollups)."""
    eid = "urn:ngsi-ld:Gauge:hourly"
    values = [float(v % 17) for v in range(180)]  # one a minute for 3 h
    await create(client, tenant, _body(eid, [(v, i, None) for i, v in enumerate(values)]))
    raw = {
        "timerel": "between",
        "timeAt": iso(T0),
        "endTimeAt": iso(T0 + timedelta(hours=3)),
        "aggrPeriodDuration": "PT1H",
        "aggrMethods": "max,avg,totalCount",
    }
    status, body, _ = await get(
        client, tenant, f"/entities/{eid}", options="aggregatedValues", **raw
    )
    assert status == 200, body
    hours = [values[h * 60 : (h + 1) * 60] for h in range(3)]
    assert [m[0] for m in body["level"]["max"]] == [max(h) for h in hours]
    assert [m[0] for m in body["level"]["totalCount"]] == [60.0, 60.0, 60.0]
    for got, h in zip(body["level"]["avg"], hours, strict=True):
        assert math.isclose(got[0], sum(h) / 60)
    assert [m[1] for m in body["level"]["max"]] == [iso(T0 + timedelta(hours=h)) for h in range(3)]
    assert usable(parse_temporal(raw, aggregated=True))


async def test_numbers_out_of_the_rollup_range_take_the_exact_path(
    client: Client, tenant: str
) -> None:
    """1e200 cannot be squared in float8 (PostgreSQL raises an error): the write still
    succeeds, the bucket is marked, and min/max come from the instances."""
    eid = "urn:ngsi-ld:Gauge:wild"
    await create(client, tenant, _body(eid, [(1e200, 0, None), (3.0, 1, None), (1e-200, 2, None)]))
    raw = {
        "timerel": "after",
        "timeAt": iso(T0),
        "aggrPeriodDuration": "PT1H",
        "aggrMethods": "max,min,totalCount",
    }
    status, body, _ = await get(
        client, tenant, f"/entities/{eid}", options="aggregatedValues", **raw
    )
    assert status == 200, body
    assert body["level"]["max"][0][0] == 1e200
    assert body["level"]["min"][0][0] == 1e-200
    assert body["level"]["totalCount"][0][0] == 3
