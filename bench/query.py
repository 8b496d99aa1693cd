"""Query scenarios (issue "Query engine"): load 100,000 entities, then time four queries.

Layer: bench/. The data set (``bench.dataset``) goes in through the API's batch endpoint (1,000
entities a request, load time measured) into its own tenant, then ``VACUUM ANALYZE`` (what
autovacuum gives a production table: statistics and a visibility map). Each query is checked
first (200, a full page, the right entities, the count the data set implies), then measured at
``limit=20``, alone and at 8 connections, next to its SQL ceiling: the very statements the server
issues (captured from ``QueryRepository.page`` with a recording pool, so they cannot drift from
the project's SQL) run through raw asyncpg at the same concurrency. ``EXPLAIN (ANALYZE,
BUFFERS)`` of those statements is printed for every scenario that misses its p95 target.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote, urlencode

import aiohttp
import asyncpg
import orjson

from bench import dataset, guard
from bench.ceilings import Statement
from bench.runner import Measured, Runner
from bench.workload import PREFIX, Scenario
from city_os.core.contexts import bundled_documents
from city_os.ngsild.entity import expand_attr_name
from city_os.ngsild.jsonld import CORE_CONTEXT_URL, TermMap
from city_os.ngsild.query.entity_selection import EntitySelector, Names, Selection
from city_os.ngsild.query.geo import parse_geoq
from city_os.ngsild.query.q import parse_q
from city_os.ngsild.query.type_selection import parse_type_selection
from city_os.store.postgres.indexes import ValueIndexRepository
from city_os.store.postgres.query import QueryRepository, Visible

TENANT = "bench-query"
QUERY_TYPE = "WeatherObserved"  # last in id order: the worst case for a walk along the id index
PARENT = dataset.parent_id(42)
CENTRE = (130.30, 33.26)
RADIUS = 2000.0
LIMIT = 20
TARGET_P95_MS = 25.0
INDEXED = "temperature"  # the attribute with value indexes (cityos/v1/indexes)
LOAD_BATCH = 1000
LOAD_CONCURRENCY = 2


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    params: dict[str, str]

    @property
    def path(self) -> str:
        query = urlencode({**self.params, "limit": str(LIMIT)}, quote_via=quote, safe=",")
        return f"{PREFIX}/entities?{query}"


CASES = (
    Case("type+q", "(a) type + q=temperature>30", {"type": QUERY_TYPE, "q": "temperature>30"}),
    Case("rel", "(b) q=refParent==parent", {"q": f'refParent=="{PARENT}"'}),
    Case(
        "geo",
        "(c) near;maxDistance==2000",
        {
            "georel": f"near;maxDistance=={RADIUS:g}",
            "geometry": "Point",
            "coordinates": f"[{CENTRE[0]:.2f},{CENTRE[1]:.2f}]",
        },
    ),
    Case(
        "count",
        "(d) type + q + count=true",
        {"type": QUERY_TYPE, "q": "temperature>30", "count": "true"},
    ),
)


@dataclass
class QueryResults:
    load_seconds: float = 0.0
    loaded: int = 0
    expected: dict[str, int] = field(default_factory=dict)  # matches in the data set
    api: dict[str, Measured] = field(default_factory=dict)
    alone: dict[str, Measured] = field(default_factory=dict)  # one connection
    sql: dict[str, Measured] = field(default_factory=dict)
    index_seconds: float = 0.0
    plans: dict[str, list[str]] = field(default_factory=dict)
    concurrency: int = 0
    load1: float = 0.0  # before the load


def expected_matches() -> dict[str, int]:
    hot = near = rel = 0
    for s in dataset.sensors():
        hot += s.type == QUERY_TYPE and s.temperature > 30
        rel += s.parent == PARENT
        near += dataset.metres(s.lon, s.lat, *CENTRE) <= RADIUS
    return {"type+q": hot, "rel": rel, "geo": near, "count": hot}


# ------------------------------------------------------------------------------------ loading


def _batches() -> list[bytes]:
    docs = [dataset.normalized(s, n) for n, s in enumerate(dataset.sensors())]
    docs += dataset.districts()
    return [orjson.dumps(docs[i : i + LOAD_BATCH]) for i in range(0, len(docs), LOAD_BATCH)]


async def load(port: int, headers: dict[str, str] | None = None) -> tuple[float, int]:
    """POST every batch (``LOAD_CONCURRENCY`` in flight); seconds and entities loaded.
    ``headers``: the tenant (and credentials) to load into; default: this group's tenant."""
    bodies = _batches()
    url = f"http://127.0.0.1:{port}{PREFIX}/entityOperations/create"
    headers = {"Content-Type": "application/json", **(headers or {"NGSILD-Tenant": TENANT})}
    queue = list(reversed(bodies))
    async with aiohttp.ClientSession() as http:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                async with http.post(url, data=body, headers=headers) as resp:
                    if resp.status != 201:
                        raise SystemExit(f"query data load: {resp.status} {await resp.text()}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(LOAD_CONCURRENCY)))
        seconds = time.perf_counter() - started
    return seconds, sum(body.count(b'"id":') for body in bodies)


async def value_index(port: int, headers: dict[str, str] | None = None) -> float:
    """Opt ``temperature`` into value indexes (``POST /cityos/v1/indexes``), as the steward of
    a tenant queried by temperature ranges would; seconds the build took."""
    url = f"http://127.0.0.1:{port}/cityos/v1/indexes"
    headers = headers or {"NGSILD-Tenant": TENANT}
    started = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        body = {"attribute": INDEXED, "kind": "number"}
        async with http.post(url, json=body, headers=headers) as resp:
            if resp.status not in (200, 202):
                raise SystemExit(f"value index: {resp.status} {await resp.text()}")
            location = f"http://127.0.0.1:{port}{resp.headers['Location']}"
        while True:  # built in the background: poll its status
            async with http.get(location, headers=headers) as resp:
                status = (await resp.json())["status"]
            if status == "ready":
                return time.perf_counter() - started
            if status != "building":
                raise SystemExit(f"value index: {status}")
            await asyncio.sleep(0.1)


async def tenant_schema(dsn: str, tenant: str = TENANT) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        schema = await conn.fetchval(
            "SELECT schema_name FROM cityos.tenants WHERE name = $1", tenant
        )
        # What autovacuum does to a table in production: statistics, and the visibility map
        # that index-only scans (geo_points) rely on.
        await conn.execute(f"VACUUM ANALYZE {schema}.entities")
        await conn.execute(f"VACUUM ANALYZE {schema}.geo")
        await conn.execute(f"VACUUM ANALYZE {schema}.attr_values")
    finally:
        await conn.close()
    return str(schema)


# ------------------------------------------------------------------------------------- checks


async def check(port: int, case: Case, expected: int) -> None:
    """The query answers 200 with a full page of entities that match; the count is right."""
    url = f"http://127.0.0.1:{port}{case.path}"
    headers = {"NGSILD-Tenant": TENANT, "Accept": "application/json"}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        body = await resp.read()
        count = resp.headers.get("NGSILD-Results-Count")
        if resp.status != 200:
            raise SystemExit(f"query {case.key}: {resp.status} {body[:300]!r}")
    page = orjson.loads(body)
    if len(page) != min(LIMIT, expected):
        raise SystemExit(f"query {case.key}: {len(page)} entities, expected a page of {LIMIT}")
    for e in page:
        if not _matches(case.key, e):
            raise SystemExit(f"query {case.key}: {e['id']} does not match")
    if case.key == "count" and count != str(expected):
        raise SystemExit(f"query count: NGSILD-Results-Count {count}, the data set has {expected}")


def _matches(key: str, e: dict[str, Any]) -> bool:
    if key == "rel":
        return bool(e["refParent"]["object"] == PARENT)
    if key == "geo":
        lon, lat = e["location"]["value"]["coordinates"]
        return dataset.metres(lon, lat, *CENTRE) <= RADIUS * 1.01
    return bool(e["type"] == QUERY_TYPE and e["temperature"]["value"] > 30)


# ---------------------------------------------------------------------------------------- SQL


class _Indexes:
    """Stands in for ``ValueIndexRepository``: the attribute ``value_index`` registered."""

    def __init__(self, numbers: frozenset[str]) -> None:
        self._numbers = numbers

    async def numbers(self, _schema: str) -> frozenset[str]:
        return self._numbers


class _Recorder:
    """Stands in for the asyncpg pool: records what ``QueryRepository`` would send."""

    def __init__(self) -> None:
        self.statements: list[Statement] = []

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[_Recorder]:
        yield self

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, int]]:
        self.statements.append((sql, list(args)))
        return (
            [{"n": 0}]
            if sql.startswith("SELECT (SELECT count(*)") or sql.startswith("SELECT count(*)")
            else []
        )


