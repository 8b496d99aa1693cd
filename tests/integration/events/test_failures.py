"""Nothing committed is lost: Kafka stopped during a write load, a relay killed mid-publish."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from city_os.api.ops import RELAY
from city_os.devstack import TansuProcess, start_tansu
from city_os.events.relay import RELAY_LOCK, OutboxRelay, RelayConfig
from tests.conftest import TEST_DSN
from tests.integration.events.support import (
    TopicReader,
    create,
    create_topic,
    outbox_ids,
    poll,
    relay_client,
    set_level,
    unpublished,
)

Client = TestClient  # type: ignore[type-arg]
ENTITIES = 4


def assert_chains(events: list[dict[str, Any]], updates: int | None = None) -> None:
    """Per entity: created first, then every ``previous`` equals the ``new`` before it."""
    chains: dict[str, list[dict[str, Any]]] = {}
    for env in events:
        chains.setdefault(env["subject"], []).append(env)
    assert len(chains) == ENTITIES
    for chain in chains.values():
        assert chain[0]["type"] == "jp.city-os.entity.created"
        level = chain[0]["data"]["entity"]["attrs"]
        (instances,) = level.values()
        value = instances[0]["value"]
        for env in chain[1:]:
            (change,) = env["data"]["changes"].values()
            assert change["previous"][0]["value"] == value
            value = change["new"][0]["value"]
        if updates is not None:
            assert len(chain) == updates + 1


class WriteLoad:
    """Updates the tenant's entities one after another until stopped; counts the writes."""

    def __init__(self, client: Client, tenant: str) -> None:
        self.client, self.tenant, self.writes = client, tenant, 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def _run(self) -> None:
        for k in itertools.count(1):
            if self._stopping:
                return
            await set_level(self.client, self.tenant, k % ENTITIES, float(k))
            self.writes += 1

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Finish the write in flight (cancelling it would leave a commit uncounted)."""
        assert self._task is not None
        self._stopping = True
        await asyncio.wait_for(self._task, 60)


async def published_ids(pool: asyncpg.Pool, tenant: str) -> set[str]:
    rows = await pool.fetch(
        "SELECT event_id::text FROM cityos.outbox WHERE tenant = $1 AND published_at IS NOT NULL",
        tenant,
    )
    return {r["event_id"] for r in rows}


async def test_kafka_stopped_during_a_write_load_loses_nothing(
    tansu: TansuProcess, topic: str, tenant: str, pool: asyncpg.Pool
) -> None:
    await create_topic(tansu.bootstrap, topic)
    restarted: TansuProcess | None = None
    try:
        async with relay_client(tansu.bootstrap, topic) as client:
            relay = client.app[RELAY]
            for n in range(ENTITIES):
                await create(client, tenant, n, 0.0)
            load = WriteLoad(client, tenant)
            load.start()

            async def some_published() -> bool:
                return len(await published_ids(pool, tenant)) >= 20

            await poll(some_published)
            # Park the relay (it takes the lock per batch) so a reader can catch up with all
            # that the first broker acknowledged: Tansu forgets everything when it stops.
            async with pool.acquire() as lock:
                await lock.execute("SELECT pg_advisory_lock($1)", RELAY_LOCK)
                before_stop = await published_ids(pool, tenant)
                async with TopicReader(tansu.bootstrap, topic, tenant) as first:
                    await first.read_until(lambda r: r.ids() >= before_stop)
                await tansu.stop()
                await lock.execute("SELECT pg_advisory_unlock($1)", RELAY_LOCK)

            # Kafka is down: writes go on, the backlog grows, /ready tells Kafka from PostgreSQL.
            backlog_at = load.writes

            async def kafka_down() -> bool:
                body = await (await client.get("/ready")).json()
                return bool(body["components"]["kafka"]["status"] == "down")

            await poll(kafka_down)
            ready = await client.get("/ready")
            body = await ready.json()
            assert ready.status == 200  # the API still takes writes: they wait in the outbox
            assert body["components"]["postgresql"]["status"] == "up"

            def kafka_errors() -> float:
                value: float = relay.metrics.publish_errors.labels("kafka")._value.get()
                return value

            async def backlog_grew() -> bool:
                # Outlast the publish timeout: the relay fails batches and rolls them back.
                grew = load.writes > backlog_at + 20 and await unpublished(pool, tenant) > 20
                return grew and kafka_errors() >= 2 and relay.kafka == "down"

            await poll(backlog_grew)
            # Same port, nothing re-created by hand: the relay reconnects, finds the topic gone
            # (Tansu would acknowledge records for it and drop them), re-creates it and
            # republishes the retained window along with the backlog.
            restarted = await start_tansu(tansu.port)

            async def more_published() -> bool:
                return len(await published_ids(pool, tenant)) > len(before_stop) + 20

            await poll(more_published)
            await load.stop()

            async def drained() -> bool:
                return await unpublished(pool, tenant) == 0

            await poll(drained)
            changes = ENTITIES + load.writes
            assert relay.kafka == "up"
        expected = await outbox_ids(pool, tenant)
        assert len(expected) == changes  # one event per committed change
        async with TopicReader(restarted.bootstrap, topic, tenant) as second:
            await second.read_until(lambda r: r.ids() >= set(expected))
        assert second.ids() == set(expected)  # the retained window came again, and the backlog
        assert relay.metrics.relay_lost_log._value.get() >= 1
        merged = {e["id"]: e for e in first.first_seen() + second.first_seen()}
        assert_chains(list(merged.values()))
    finally:
        if restarted is not None:
            await restarted.stop()


class KilledMidPublish(OutboxRelay):
    """A relay that stops dead after Kafka acknowledged a batch, before marking it published."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acknowledged = asyncio.Event()

    async def _publish(self, rows: list[asyncpg.Record]) -> None:
        await super()._publish(rows)
        self.acknowledged.set()
        await asyncio.Event().wait()  # cancelled here by the test


