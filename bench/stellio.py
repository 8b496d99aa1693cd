"""The ``stellio`` group: Stellio's load-test scenarios beside Stellio's published figures.

Layer: bench/. Workload from ``bench.stellio_data`` (the scenarios of stellio-hub/ngsild-load-tests:
query by type + property values, query by type + relationship object, partial attribute update,
update attributes, create) at each size of ``--stellio-sizes`` (1,000 / 10,000 / 100,000 by
default), each size loaded on top of the previous one through the batch endpoint (1,000 entities
a request) into its own tenant, then ``VACUUM ANALYZE`` (what autovacuum gives a production table).
The queries are checked first (200, only matching entities, a full page when there are enough
matches), then every scenario runs at ``--query-concurrency`` connections (8) and prints req/s and
p50/p95/p99 beside Stellio's figures (docs/admin/performance.md: 8 vCPU, 10 VUs) and two ceilings
measured in the same run: the bare aiohttp handler (``bench.ceilings``, same requests) and raw
asyncpg at the same concurrency: for queries the very statements the server issues (captured
from ``QueryRepository.page``), for writes the same JSON on a plain ``(id, doc jsonb)`` table.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote, urlencode

import aiohttp
import asyncpg
import orjson

from bench import guard, stack
from bench import stellio_data as data
from bench.ceilings import Statement, _pool_load
from bench.query import _Recorder
from bench.runner import Measured, Runner
from bench.workload import PREFIX, Scenario, tenant_header
from city_os.core.contexts import bundled_documents
from city_os.ngsild.entity import expand_attr_name
from city_os.ngsild.jsonld import CORE_CONTEXT_URL, TermMap
from city_os.ngsild.query.entity_selection import EntitySelector, Names, Selection
from city_os.ngsild.query.q import parse_q
from city_os.ngsild.query.type_selection import parse_type_selection
from city_os.store.postgres.query import QueryRepository

TENANT = "bench-stellio"
SIZES = (1_000, 10_000, 100_000)
LOAD_BATCH = 1000
LOAD_CONCURRENCY = 2
PREPARED = 2048  # distinct requests per scenario, sent in turn
SQL_SAMPLE = 256  # distinct queries in the SQL ceiling
CHECKED = 40  # queries checked against the data set before measuring
PAGE = 20  # the default page size (Stellio's queries give no limit)
CREATED = "bench-create-"  # id prefix of the create scenario (deleted after each size)
TARGET_P95_MS = 25.0
TARGET_TIMES_STELLIO = 10.0
KEYS = ("qprop", "qrel", "partial", "update", "create")
LABELS = {
    "qprop": "type + q=obs>N;static==…",
    "qrel": "type + q=obs>N;rel==urn",
    "partial": "partial attribute update",
    "update": "update attributes",
    "create": "create entity",
}
WRITE_TARGETS = {"create": 1500, "partial": 1500}  # foundation targets (ops/s)
RAW = "bench_stellio_raw"


@dataclass
class SizeResult:
    size: int
    load_seconds: float = 0.0
    load1: float = 0.0
    api: dict[str, Measured] = field(default_factory=dict)
    ceiling: dict[str, Measured] = field(default_factory=dict)  # raw asyncpg


@dataclass
class StellioResults:
    concurrency: int
    sizes: list[SizeResult] = field(default_factory=list)
    http: dict[str, Measured] = field(default_factory=dict)


# ----------------------------------------------------------------------------------- requests

_COMMON = b"Host: bench\r\nAccept: application/json\r\n" + tenant_header(TENANT)


def query_path(q: data.Query) -> str:
    return f"{PREFIX}/entities?" + urlencode({"type": q.type, "q": q.q}, quote_via=quote)


def _get(path: str) -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\n" + _COMMON + b"\r\n"


def _patch(path: str, body: Any) -> bytes:
    raw = orjson.dumps(body)
    head = b"PATCH " + path.encode() + b" HTTP/1.1\r\n" + _COMMON
    head += b"Content-Type: application/json\r\nContent-Length: " + str(len(raw)).encode()
    return head + b"\r\n\r\n" + raw


def scenario(key: str, stations: list[data.Station]) -> Scenario:
    """The requests of one scenario over the loaded ``stations``."""
    if key in ("qprop", "qrel"):
        reqs = tuple(_get(query_path(q)) for q in data.queries(key == "qrel", PREPARED))
        return Scenario("query", requests=reqs, status=200)
    if key == "create":
        return Scenario("create", prefix=CREATED, model="Entity", tenant=TENANT)
    rnd = random.Random(11)
    reqs = []
    for _ in range(PREPARED):
        s = rnd.choice(stations)
        if key == "partial":
            body: Any = {"value": rnd.uniform(0, 100), "observedAt": "2024-09-01T10:00:00.000Z"}
            path = f"{PREFIX}/entities/{s.id}/attrs/{data.UPDATED_ATTR}"
        else:
            v = [rnd.uniform(0, 100) for _ in range(5)]
            body = data.observations(v[0:2], v[2:4], v[4])
            path = f"{PREFIX}/entities/{s.id}/attrs"
        reqs.append(_patch(path, body))
    return Scenario("update", requests=tuple(reqs), status=204)


# ------------------------------------------------------------------------------------ loading


async def load(port: int, stations: list[data.Station]) -> float:
    """POST ``stations`` through the batch endpoint; seconds taken."""
    docs = [data.entity(s) for s in stations]
    bodies = [orjson.dumps(docs[i : i + LOAD_BATCH]) for i in range(0, len(docs), LOAD_BATCH)]
    url = f"http://127.0.0.1:{port}{PREFIX}/entityOperations/create"
    headers = {"Content-Type": "application/json", "NGSILD-Tenant": TENANT}
    queue = list(reversed(bodies))
    async with aiohttp.ClientSession() as http:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                async with http.post(url, data=body, headers=headers) as resp:
                    if resp.status != 201:
                        raise SystemExit(f"stellio data load: {resp.status} {await resp.text()}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(LOAD_CONCURRENCY)))
        return time.perf_counter() - started


async def _schema(conn: asyncpg.Connection) -> str:
    schema = await conn.fetchval("SELECT schema_name FROM cityos.tenants WHERE name = $1", TENANT)
    return str(schema)


async def settle(dsn: str, stations: list[data.Station]) -> str:
    """Delete what the create scenario made, VACUUM ANALYZE, refill the raw ceiling's table."""
    conn = await asyncpg.connect(dsn)
    try:
        schema = await _schema(conn)
        like = f"urn:ngsi-ld:Entity:{CREATED}%"
        await conn.execute(f"DELETE FROM {schema}.entities WHERE id LIKE $1", like)
        await conn.execute(f"DELETE FROM {schema}.geo WHERE entity_id LIKE $1", like)
        for table in ("entities", "geo", "attr_values"):
            await conn.execute(f"VACUUM ANALYZE {schema}.{table}")
        await conn.execute(f"DROP TABLE IF EXISTS {RAW}")
        await conn.execute(f"CREATE TABLE {RAW} (id text PRIMARY KEY, doc jsonb)")
        docs = orjson.dumps([data.entity(s) for s in stations]).decode()
        await conn.execute(
            f"INSERT INTO {RAW} SELECT d->>'id', d FROM jsonb_array_elements($1::jsonb) d", docs
        )
        await conn.execute(f"VACUUM ANALYZE {RAW}")
    finally:
        await conn.close()
    return schema