def statements(case: Case, schema: str, visible: Visible | None = None) -> list[Statement]:
    """The SQL of ``GET case.path`` as ``QueryService.query`` builds it (limit + 1 rows), for a
    caller whose readable scope is ``visible`` (None: unrestricted)."""
    terms = TermMap(CORE_CONTEXT_URL, bundled_documents())
    names = Names(type=terms.expand_type, attr=lambda t: expand_attr_name(terms, t))
    p = case.params
    types = parse_type_selection(p["type"]) if "type" in p else None
    sel = Selection(
        selectors=(EntitySelector(types=types),),
        q=parse_q(p["q"]) if "q" in p else None,
        geo=parse_geoq(p.get("georel"), p.get("geometry"), p.get("coordinates")),
    )
    recorder = _Recorder()
    indexes = _Indexes(frozenset({names.attr(INDEXED)}))
    repo = QueryRepository(cast(asyncpg.Pool, recorder), cast(ValueIndexRepository, indexes))
    page = repo.page(
        schema, sel, names, limit=LIMIT + 1, offset=0, count="count" in p, visible=visible
    )
    asyncio.run(page)
    return recorder.statements


async def explain(dsn: str, stmts: list[Statement]) -> list[str]:
    conn = await asyncpg.connect(dsn)
    lines: list[str] = []
    try:
        for sql, args in stmts:
            lines.append("  " + " ".join(sql.split()))
            lines.append(f"    args: {args}")
            for row in await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args):
                lines.append("    " + row[0])
    finally:
        await conn.close()
    return lines


