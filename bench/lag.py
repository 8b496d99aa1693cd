"""End-to-end lag of change events (issue "Change events"): write → outbox → relay → consumer.

Layer: bench/. Runs a throwaway Tansu (``city_os.devstack``) and ``city-os serve`` with
``CITYOS_KAFKA_BOOTSTRAP`` (relay inside the server, default settings). A consumer without a group
(``Tap``: partitions assigned, positioned at the end before any write) keeps the receive time of
every record whose key (``tenant/entityId``, no JSON parsing) belongs to the phase being measured.

1. Lag: ``PATCH …/attrs/temperature`` paced at ``RATE``/s for ``SECONDS`` s (open loop over 16
   connections) on 1,000 entities, each write setting a unique value. Lag of a write = consumer
   receive time − the client's receive time of the 204 (the commit happened before the response:
   a slight underestimate), and − the event's ``time`` (taken when the request began, before the
   transaction: an overestimate by the write's own latency). Both are printed.
2. Foundation write targets (create, partial update, batch) with the relay on, each followed by
   the outbox backlog it left and how long the relay took to empty it.
3. Relay throughput: ``city-os api`` (no relay) writes ``BACKLOG`` entities, then ``city-os relay``
   starts alone; events/s from the first to the last event received, and from process start until
   the outbox is empty (producer start-up included).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from bench import guard, stack
from bench.kafka import Tap, empty_outbox, kafka_env, tansu_topic
from bench.loadgen import Answer, Paced, paced_patches, pct, post_batches
from bench.report import LABELS, TARGETS
from bench.runner import Measured, Runner
from bench.workload import Scenario
from city_os.config import Settings
from city_os.events.consume import ChangeEvent
from city_os.events.relay import outbox_backlog

RATE = 1000.0  # writes per second
SECONDS = 8.0
CONNECTIONS = 16
LAG_ENTITIES = 1000
BACKLOG = 20_000
WRITE_KINDS = ("create", "update", "batch")


# ----------------------------------------------------------------------------------- results


@dataclass
class LagResults:
    writes: int = 0
    write_errors: int = 0
    write_seconds: float = 0.0
    events: int = 0
    lag_response: list[float] = field(default_factory=list)  # seconds
    lag_event_time: list[float] = field(default_factory=list)
    load1: float = 0.0
    writes_relay_on: dict[str, Measured] = field(default_factory=dict)
    backlog_after: dict[str, tuple[int, float]] = field(default_factory=dict)  # events, s to 0
    drain_events: int = 0
    drain_received: float = 0.0  # s from first to last event received
    drain_wall: float = 0.0  # s from relay process start to an empty outbox
    drain_cpu: dict[str, float] = field(default_factory=dict)
    drain_load1: float = 0.0


def _lag(res: LagResults, done: list[Answer], kept: list[Any]) -> None:
    answered = {seq: t for seq, status, t in done if status == 204}
    res.writes, res.write_errors = len(done), len(done) - len(answered)
    times = [t for _, _, t in done]
    res.write_seconds = max(times) - min(times) if times else 0.0
    for received, _, value in kept:
        event = ChangeEvent.from_envelope(orjson.loads(value))
        seq = event.value("temperature")
        if event.kind != "updated" or not isinstance(seq, int) or seq not in answered:
            continue
        res.events += 1
        res.lag_response.append(received - answered[seq])
        res.lag_event_time.append(received - datetime.fromisoformat(event.time).timestamp())


# --------------------------------------------------------------------------------------- run


async def run(runner: Runner, dsn: str) -> LagResults:
    res = LagResults()
    topic = Settings().kafka_topic
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    assert pool is not None
    await pool.execute("TRUNCATE cityos.outbox")  # earlier scenarios' events: not ours to relay
    try:
        async with tansu_topic() as bootstrap:
            tap = Tap(bootstrap, topic)
            try:
                await _measure(runner, dsn, pool, bootstrap, tap, res)
                await _drain(runner, dsn, pool, bootstrap, tap, res)
            finally:
                await tap.stop()
    finally:
        await pool.close()
    return res


async def _measure(
    runner: Runner, dsn: str, pool: asyncpg.Pool, bootstrap: str, tap: Tap, res: LagResults
) -> None:
    port = stack.free_port()
    workers = runner.args.workers
    env = kafka_env(dsn, port, max(1, runner.args.pool // workers), bootstrap)
    with stack.running("api+relay", stack.api_commands(workers), env, port) as srv:
        await tap.start()
        tap.follow(b":lag-")
        await post_batches(port, "lag-", LAG_ENTITIES)
        if not await tap.wait_for(LAG_ENTITIES, 60):
            raise SystemExit(f"lag: only {len(tap.kept)} of {LAG_ENTITIES} events arrived")
        tap.follow(tap.match)
        res.load1 = await asyncio.to_thread(guard.wait_quiet, "lag")
        n = int(RATE * SECONDS)
        plan = Paced("lag-", "temperature", n, RATE, LAG_ENTITIES, CONNECTIONS)
        done = await asyncio.wrap_future(runner.pool.submit(paced_patches, port, plan))
        await tap.wait_for(n, 30)
        _lag(res, done, tap.kept)
        tap.follow(b"\x00")
        created = LAG_ENTITIES
        for kind in WRITE_KINDS:
            # Updates go to the entities the create run made (kc-0 … kc-{sent-1}).
            sc = Scenario(kind, prefix=f"k{kind[0]}-", seed_prefix="kc-", existing=created)
            m = await asyncio.to_thread(runner.http, port, sc, srv.pids, f"relay-{kind}")
            res.writes_relay_on[kind] = m
            if kind == "create":
                # ids below ops - concurrency surely exist (the last in flight may not)
                created = max(1, m.result.ops - runner.args.concurrency)
            res.backlog_after[kind] = await empty_outbox(pool)


async def _drain(
    runner: Runner, dsn: str, pool: asyncpg.Pool, bootstrap: str, tap: Tap, res: LagResults
) -> None:
    port = stack.free_port()
    api = [[str(stack.BIN / "city-os"), "api"]]  # no relay: the events stay in the outbox
    with stack.running("api", api, stack.server_env(dsn, port, runner.args.pool), port):
        await post_batches(port, "drain-", BACKLOG)
    res.drain_events = (await outbox_backlog(pool)).events
    tap.follow(b":drain-")
    res.drain_load1 = await asyncio.to_thread(guard.wait_quiet, "relay drain")
    env = kafka_env(dsn, stack.free_port(), 4, bootstrap)
    cpu0 = stack.cpu_snapshot()
    started = time.time()
    procs = stack.start([[str(stack.BIN / "city-os"), "relay"]], env)
    try:
        _, _ = await empty_outbox(pool)
        res.drain_wall = time.time() - started
        cpu1 = stack.cpu_snapshot()
        await tap.wait_for(BACKLOG, 60)
    finally:
        stack.stop(procs)
    res.drain_cpu = stack.cpu_split(cpu0, cpu1, res.drain_wall, [p.pid for p in procs], None)
    times = [t for t, _, _ in tap.kept]
    res.drain_received = max(times) - min(times) if len(times) > 1 else 0.0
    res.drain_events = max(res.drain_events, len(tap.kept))


def print_results(res: LagResults) -> None:
    ms = 1000.0
    poll = Settings.from_env().relay_poll_interval
    print(
        f"\nChange events through Tansu (relay inside city-os serve, relay poll interval "
        f"{poll:g} s; load1 {res.load1:.2f}):"
    )
    rate = res.writes / res.write_seconds if res.write_seconds else 0.0
    print(
        f"  paced partial updates: {res.writes} sent at {rate:.0f}/s achieved "
        f"(target {RATE:.0f}/s, {res.write_errors} errors); {res.events} events matched"
    )
    for name, lags in (
        ("lag from the 204 response", res.lag_response),
        ("lag from the event's time", res.lag_event_time),
    ):
        print(
            f"  {name:<26} p50 {pct(lags, 0.5) * ms:7.1f} ms  p99 {pct(lags, 0.99) * ms:7.1f} ms"
            f"  max {max(lags, default=float('nan')) * ms:7.1f} ms"
        )
    print("  foundation write targets with the relay on (publishing concurrently):")
    for kind, m in res.writes_relay_on.items():
        per = 100 if kind == "batch" else 1
        ops = m.result.rate(per)
        backlog, seconds = res.backlog_after[kind]
        verdict = "PASS" if ops >= TARGETS[kind] else "MISS"
        print(
            f"    {LABELS[kind]:<31}{ops:>8.0f}/s  p50 {m.result.p50_ms:5.1f}  p99 "
            f"{m.result.p99_ms:6.1f} ms  target {TARGETS[kind]:>6}  {verdict}  backlog after "
            f"{backlog:>6} events, empty {seconds:4.1f} s later  load1 {m.load1:.2f}  "
            f"errors {m.result.errors} {dict(m.result.statuses)}"
        )
        c = m.cpu
        print(
            f"      CPU: server {c.get('server', 0):.2f}, postgres {c.get('postgres', 0):.2f}, "
            f"client {c.get('client', 0):.2f}, other (relay's Tansu, consumer) "
            f"{c.get('other', 0):.2f} cores"
        )
    through = res.drain_events / res.drain_received if res.drain_received else 0.0
    wall = res.drain_events / res.drain_wall if res.drain_wall else 0.0
    c = res.drain_cpu
    print(
        f"  relay drain of a {res.drain_events}-event backlog (city-os relay alone; load1 "
        f"{res.drain_load1:.2f}): {through:,.0f} events/s first→last received, {wall:,.0f} events/s"
        f" from process start to an empty outbox ({res.drain_wall:.1f} s); CPU relay "
        f"{c.get('server', 0):.2f}, postgres {c.get('postgres', 0):.2f}, other (Tansu, consumer) "
        f"{c.get('other', 0):.2f} cores"
    )