async def check(port: int, stations: list[data.Station]) -> None:
    """Each query shape answers 200 with matching entities only, a full page if there are
    enough matches (the ids and values of the data set are known here)."""
    by_id = {s.id: s for s in stations}
    headers = {"NGSILD-Tenant": TENANT, "Accept": "application/json"}
    async with aiohttp.ClientSession() as http:
        for rel in (False, True):
            for q in data.queries(rel, CHECKED):
                url = f"http://127.0.0.1:{port}{query_path(q)}"
                async with http.get(url, headers=headers) as resp:
                    body = await resp.read()
                    if resp.status != 200:
                        raise SystemExit(f"stellio query {q.q}: {resp.status} {body[:300]!r}")
                page = orjson.loads(body)
                expected = min(PAGE, sum(q.matches(s) for s in stations))
                wrong = [
                    e["id"] for e in page if e["id"] not in by_id or not q.matches(by_id[e["id"]])
                ]
                if wrong or len(page) != expected:
                    raise SystemExit(
                        f"stellio query type={q.type}&q={q.q}: {len(page)} entities "
                        f"(expected {expected}), not matching: {wrong[:3]}"
                    )


# ---------------------------------------------------------------------------------------- SQL


def _names() -> Names:
    terms = TermMap(CORE_CONTEXT_URL, bundled_documents())
    return Names(type=terms.expand_type, attr=lambda t: expand_attr_name(terms, t))


