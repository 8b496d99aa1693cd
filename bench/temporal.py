"""Temporal scenarios (issue #11): 100 entities × 10,000 instances, three reads, capture cost.

Layer: bench/. One tenant (``bench-temporal``) gets 100 RiverGauge temporal entities through
``POST /temporal/entities`` (the first instance each), then 10,000 ``waterLevel`` instances per
entity, one a minute (≈ 7 days), straight into attr_instances with one INSERT … SELECT
generate_series (loading is not what is measured; the rollup trigger runs as for any write),
then ``VACUUM ANALYZE``. Measured, each next to its SQL ceiling (the statements
TemporalRepository issues, recorded with a fake pool, run through raw asyncpg at the same
concurrency) and the 1-minute load average before it:

* (a) one entity's last day, ``timerel=between`` (1,440 instances, normalized);
* (b) an hourly ``avg`` over a week for one entity (166 periods);
* (c) an hourly ``max`` over a day for all 100 entities, one request (2,400 periods);

the windows end on the last whole hour of the data (a dashboard's "last 24 h" by the hour), so
(b) and (c) are answered from the hourly rollups; (b') and (c') ask the same 40 minutes off the
hour, which only the exact path over the instances can answer (no target: printed to show it).
Then storage per instance (instances table + indexes; the rollups apart) and the cost of history
capture: creates, partial updates, and partial updates carrying observedAt (which feed the
rollups) with capture on and off (``temporal-settings``), alternating on/off/off/on so that a
change of machine load between runs weighs on both.
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
from bench.workload import _PATCH_TAIL, PREFIX, UPDATED_ATTR, Scenario, _with_body, entity_id
from city_os.store.postgres.db import Tenants, schema_name
from city_os.store.postgres.temporal import InstanceFilter, TemporalRepository
from city_os.temporal.params import parse_temporal

TENANT = "bench-temporal"
ENTITIES = 100
PER_ENTITY = 10_000
ATTR = "https://uri.etsi.org/ngsi-ld/default-context/waterLevel"
START = datetime(2026, 11, 1, tzinfo=UTC)
END = START + timedelta(minutes=PER_ENTITY)  # 166 h 40 min after START
END_HOUR = START + timedelta(hours=PER_ENTITY // 60)  # the last whole hour of the data
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


def _window(end: datetime, days: int) -> dict[str, str]:
    return {
        "timerel": "between",
        "timeAt": _iso(end - timedelta(days=days)),
        "endTimeAt": _iso(end),
    }


_DAY, _WEEK = _window(END_HOUR, 1), _window(END_HOUR, 7)
_DAY_OFF, _WEEK_OFF = _window(END, 1), _window(END, 7)  # 40 minutes off the hour
_HOURLY = {"options": "aggregatedValues", "aggrPeriodDuration": "PT1H"}
_ALL = tuple(gauge_id(n) for n in range(ENTITIES))
_ONE = f"entities/{gauge_id(7)}"
_MAX_ALL = {"type": "RiverGauge", "attrs": "waterLevel", "aggrMethods": "max", "limit": "100"}
CASES = (
    Case("range", "(a) one entity, last day (1,440 instances)", _ONE,
         {**_DAY, "attrs": "waterLevel"}, (gauge_id(7),), False),
    Case("avg-week", "(b) one entity, hourly avg over a week", _ONE,
         {**_WEEK, **_HOURLY, "attrs": "waterLevel", "aggrMethods": "avg"}, (gauge_id(7),), True),
    Case("max-day-all", "(c) 100 entities, hourly max over a day", "entities",
         {**_DAY, **_HOURLY, **_MAX_ALL}, _ALL, True),
    Case("avg-week-off", "(b') as (b), off the hour: exact path", _ONE,
         {**_WEEK_OFF, **_HOURLY, "attrs": "waterLevel", "aggrMethods": "avg"}, (gauge_id(7),),
         True),
    Case("max-day-all-off", "(c') as (c), off the hour: exact path", "entities",
         {**_DAY_OFF, **_HOURLY, **_MAX_ALL}, _ALL, True),
)  # fmt: skip


@dataclass
class TemporalResults:
    load_seconds: float = 0.0
    instances: int = 0
    bytes_per_instance: float = 0.0
    rollup_bytes_per_instance: float = 0.0
    rollup_rows: int = 0
    api: dict[str, Measured] = field(default_factory=dict)
    sql: dict[str, Measured] = field(default_factory=dict)
    capture: dict[str, list[Measured]] = field(default_factory=dict)  # create-on: runs


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


async def storage(dsn: str) -> tuple[float, float, int]:
    """Bytes per instance of every partition's table, TOAST and indexes, and of the rollups
    (table + primary key) over the same instance count; the rollup rows."""
    schema = schema_name(TENANT)
    conn = await asyncpg.connect(dsn)
    try:
        size = await conn.fetchval(
            "SELECT sum(pg_total_relation_size(i.inhrelid)) FROM pg_inherits i"
            " WHERE i.inhparent = $1::regclass",
            f"{schema}.attr_instances",
        )
        rollups = await conn.fetchval(
            "SELECT pg_total_relation_size($1::regclass)", f"{schema}.attr_rollups"
        )
        rows = await conn.fetchval(f"SELECT count(*) FROM {schema}.attr_instances")
        buckets = await conn.fetchval(f"SELECT count(*) FROM {schema}.attr_rollups")
    finally:
        await conn.close()
    if not rows:
        return 0.0, 0.0, 0
    return float(size) / rows, float(rollups) / rows, int(buckets)


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
        asyncio.run(repo.aggregate(schema, ids, f, packed=True))
    else:
        asyncio.run(repo.instances(schema, ids, f, 10_000, audit=False))  # as the API
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
            if case.key.startswith("max-day-all"):
                periods = {len(e["waterLevel"]["max"]) for e in body}
                if len(body) != ENTITIES or periods != {24}:
                    raise SystemExit(f"temporal: {case.key}: {len(body)} entities, {periods}")


async def _capture_tenant(dsn: str, tenant: str, capture: bool) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        schema = await Tenants(pool).schema(tenant, create=True)
        await TemporalRepository(pool).configure(
            tenant, schema, capture=capture, retention_days=None
        )
    finally:
        await pool.close()


def observed_updates(seed_prefix: str, existing: int, count: int = 2000) -> tuple[bytes, ...]:
    """Partial updates of ``temperature`` carrying observedAt (one a minute from START), spread
    over the ``existing`` entities: what a sensor gateway sends; each feeds the rollups."""
    out = []
    for seq in range(count):
        eid = entity_id(seed_prefix, seq % max(existing, 1))
        observed = _iso(START + timedelta(minutes=seq))
        body = orjson.dumps({"value": seq % 400 / 10, "observedAt": observed})
        head = f"PATCH {PREFIX}/entities/{eid}/attrs/{UPDATED_ATTR}".encode() + _PATCH_TAIL
        out.append(_with_body(head, body))
    return tuple(out)


CAPTURE_ORDER = ("on", "off", "off", "on")  # a drift in machine load weighs on both states
CAPTURE_KINDS = ("create", "update", "update-observed")


def run(runner: Runner, port: int, pids: list[int], dsn: str) -> TemporalResults:
    out = TemporalResults()
    out.load_seconds, out.instances = asyncio.run(load(port, dsn))
    out.bytes_per_instance, out.rollup_bytes_per_instance, out.rollup_rows = asyncio.run(
        storage(dsn)
    )
    asyncio.run(_check(port))
    for case in CASES:
        sc = Scenario("query", path=case.url, tenant=TENANT)
        out.api[case.key] = runner.http(
            port, sc, pids, f"temporal-{case.key}", concurrency=CONCURRENCY
        )
        out.sql[case.key] = runner.sql(
            dsn, statements(case), f"temporal-sql-{case.key}", CONCURRENCY
        )
    # Capture on and off in the default tenant (the foundation workload's requests carry no
    # NGSILD-Tenant for updates); capture is switched back on afterwards.
    for i, state in enumerate(CAPTURE_ORDER):
        asyncio.run(_capture_tenant(dsn, "", state == "on"))
        prefix = f"t{state}{i}-"
        created = runner.http(port, Scenario("create", prefix=prefix), pids, f"capture-create-{i}")
        sent = created.result.sent
        update = Scenario("update", prefix=f"{prefix}u-", seed_prefix=prefix, existing=sent)
        updated = runner.http(port, update, pids, f"capture-update-{i}")
        observed = Scenario("update", requests=observed_updates(prefix, sent), status=204)
        fed = runner.http(port, observed, pids, f"capture-observed-{i}")
        for kind, m in zip(CAPTURE_KINDS, (created, updated, fed), strict=True):
            out.capture.setdefault(f"{kind}-{state}", []).append(m)
    asyncio.run(_capture_tenant(dsn, "", True))
    return out


def _rate(runs: list[Measured]) -> tuple[float, int, float]:
    """Requests per second over all runs of one state, their errors, their mean load."""
    ops = sum(m.result.ops for m in runs)
    seconds = sum(m.result.seconds for m in runs)
    errors = sum(m.result.errors for m in runs)
    return (ops / seconds if seconds else 0.0), errors, sum(m.load1 for m in runs) / len(runs)


def print_results(res: TemporalResults) -> None:
    print(
        f"\nTemporal: {ENTITIES} entities × {PER_ENTITY:,} instances = {res.instances:,} instances"
        f" loaded in {res.load_seconds:.1f} s; storage {res.bytes_per_instance:.0f} bytes per"
        f" instance (instance tables + indexes) + {res.rollup_bytes_per_instance:.1f} bytes per"
        f" instance of hourly rollups ({res.rollup_rows:,} rows); {CONCURRENCY} connections"
    )
    for case in CASES:
        api, sql = res.api[case.key].result, res.sql[case.key].result
        target = TARGETS_MS.get(case.key)
        verdict = (
            f"target p95 ≤ {target:g} ms  {'PASS' if api.p95_ms <= target else 'MISS'}"
            if target is not None
            else "(no target)"
        )
        print(
            f"  {case.label:<44} p50 {api.p50_ms:6.1f}  p95 {api.p95_ms:6.1f} ms"
            f" ({api.rate():5.0f}/s, errors {api.errors});  SQL ceiling p95 {sql.p95_ms:6.1f} ms"
            f" ({sql.rate():5.0f}/s);  load {res.api[case.key].load1:.1f}/"
            f"{res.sql[case.key].load1:.1f};  {verdict}"
        )
    for kind in CAPTURE_KINDS:
        on, on_errors, on_load = _rate(res.capture[f"{kind}-on"])
        off, off_errors, off_load = _rate(res.capture[f"{kind}-off"])
        cost = off / on - 1 if on else float("inf")
        goal = f"target ≤ {100 * CAPTURE_TARGET:.0f} %"
        verdict = "PASS" if cost <= CAPTURE_TARGET else "MISS"
        print(
            f"  capture cost, {kind:<15}: on {on:6.0f}/s, off {off:6.0f}/s"
            f" (errors {on_errors}/{off_errors}; load {on_load:.1f}/{off_load:.1f})"
            f" → +{100 * cost:.1f} % time per request; {goal}  {verdict}"
        )
