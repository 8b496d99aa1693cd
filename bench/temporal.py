"""Temporal scenarios (issue #11): 100 entities × 10,000 instances, three reads, capture cost.

Layer: bench/. One tenant (``bench-temporal``) gets 100 RiverGauge temporal entities through
``POST /temporal/entities`` (the first instance each), then 10,000 ``waterLevel`` instances per
entity, one a minute (≈ 7 days), straight into attr_instances with one INSERT … SELECT
generate_series (loading is not what is measured), then ``VACUUM ANALYZE``. Measured, each next
to its SQL ceiling (the statements TemporalRepository issues, recorded with a fake pool, run
through raw asyncpg at the same concurrency):

* (a) one entity's last day, ``timerel=between`` (1,440 instances, normalized);
* (b) an hourly ``avg`` over a week for one entity (168 periods);
* (c) an hourly ``max`` over a day for all 100 entities, one request (2,400 periods);

plus storage per instance (table + indexes, bytes) and the cost of history capture: creates and
partial updates with capture on, then in a tenant with capture off (``temporal-settings``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import asyncpg
import orjson

from bench.ceilings import Statement
from bench.runner import Measured, Runner
from bench.workload import PREFIX, Scenario
from city_os.store.postgres.db import Tenants, schema_name
from city_os.store.postgres.temporal import InstanceFilter, TemporalRepository
from city_os.temporal.params import parse_temporal

TENANT = "bench-temporal"
ENTITIES = 100
PER_ENTITY = 10_000
ATTR = "https://uri.etsi.org/ngsi-ld/default-context/waterLevel"
START = datetime(2026, 11, 1, tzinfo=UTC)
END = START + timedelta(minutes=PER_ENTITY)
TARGETS_MS = {"range": 50.0, "avg-week": 50.0, "max-day-all": 100.0}
CAPTURE_TARGET = 0.20  # capture may cost at most 20 % of create / update throughput
CONCURRENCY = 4


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def gauge_id(n: int) -> str:
    return f"urn:ngsi-ld:RiverGauge:bench-{n:03d}"


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    path: str
    params: dict[str, str]
    ids: tuple[str, ...]
    aggregated: bool

    @property
    def url(self) -> str:
        return f"{PREFIX}/temporal/{self.path}?{urlencode(self.params, quote_via=quote, safe=',')}"


_DAY = {"timerel": "between", "timeAt": _iso(END - timedelta(days=1)), "endTimeAt": _iso(END)}
_WEEK = {"timerel": "between", "timeAt": _iso(END - timedelta(days=7)), "endTimeAt": _iso(END)}
_HOURLY = {"options": "aggregatedValues", "aggrPeriodDuration": "PT1H"}
CASES = (
    Case("range", "(a) one entity, last day (1,440 instances)", f"entities/{gauge_id(7)}",
         {**_DAY, "attrs": "waterLevel"}, (gauge_id(7),), False),
    Case("avg-week", "(b) one entity, hourly avg over a week", f"entities/{gauge_id(7)}",
         {**_WEEK, **_HOURLY, "attrs": "waterLevel", "aggrMethods": "avg"}, (gauge_id(7),), True),
    Case("max-day-all", "(c) 100 entities, hourly max over a day", "entities",
         {**_DAY, **_HOURLY, "type": "RiverGauge", "attrs": "waterLevel", "aggrMethods": "max",
          "limit": "100"}, tuple(gauge_id(n) for n in range(ENTITIES)), True),
)  # fmt: skip


@dataclass
class TemporalResults:
    load_seconds: float = 0.0
    instances: int = 0
    bytes_per_instance: float = 0.0
    api: dict[str, Measured] = field(default_factory=dict)
    sql: dict[str, Measured] = field(default_factory=dict)
    capture: dict[str, Measured] = field(default_factory=dict)  # create-on, create-off, …


async def _post(http: aiohttp.ClientSession, url: str, body: Any, tenant: str) -> int:
    headers = {"NGSILD-Tenant": tenant, "Content-Type": "application/json"}
    async with http.post(url, data=orjson.dumps(body), headers=headers) as r:
        return r.status


async def load(port: int, dsn: str) -> tuple[float, int]:
    """The entities through the API, their history by SQL; seconds and instances loaded."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        for n in range(ENTITIES):
            body = {
                "id": gauge_id(n),
                "type": "RiverGauge",
                "waterLevel": {"type": "Property", "value": 1.0, "observedAt": _iso(START)},
            }
            status = await _post(
                http, f"http://127.0.0.1:{port}{PREFIX}/temporal/entities", body, TENANT
            )
            if status != 201:
                raise SystemExit(f"temporal: creating {gauge_id(n)} answered {status}")
    schema = schema_name(TENANT)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            f"""INSERT INTO {schema}.attr_instances (entity_id, attr, observed_at, created_at,
                modified_at, num, inst)
            SELECT e.id, $1, $2::timestamptz + m * interval '1 minute', now(), now(), v,
                   jsonb_build_object('type', 'Property', 'value', v)
            FROM temporal_entities_ids e, generate_series(1, $3 - 1) m,
                 LATERAL (SELECT round((2 + sin(m / 60.0) + e.k / 100.0)::numeric, 3)::float8
                          AS v) x""".replace(
                "temporal_entities_ids e",
                f"(SELECT id, row_number() OVER (ORDER BY id) AS k"
                f" FROM {schema}.temporal_entities) e",
            ),
            ATTR,
            START,
            PER_ENTITY,
        )
        await conn.execute(f"VACUUM ANALYZE {schema}.attr_instances")
        count = await conn.fetchval(f"SELECT count(*) FROM {schema}.attr_instances")
    finally:
        await conn.close()
    return time.monotonic() - started, int(count)