def statements(q: data.Query, schema: str, names: Names) -> list[Statement]:
    """The SQL of the query as ``QueryService.query`` sends it (limit + 1 rows)."""
    sel = Selection(selectors=(EntitySelector(types=parse_type_selection(q.type)),), q=parse_q(q.q))
    recorder = _Recorder()
    repo = QueryRepository(cast(asyncpg.Pool, recorder))
    asyncio.run(repo.page(schema, sel, names, limit=PAGE + 1, offset=0, count=False))
    return recorder.statements


def run_sql_many(
    dsn: str,
    batches: list[list[Statement]],
    concurrency: int,
    pool_size: int,
    warmup: float,
    duration: float,
) -> Any:
    """Raw asyncpg: the statements of request ``seq % len(batches)`` per operation."""
    import uvloop

    async def op(conn: Any, seq: int) -> bool:
        for sql, args in batches[seq % len(batches)]:
            await conn.fetch(sql, *args)
        return True

    return uvloop.run(_pool_load(dsn, op, concurrency, pool_size, warmup, duration))


def run_raw_writes(
    dsn: str,
    key: str,
    ids: list[str],
    concurrency: int,
    pool_size: int,
    warmup: float,
    duration: float,
) -> Any:
    """Raw asyncpg: the scenario's JSON written to the plain ``(id, doc jsonb)`` table."""
    import uvloop

    rnd = random.Random(11)
    template = data.template_attrs()

    async def op(conn: Any, seq: int) -> bool:
        if key == "create":
            doc = orjson.dumps({"id": f"raw-{seq}", "type": "Entity", **template}).decode()
            sql = f"INSERT INTO {RAW} (id, doc) VALUES ($1, $2::jsonb)"
            return not (await conn.execute(sql, f"raw-{seq}", doc)).endswith(" 0")
        eid = ids[rnd.randrange(len(ids))]
        if key == "partial":
            patch = orjson.dumps({"value": rnd.uniform(0, 100), "observedAt": "2024-09-01T10Z"})
            sql = (
                f"UPDATE {RAW} SET doc = jsonb_set(doc, '{{dissolvedOxygen}}',"
                f" doc->'dissolvedOxygen' || $2::jsonb) WHERE id = $1"
            )
        else:
            v = [rnd.uniform(0, 100) for _ in range(5)]
            patch = orjson.dumps(data.observations(v[0:2], v[2:4], v[4]))
            sql = f"UPDATE {RAW} SET doc = doc || $2::jsonb WHERE id = $1"
        return not (await conn.execute(sql, eid, patch.decode())).endswith(" 0")

    return uvloop.run(_pool_load(dsn, op, concurrency, pool_size, warmup, duration))


# ---------------------------------------------------------------------------------------- run


def _measure(runner: Runner, fn: object, call: tuple[object, ...], name: str) -> Measured:
    a = runner.args
    return runner.measure(fn, (*call, a.query_concurrency, a.pool, a.warmup, a.duration), [], name)


def run(runner: Runner, port: int, pids: list[int], dsn: str, sizes: list[int]) -> StellioResults:
    out = StellioResults(concurrency=runner.args.query_concurrency)
    names = _names()
    everything = data.stations(max(sizes))
    loaded = 0
    for size in sorted(sizes):
        res = SizeResult(size)
        stations = everything[:size]
        print(f"stellio: loading entities {loaded:,}..{size:,} through the batch endpoint...")
        res.load1 = guard.wait_quiet("stellio load")
        res.load_seconds = asyncio.run(load(port, stations[loaded:]))
        loaded = size
        schema = asyncio.run(settle(dsn, stations))
        asyncio.run(check(port, stations))
        ids = [s.id for s in stations]
        for key in KEYS:
            sc = scenario(key, stations)
            res.api[key] = runner.http(
                port, sc, pids, f"stellio-{key}-{size}", concurrency=out.concurrency
            )
            if key in ("qprop", "qrel"):
                sample = list(data.queries(key == "qrel", SQL_SAMPLE))
                batches = [statements(q, schema, names) for q in sample]
                res.ceiling[key] = _measure(
                    runner, run_sql_many, (dsn, batches), f"stellio-sql-{key}-{size}"
                )
            else:
                res.ceiling[key] = _measure(
                    runner, run_raw_writes, (dsn, key, ids), f"stellio-raw-{key}-{size}"
                )
        out.sizes.append(res)
        asyncio.run(settle(dsn, stations))
    return out


