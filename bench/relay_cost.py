"""What the relay and a consumer cost the writers (issue #9: "the partial-update slowdown with
the relay and a consumer attached is explained and removed").

Layer: bench/. The same partial-update load (``PATCH …/attrs/temperature`` on ``ENTITIES``
existing entities, the foundation scenario) runs twice in one run, on one database:

1. ``city-os serve`` without Kafka (relay off: the events stay in the outbox), then
2. ``city-os serve`` with the relay on, publishing to a throwaway Tansu, and a consumer without a
   group reading every record (``bench.kafka.Tap``), after the outbox backlog of run 1 was drained.

Printed: both rates, their ratio (target ≥ 0.8: the relay may cost a fifth, not 4×), the CPU
split, and the outbox backlog the relay-on run left. Cause and fix of the earlier 4×: docs/bench.md.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg

from bench import stack
from bench.kafka import Tap, empty_outbox, kafka_env, tansu_topic
from bench.loadgen import post_batches
from bench.report import LABELS
from bench.runner import Measured, Runner
from bench.workload import Scenario
from city_os.config import Settings

ENTITIES = 5000
PREFIX = "rc-"
TARGET_RATIO = 0.8


@dataclass
class RelayCost:
    off: Measured | None = None
    on: Measured | None = None
    consumed: int = 0
    backlog_after: tuple[int, float] = (0, 0.0)
    statements: list[str] = field(default_factory=list)


def _scenario() -> Scenario:
    return Scenario("update", prefix=PREFIX, seed_prefix=PREFIX, existing=ENTITIES)


async def run(runner: Runner, dsn: str) -> RelayCost:
    res = RelayCost()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    assert pool is not None
    workers = runner.args.workers
    pool_max = max(1, runner.args.pool // workers)
    try:
        port = stack.free_port()
        env = stack.server_env(dsn, port, pool_max)
        with stack.running("api (relay off)", stack.api_commands(workers), env, port) as srv:
            await post_batches(port, PREFIX, ENTITIES)
            res.off = await asyncio.to_thread(runner.http, port, _scenario(), srv.pids, "rc-off")
        async with tansu_topic() as bootstrap:
            tap = Tap(bootstrap, Settings().kafka_topic)
            try:
                port = stack.free_port()
                env = kafka_env(dsn, port, pool_max, bootstrap)
                with stack.running("api+relay", stack.api_commands(workers), env, port) as srv:
                    await tap.start()
                    tap.follow(PREFIX.encode())
                    await empty_outbox(pool)  # run 1's events: published before measuring
                    before = tap.seen
                    res.on = await asyncio.to_thread(
                        runner.http, port, _scenario(), srv.pids, "rc-on"
                    )
                    res.backlog_after = await empty_outbox(pool)
                    res.consumed = tap.seen - before
            finally:
                await tap.stop()
    finally:
        await pool.close()
    return res


def print_results(res: RelayCost) -> None:
    if res.off is None or res.on is None:
        return
    off, on = res.off.result.rate(1), res.on.result.rate(1)
    ratio = on / off if off else 0.0
    verdict = "PASS" if ratio >= TARGET_RATIO else "MISS"
    print(f"\nRelay cost to the writers ({LABELS['update']}, {ENTITIES} entities):")
    for name, m in (("relay off", res.off), ("relay on + consumer", res.on)):
        c = m.cpu
        print(
            f"  {name:<20}{m.result.rate(1):>8.0f}/s  p50 {m.result.p50_ms:5.1f}  p99 "
            f"{m.result.p99_ms:6.1f} ms  errors {m.result.errors}  load1 {m.load1:.2f}  CPU server "
            f"{c.get('server', 0):.2f}, postgres {c.get('postgres', 0):.2f}, client "
            f"{c.get('client', 0):.2f}, other {c.get('other', 0):.2f} cores"
        )
    backlog, seconds = res.backlog_after
    print(
        f"  ratio on/off {ratio:.2f} (target ≥ {TARGET_RATIO})  {verdict}; the consumer read "
        f"{res.consumed} records; backlog after {backlog} events, empty {seconds:.1f} s later"
    )