async def storage(dsn: str) -> float:
    """Bytes per instance: every partition's table, TOAST and indexes over the row count."""
    schema = schema_name(TENANT)
    conn = await asyncpg.connect(dsn)
    try:
        size = await conn.fetchval(
            "SELECT sum(pg_total_relation_size(i.inhrelid)) FROM pg_inherits i"
            " WHERE i.inhparent = $1::regclass",
            f"{schema}.attr_instances",
        )
        rows = await conn.fetchval(f"SELECT count(*) FROM {schema}.attr_instances")
    finally:
        await conn.close()
    return float(size) / rows if rows else 0.0


class _Recorder:
    """A pool that records the statements a TemporalRepository call issues."""

    def __init__(self) -> None:
        self.statements: list[Statement] = []

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[_Recorder]:
        yield self

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        self.statements.append((sql, list(args)))
        return []


def statements(case: Case) -> list[Statement]:
    """The instance (or aggregation) statement TemporalRepository issues for ``case``."""
    recorder = _Recorder()
    repo = TemporalRepository(recorder)  # type: ignore[arg-type]
    aggregated = case.aggregated
    raw = {k: v for k, v in case.params.items() if k not in ("options", "type", "attrs", "limit")}
    f = InstanceFilter(attrs=(ATTR,), query=parse_temporal(raw, aggregated=aggregated))
    schema = schema_name(TENANT)
    ids = list(case.ids)
    if aggregated:
        asyncio.run(repo.aggregate(schema, ids, f))
    else:
        asyncio.run(repo.instances(schema, ids, f, 10_000))
    return recorder.statements


async def _check(port: int) -> None:
    async with aiohttp.ClientSession() as http:
        for case in CASES:
            url = f"http://127.0.0.1:{port}{case.url}"
            async with http.get(url, headers={"NGSILD-Tenant": TENANT}) as r:
                body = await r.json()
                if r.status != 200:
                    raise SystemExit(f"temporal: {case.key} answered {r.status}: {body}")
            if case.key == "range" and len(body["waterLevel"]) != 1440:
                raise SystemExit(f"temporal: range returned {len(body['waterLevel'])} instances")
            if case.key == "max-day-all" and len(body) != ENTITIES:
                raise SystemExit(f"temporal: max-day-all returned {len(body)} entities")


async def _capture_tenant(dsn: str, tenant: str, capture: bool) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        schema = await Tenants(pool).schema(tenant, create=True)
        await TemporalRepository(pool).configure(
            tenant, schema, capture=capture, retention_days=None
        )
    finally:
        await pool.close()


def run(runner: Runner, port: int, pids: list[int], dsn: str) -> TemporalResults:
    out = TemporalResults()
    out.load_seconds, out.instances = asyncio.run(load(port, dsn))
    out.bytes_per_instance = asyncio.run(storage(dsn))
    asyncio.run(_check(port))
    for case in CASES:
        sc = Scenario("query", path=case.url, tenant=TENANT)
        out.api[case.key] = runner.http(
            port, sc, pids, f"temporal-{case.key}", concurrency=CONCURRENCY
        )
        out.sql[case.key] = runner.sql(
            dsn, statements(case), f"temporal-sql-{case.key}", CONCURRENCY
        )
    # Capture on, then off, in the default tenant (the foundation workload's requests carry
    # no NGSILD-Tenant for updates); capture is switched back on afterwards.
    for state in ("on", "off"):
        asyncio.run(_capture_tenant(dsn, "", state == "on"))
        create = Scenario("create", prefix=f"t{state}-")
        out.capture[f"create-{state}"] = runner.http(port, create, pids, f"capture-create-{state}")
        update = Scenario(
            "update", prefix=f"t{state}-u-", seed_prefix=f"t{state}-",
            existing=out.capture[f"create-{state}"].result.sent,
        )  # fmt: skip
        out.capture[f"update-{state}"] = runner.http(port, update, pids, f"capture-update-{state}")
    asyncio.run(_capture_tenant(dsn, "", True))
    return out


def print_results(res: TemporalResults) -> None:
    print(
        f"\nTemporal: {ENTITIES} entities × {PER_ENTITY:,} instances = {res.instances:,} instances"
        f" loaded in {res.load_seconds:.1f} s; storage {res.bytes_per_instance:.0f} bytes per"
        f" instance (table + indexes); {CONCURRENCY} connections"
    )
    for case in CASES:
        api, sql = res.api[case.key].result, res.sql[case.key].result
        target = TARGETS_MS[case.key]
        verdict = "PASS" if api.p95_ms <= target else "MISS"
        print(
            f"  {case.label:<44} p50 {api.p50_ms:6.1f}  p95 {api.p95_ms:6.1f} ms"
            f" ({api.rate():5.0f}/s, errors {api.errors});  SQL ceiling p95 {sql.p95_ms:6.1f} ms"
            f" ({sql.rate():5.0f}/s);  target p95 ≤ {target:g} ms  {verdict}"
        )
    for kind in ("create", "update"):
        on, off = res.capture[f"{kind}-on"].result, res.capture[f"{kind}-off"].result
        cost = off.rate() / on.rate() - 1 if on.rate() else float("inf")
        verdict = "PASS" if cost <= CAPTURE_TARGET else "MISS"
        print(
            f"  capture cost, {kind:<6}: on {on.rate():6.0f}/s, off {off.rate():6.0f}/s"
            f" (errors {on.errors}/{off.errors}) → +{100 * cost:.1f} % time per {kind};"
            f" target ≤ {100 * CAPTURE_TARGET:.0f} %  {verdict}"
        )