# ---------------------------------------------------------------------------------------- run


def run(runner: Runner, port: int, pids: list[int], dsn: str, explain_all: bool) -> QueryResults:
    out = QueryResults(concurrency=runner.args.query_concurrency)
    print(
        f"query: loading {dataset.PER_TYPE * len(dataset.TYPES):,} entities + "
        f"{dataset.PARENTS} parents through the batch endpoint..."
    )
    out.load1 = guard.wait_quiet("query load")
    out.load_seconds, out.loaded = asyncio.run(load(port))
    schema = asyncio.run(tenant_schema(dsn))
    out.index_seconds = asyncio.run(value_index(port))
    out.expected = expected_matches()
    for case in CASES:
        asyncio.run(check(port, case, out.expected[case.key]))
    for case in CASES:
        sc = Scenario("query", path=case.path, tenant=TENANT)
        out.alone[case.key] = runner.http(port, sc, pids, f"query1-{case.key}", concurrency=1)
        out.api[case.key] = runner.http(
            port, sc, pids, f"query-{case.key}", concurrency=out.concurrency
        )
        stmts = statements(case, schema)
        out.sql[case.key] = runner.sql(dsn, stmts, f"sql-{case.key}", out.concurrency)
        if explain_all or out.alone[case.key].result.p95_ms > TARGET_P95_MS:
            out.plans[case.key] = asyncio.run(explain(dsn, stmts))
    return out


def print_results(res: QueryResults) -> None:
    rate = res.loaded / res.load_seconds if res.load_seconds else 0.0
    print(
        f"\nQuery scenarios (tenant {TENANT}): {res.loaded:,} entities loaded in "
        f"{res.load_seconds:.1f} s ({rate:,.0f} entities/s, batches of {LOAD_BATCH}, "
        f"{LOAD_CONCURRENCY} in flight, load1 {res.load1:.2f}); value indexes on "
        f"{INDEXED!r} built in {res.index_seconds:.1f} s (POST /cityos/v1/indexes); limit={LIMIT}. "
        f"'alone': 1 connection (the latency of one query); '@{res.concurrency}': "
        f"{res.concurrency} connections, closed loop (2 cores saturated: p95 ≈ "
        f"{res.concurrency // 2}× the CPU time of a query); 'SQL' = the same statements through "
        f"raw asyncpg at {res.concurrency}; ratio = API ops/s / SQL ops/s"
    )
    n = res.concurrency
    head = (
        f"{'scenario':<29}{'matches':>8}{'p50':>7}{'p95':>7}  alone"
        f"{'ops/s':>8}{'p50':>7}{'p95':>7}{'p99':>7}{'err':>5}  @{n:<4}"
        f"{'SQL/s':>7}{'SQLp95':>8}{'ratio':>7}  load1"
    )
    print(head)
    print("-" * len(head))
    for case in CASES:
        a, s, one = res.api[case.key], res.sql[case.key], res.alone[case.key]
        ar, sr, r1 = a.result, s.result, one.result
        ratio = ar.rate() / sr.rate() if sr.rate() else 0.0
        alone = "PASS" if r1.p95_ms <= TARGET_P95_MS and r1.ops and not r1.errors else "MISS"
        loaded = "PASS" if ar.p95_ms <= TARGET_P95_MS and ar.ops and not ar.errors else "MISS"
        print(
            f"{case.label:<29}{res.expected[case.key]:>8}{r1.p50_ms:>7.1f}{r1.p95_ms:>7.1f}  "
            f"{alone:<5}{ar.rate():>8.0f}{ar.p50_ms:>7.1f}{ar.p95_ms:>7.1f}{ar.p99_ms:>7.1f}"
            f"{ar.errors + r1.errors:>5}  {loaded:<5}{sr.rate():>7.0f}{sr.p95_ms:>8.1f}"
            f"{ratio:>7.2f}  {a.load1:>5.2f}"
        )
    print(f"  target: p95 ≤ {TARGET_P95_MS:g} ms")
    for case in CASES:
        a = res.api[case.key]
        c = a.cpu
        rate = a.result.rate()
        per = {k: 1e6 * v / rate if rate else 0.0 for k, v in c.items()}
        print(
            f"  {case.key:<7} server {c['server']:.2f} cores ({per['server']:.0f} µs/op), postgres "
            f"{c['postgres']:.2f} ({per['postgres']:.0f} µs/op), other {c['other']:.2f}"
        )
    for key, lines in res.plans.items():
        print(f"\nEXPLAIN (ANALYZE, BUFFERS) of the SQL behind {key}:")
        for line in lines:
            print(line)
