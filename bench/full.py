"""The ``full`` group: the foundation writes and reads with everything a city runs switched on.

Layer: bench/. One ``city-os serve`` with the relay publishing to a throwaway Tansu
(``bench.kafka``), the notifier inside it with ``SUBSCRIPTIONS`` subscriptions delivering to an
aiohttp receiver in the bench process (``bench.notify.Sink``), history capture (the temporal
triggers, always on) and an active JSON Schema for the entity type (the bundled Smart Data Models
``WeatherObserved``, ``bench.validation``), all in the tenant ``TENANT``.

``SEEDED`` WeatherObserved entities are created first; each subscription watches ``temperature``
of 10 of them, so every partial update (``PATCH …/attrs/temperature`` on a random seeded entity)
matches one subscription and is delivered as one notification. Then, at the foundation's
concurrency: create (validated), retrieve by id, partial update, batch create (validated, 100 a
request), each next to the same requests on the bare aiohttp handler and the raw asyncpg
statements on a plain ``(id, doc jsonb)`` table measured in the same run (``bench.ceilings``).
Printed with the CPU split, the outbox backlog after each scenario, and the notifications
delivered during the partial updates.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp
import asyncpg
import orjson

from bench import guard, stack, validation
from bench.kafka import empty_outbox, kafka_env, tansu_topic
from bench.loadgen import post_batches
from bench.notify import Sink, _indexed
from bench.report import LABELS, TARGETS
from bench.runner import Measured, Runner
from bench.workload import BATCH_SIZE, PREFIX, UPDATED_ATTR, Scenario, entity_id
from bench.write_cost import Breakdown, explain_writes, print_breakdowns

TENANT = "bench-full"
MODEL = validation.MODEL
SEEDED = 1000
SUBSCRIPTIONS = 100
KINDS = ("create", "retrieve", "update", "batch")
SEED = "fs-"  # id prefix of the seeded entities


@dataclass
class FullResults:
    api: dict[str, Measured] = field(default_factory=dict)
    http: dict[str, Measured] = field(default_factory=dict)
    db: dict[str, Measured] = field(default_factory=dict)
    backlog_after: dict[str, tuple[int, float]] = field(default_factory=dict)
    notified: int = 0  # notifications received from the start of the partial updates on
    updates: int = 0  # partial updates answered 204 (warm-up included)
    writes: list[Breakdown] = field(default_factory=list)  # EXPLAIN ANALYZE of the statements
    writes_load1: float = 0.0


def _scenario(kind: str, created: int) -> Scenario:
    if kind in ("create", "batch"):
        return Scenario(kind, prefix=f"f{kind[0]}-", tenant=TENANT, model=MODEL)
    if kind == "update":  # the seeded entities: each update matches one subscription
        return Scenario(kind, seed_prefix=SEED, existing=SEEDED, tenant=TENANT, model=MODEL)
    return Scenario(kind, seed_prefix="fc-", existing=created, tenant=TENANT, model=MODEL)


async def _subscribe(port: int, sink: Sink) -> None:
    url = f"http://127.0.0.1:{port}{PREFIX}/subscriptions"
    headers = {"Content-Type": "application/json", "NGSILD-Tenant": TENANT}
    per = SEEDED // SUBSCRIPTIONS
    async with aiohttp.ClientSession() as http:
        for k in range(SUBSCRIPTIONS):
            body = {
                "type": "Subscription",
                "entities": [
                    {"id": entity_id(SEED, i, MODEL), "type": MODEL}
                    for i in range(k * per, (k + 1) * per)
                ],
                "watchedAttributes": [UPDATED_ATTR],
                "notification": {
                    "format": "keyValues",
                    "attributes": [UPDATED_ATTR],
                    "endpoint": {"uri": f"http://127.0.0.1:{sink.port}/n?s=full{k}"},
                },
            }
            async with http.post(url, data=orjson.dumps(body), headers=headers) as resp:
                if resp.status != 201:
                    raise SystemExit(f"full: subscription {resp.status} {await resp.text()}")
        await _indexed(http, port, SUBSCRIPTIONS)


async def _api(runner: Runner, dsn: str, res: FullResults) -> None:
    sink = Sink()
    await sink.start()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    assert pool is not None
    try:
        async with tansu_topic() as bootstrap:
            port = stack.free_port()
            workers = runner.args.workers
            env = kafka_env(dsn, port, max(1, runner.args.pool // workers), bootstrap)
            env.update(CITYOS_NOTIFIER_ENABLED="true", CITYOS_OUTBOUND_ALLOW="loopback")
            with stack.running("api, everything on", stack.api_commands(workers), env, port) as srv:
                await validation.register(port, TENANT, activate=True)
                await post_batches(port, SEED, SEEDED, tenant=TENANT, model=MODEL)
                await _subscribe(port, sink)
                await empty_outbox(pool)
                created = 1
                for kind in KINDS:
                    if kind == "update":
                        sink.got.clear()
                    sc = _scenario(kind, created)
                    prof = srv.pids[0] if runner.args.profile else None
                    m = await asyncio.to_thread(
                        runner.http, port, sc, srv.pids, f"full-{kind}", prof
                    )
                    res.api[kind] = m
                    if kind == "create":
                        created = max(1, m.result.ops - runner.args.concurrency)
                    if kind == "update":
                        res.updates = m.result.sent
                        await sink.wait_for(m.result.ops, 30)
                        res.notified = len(sink.got)
                    res.backlog_after[kind] = await empty_outbox(pool)
                res.writes_load1 = guard.load1()
                schema = await pool.fetchval(
                    "SELECT schema_name FROM cityos.tenants WHERE name = $1", TENANT
                )
                res.writes = await explain_writes(dsn, schema, f"%{SEED}%", UPDATED_ATTR)
    finally:
        await pool.close()
        await sink.stop()


def run(runner: Runner, dsn: str) -> FullResults:
    res = FullResults()
    asyncio.run(_api(runner, dsn, res))
    created = max(1, res.api["create"].result.ops - runner.args.concurrency)
    if runner.args.no_ceilings:
        return res
    port = stack.free_port()
    env = stack.server_env(dsn, port, runner.args.pool)
    with stack.running("http", stack.ceiling_command("http", port), env, port) as srv:
        for kind in KINDS:
            sc = Scenario(kind, prefix=f"fh{kind[0]}-", seed_prefix="fhc-", existing=created)
            res.http[kind] = runner.http(port, sc, srv.pids, f"full-http-{kind}")
    for kind in KINDS:
        sc = Scenario(kind, prefix=f"fd{kind[0]}-", seed_prefix="fdc-", existing=created)
        res.db[kind] = runner.db(dsn, sc, f"full-db-{kind}")
    return res


def print_results(res: FullResults) -> None:
    print(
        f"\nEverything on (tenant {TENANT}): relay → Tansu, notifier with {SUBSCRIPTIONS} "
        f"subscriptions (every partial update notifies one), history capture, active "
        f"{MODEL} JSON Schema; ceilings of the same run: 'aiohttp' = bare handler, 'asyncpg' = "
        "raw statements on a plain jsonb table"
    )
    head = (
        f"  {'scenario':<31}{'ops/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}"
        f"{'aiohttp':>9}{'asyncpg':>9}{'target':>8}  verdict  load1"
    )
    print(head)
    for kind in KINDS:
        m = res.api[kind]
        per = BATCH_SIZE if kind == "batch" else 1
        ops = m.result.rate(per)
        h, d = res.http.get(kind), res.db.get(kind)
        hr = h.result.rate(per) if h else 0.0
        dr = d.result.rate(per) if d else 0.0
        verdict = "PASS" if ops >= TARGETS[kind] and not m.result.errors else "MISS"
        print(
            f"  {LABELS[kind]:<31}{ops:>8.0f}{m.result.p50_ms:>8.1f}{m.result.p99_ms:>8.1f}"
            f"{m.result.errors:>7}{hr:>9.0f}{dr:>9.0f}{TARGETS[kind]:>8}  {verdict:<7}"
            f"  {m.load1:.2f}"
        )
    for kind in KINDS:
        m = res.api[kind]
        per, unit = (BATCH_SIZE, "entity") if kind == "batch" else (1, "req")
        rate = m.result.rate(per)
        c = m.cpu
        us = {k: 1e6 * v / rate if rate else 0.0 for k, v in c.items()}
        backlog, seconds = res.backlog_after.get(kind, (0, 0.0))
        print(
            f"    {kind:<9} CPU server {c.get('server', 0):.2f} cores ({us.get('server', 0):.0f}"
            f" µs/{unit}), postgres {c.get('postgres', 0):.2f} ({us.get('postgres', 0):.0f}"
            f" µs/{unit}), other {c.get('other', 0):.2f}; outbox backlog after {backlog}, empty "
            f"{seconds:.1f} s later"
        )
    print_breakdowns(res.writes, res.writes_load1)
    for kind in KINDS:
        if res.api[kind].profile:  # --profile: py-spy hot spots of the server
            print(f"    hot spots during {kind} (py-spy):")
            for line in res.api[kind].profile:
                print(f"      {line}")
    print(
        f"  notifications received from the partial updates: {res.notified} "
        f"(updates sent {res.updates}, warm-up included)"
    )