async def test_relay_killed_mid_publish_loses_nothing(
    tansu: TansuProcess, topic: str, tenant: str, pool: asyncpg.Pool
) -> None:
    await create_topic(tansu.bootstrap, topic)
    updates = 5
    async with relay_client(tansu.bootstrap, topic, relay_enabled=False) as client:
        for n in range(ENTITIES):
            await create(client, tenant, n, 0.0)
        for k in range(1, updates + 1):
            await asyncio.gather(*(set_level(client, tenant, n, float(k)) for n in range(ENTITIES)))
    expected = await outbox_ids(pool, tenant)
    assert len(expected) == ENTITIES * (updates + 1)

    config = RelayConfig(tansu.bootstrap, topic, batch_size=100_000, poll_interval=0.2)
    doomed = KilledMidPublish(pool, TEST_DSN, config)
    task = asyncio.create_task(doomed.run())
    await asyncio.wait_for(doomed.acknowledged.wait(), 60)
    task.cancel()  # abrupt: the transaction rolls back, the rows stay unpublished
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await unpublished(pool, tenant) == len(expected)

    relay = OutboxRelay(pool, TEST_DSN, config)
    task = asyncio.create_task(relay.run())
    try:

        async def drained() -> bool:
            return await unpublished(pool, tenant) == 0

        await poll(drained)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    async with TopicReader(tansu.bootstrap, topic, tenant) as reader:
        await reader.read_until(lambda r: len(r.records) >= 2 * len(expected))
    assert reader.ids() == set(expected)
    assert len(reader.records) == 2 * len(expected)  # once by each relay: consumers de-dupe
    assert_chains(reader.first_seen(), updates)


async def test_a_relay_restarted_while_kafka_lost_its_log_still_republishes(
    tansu: TansuProcess, topic: str, tenant: str, pool: asyncpg.Pool
) -> None:
    """The relay stops, Kafka loses everything (Tansu restarted empty), another relay process
    starts: it reads the acknowledged offsets kept in PostgreSQL, finds their topic gone before
    it publishes anything, and republishes the retained window — in seq order, in bounded
    batches (batch_size 100 here)."""
    await create_topic(tansu.bootstrap, topic)
    async with relay_client(tansu.bootstrap, topic) as client:
        for n in range(ENTITIES):
            await create(client, tenant, n, 0.0)
        for k in range(1, 4):
            for n in range(ENTITIES):
                await set_level(client, tenant, n, float(k))

        async def drained() -> bool:
            return await unpublished(pool, tenant) == 0

        await poll(drained)
    before = await outbox_ids(pool, tenant)
    stored = await pool.fetchval(
        "SELECT count(*) FROM cityos.relay_offsets WHERE topic = $1", topic
    )
    assert stored >= 1  # the acknowledged offsets outlive the relay

    await tansu.stop()
    restarted = await start_tansu(tansu.port)  # same address, empty
    try:
        config = RelayConfig(restarted.bootstrap, topic, batch_size=100, poll_interval=0.2)
        relay = OutboxRelay(pool, TEST_DSN, config)  # a new process: nothing in memory
        async with relay_client(restarted.bootstrap, topic, relay_enabled=False) as client:
            await set_level(client, tenant, 0, 99.0)  # one more event, for the new relay
        expected = await outbox_ids(pool, tenant)
        assert len(expected) == len(before) + 1
        task = asyncio.create_task(relay.run())
        try:

            async def replayed() -> bool:
                done = await pool.fetchval(
                    "SELECT count(*) = 0 FROM cityos.relay_replay WHERE topic = $1", topic
                )
                return bool(relay.metrics.relay_lost_log._value.get() >= 1 and done)

            await poll(replayed, 120)  # the window holds every earlier test's events too
            await poll(drained)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert relay.metrics.events_requeued._value.get() >= len(before)
        async with TopicReader(restarted.bootstrap, topic, tenant) as reader:
            await reader.read_until(lambda r: r.ids() >= set(expected))
        assert_chains(reader.first_seen())  # per entity in change order, the new one last
    finally:
        await restarted.stop()


async def test_a_relay_restarted_on_a_kafka_that_kept_its_log_republishes_nothing(
    tansu: TansuProcess, topic: str, tenant: str, pool: asyncpg.Pool
) -> None:
    """The check of the kept offsets raises no false alarm: Kafka still has the records."""
    await create_topic(tansu.bootstrap, topic)
    async with relay_client(tansu.bootstrap, topic) as client:
        for n in range(ENTITIES):
            await create(client, tenant, n, 0.0)
        for k in range(1, 26):
            await asyncio.gather(*(set_level(client, tenant, n, float(k)) for n in range(ENTITIES)))

        async def drained() -> bool:
            return await unpublished(pool, tenant) == 0

        await poll(drained)
    config = RelayConfig(tansu.bootstrap, topic, poll_interval=0.2)
    relay = OutboxRelay(pool, TEST_DSN, config)
    async with relay_client(tansu.bootstrap, topic, relay_enabled=False) as client:
        await set_level(client, tenant, 0, 99.0)
    task = asyncio.create_task(relay.run())
    try:
        await poll(drained)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert relay.metrics.relay_lost_log._value.get() == 0
    assert relay.metrics.events_requeued._value.get() == 0
    expected = await outbox_ids(pool, tenant)
    async with TopicReader(tansu.bootstrap, topic, tenant) as reader:
        await reader.read_until(lambda r: r.ids() >= set(expected))
    assert len(reader.records) == len(expected)  # each event once