def run_http_ceiling(runner: Runner, stations_count: int) -> dict[str, Measured]:
    """The bare aiohttp handler with the same requests (independent of the data set size)."""
    stations = data.stations(stations_count)
    port = stack.free_port()
    env = stack.server_env("postgresql://unused", port, 1)
    out = {}
    with stack.running("http", stack.ceiling_command("http", port), env, port) as srv:
        for key in KEYS:
            sc = scenario(key, stations)
            out[key] = runner.http(
                port, sc, srv.pids, f"stellio-http-{key}", concurrency=runner.args.query_concurrency
            )
    return out


# -------------------------------------------------------------------------------------- print


def print_results(res: StellioResults) -> None:
    n = res.concurrency
    print(
        f"\nStellio's load test (stellio-hub/ngsild-load-tests), {data.TYPES_COUNT} types, "
        f"{data.RELATIONS_COUNT} relationship objects, {n} connections, closed loop. 'HTTP' = "
        f"bare aiohttp handler, 'raw' = raw asyncpg ({n} connections; queries: the server's "
        "statements; writes: the same JSON on a plain (id, doc jsonb) table), same run; ratio = "
        "city-os req/s ÷ ceiling req/s. Stellio: docs/admin/performance.md (8 vCPU, 10 VUs; "
        "queries at 10,000/100,000 over 10 types; writes measured at one size, shown in [])."
    )
    head = (
        f"{'scenario':<27}{'req/s':>7}{'p50':>7}{'p95':>7}{'p99':>7}{'err':>5}"
        f"{'HTTP/s':>8}{'ratio':>6}{'raw/s':>7}{'rawp95':>7}{'ratio':>6}"
        f"{'Stellio/s':>10}{'p95':>6}{'×St':>6}  verdict  load1"
    )
    for sr in res.sizes:
        rate = sr.size - (res.sizes[res.sizes.index(sr) - 1].size if res.sizes.index(sr) else 0)
        print(
            f"\n{sr.size:,} entities (loaded {rate:,} in {sr.load_seconds:.1f} s = "
            f"{rate / sr.load_seconds if sr.load_seconds else 0:,.0f} entities/s, batches of "
            f"{LOAD_BATCH}, {LOAD_CONCURRENCY} in flight, load1 {sr.load1:.2f})"
        )
        print(head)
        print("-" * len(head))
        for key in KEYS:
            a, c, h = sr.api[key].result, sr.ceiling[key].result, res.http.get(key)
            hr = h.result.rate() if h else 0.0
            pub = data.published(key, sr.size)
            st = f"{pub[0]:>10.0f}{pub[1]:>6.0f}" if pub else f"{'—':>10}{'':>6}"
            if pub and pub[2] != sr.size:
                st = f"{'[' + str(int(pub[0])) + ']':>10}{'[' + str(int(pub[1])) + ']':>6}"
            times = a.rate() / pub[0] if pub else 0.0
            print(
                f"{LABELS[key]:<27}{a.rate():>7.0f}{a.p50_ms:>7.1f}{a.p95_ms:>7.1f}"
                f"{a.p99_ms:>7.1f}{a.errors:>5}{hr:>8.0f}{a.rate() / hr if hr else 0:>6.2f}"
                f"{c.rate():>7.0f}{c.p95_ms:>7.1f}{a.rate() / c.rate() if c.rate() else 0:>6.2f}"
                f"{st}{times:>6.1f}  {_verdict(key, a, times):<7}  {sr.api[key].load1:>5.2f}"
            )
        for key in KEYS:
            m = sr.api[key]
            rate = m.result.rate()
            per = {k: 1e6 * v / rate if rate else 0.0 for k, v in m.cpu.items()}
            print(
                f"  {key:<8} server {m.cpu['server']:.2f} cores ({per['server']:.0f} µs/req), "
                f"postgres {m.cpu['postgres']:.2f} ({per['postgres']:.0f} µs/req), "
                f"other {m.cpu['other']:.2f}"
            )
    print(
        f"  targets: queries p95 ≤ {TARGET_P95_MS:g} ms and ≥ {TARGET_TIMES_STELLIO:g}× Stellio's "
        f"req/s; create, partial update ≥ 1,500/s (foundation targets)"
    )


def _verdict(key: str, a: Any, times: float) -> str:
    if a.errors or not a.ops:
        return "ERRORS"
    if key in ("qprop", "qrel"):
        ok = a.p95_ms <= TARGET_P95_MS and times >= TARGET_TIMES_STELLIO
        return "PASS" if ok else "MISS"
    if key in WRITE_TARGETS:
        return "PASS" if a.rate() >= WRITE_TARGETS[key] else "MISS"
    return ""
