"""Tansu killed (SIGKILL) and restarted under a write load: every event and every notification
still arrives, with nothing re-created by hand (issue #9, "The stream itself must not lose
events"). Tansu keeps everything in memory: the restarted broker has no topic, no consumer group
and no offsets, and acknowledges produce requests for the lost topic without storing them."""

from __future__ import annotations

import asyncio
import itertools
import signal
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from city_os.api.ops import NOTIFIER, RELAY
from city_os.app import create_app
from city_os.devstack import TansuProcess, start_tansu
from city_os.events.consume import ChangeEvent
from city_os.events.model import EVENT_TYPE_PREFIX
from tests.integration.events.support import (
    TopicReader,
    create,
    create_topic,
    poll,
    set_level,
    unpublished,
)
from tests.integration.notifier.support import Receiver, consuming, settings, subscribe

Client = TestClient  # type: ignore[type-arg]
ENTITIES = 4
TIMEOUT = 90.0


@pytest.fixture
async def sink() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


class WriteLoad:
    """Sets entity ``k % ENTITIES`` to level ``k`` for k = 1, 2, … until stopped; the level
    identifies the change in its event and in its notification."""

    def __init__(self, client: Client, tenant: str) -> None:
        self.client, self.tenant = client, tenant
        self.levels: list[tuple[str, float]] = []
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        for k in itertools.count(1):
            if self._stopping:
                return
            await set_level(self.client, self.tenant, k % ENTITIES, float(k))
            self.levels.append((f"urn:ngsi-ld:WaterObserved:{k % ENTITIES}", float(k)))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._stopping = True
        await asyncio.wait_for(self._task, 60)


async def sigkill(tansu: TansuProcess) -> None:
    tansu.process.send_signal(signal.SIGKILL)
    await tansu.process.wait()


async def entity_event_ids(pool: asyncpg.Pool, tenant: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT event_id::text FROM cityos.outbox WHERE tenant = $1 AND event_type LIKE $2",
        tenant,
        EVENT_TYPE_PREFIX + "%",
    )
    return [r["event_id"] for r in rows]


def notified(sink: Receiver) -> set[tuple[str, float]]:
    out = set()
    for r in sink.received:
        for entity in r.body["data"]:
            out.add((entity["id"], float(entity["waterLevel"]["value"])))
    return out


async def test_tansu_killed_under_load_loses_no_event_and_no_notification(
    tansu: TansuProcess, topic: str, tenant: str, pool: asyncpg.Pool, sink: Receiver
) -> None:
    await create_topic(tansu.bootstrap, topic)
    app = create_app(settings(tansu.bootstrap, topic, f"test-{uuid.uuid4().hex[:10]}"))
    restarted: TansuProcess | None = None
    try:
        async with TestClient(TestServer(app)) as client:
            relay = client.app[RELAY]
            await consuming(client.app[NOTIFIER])
            await subscribe(
                client,
                tenant,
                {
                    "entities": [{"type": "WaterObserved"}],
                    "notification": {"endpoint": {"uri": sink.url}, "format": "normalized"},
                },
            )
            for n in range(ENTITIES):
                await create(client, tenant, n, 0.0)
            load = WriteLoad(client, tenant)
            load.start()

            async def flowing() -> bool:
                return len(load.levels) >= 30 and len(notified(sink)) >= 20

            await poll(flowing, TIMEOUT)
            await sigkill(tansu)  # in the middle of the stream: no warning, nothing flushed

            async def backlog() -> bool:
                return await unpublished(pool, tenant) >= 10

            await poll(backlog, TIMEOUT)
            restarted = await start_tansu(tansu.port)  # same port, empty, no topic
            written = len(load.levels)

            async def more_notified() -> bool:
                return len(load.levels) > written + 30 and len(notified(sink)) > written + 10

            await poll(more_notified, TIMEOUT)
            await load.stop()
            expected_changes = {(f"urn:ngsi-ld:WaterObserved:{n}", 0.0) for n in range(ENTITIES)}
            expected_changes |= set(load.levels)

            async def all_notified() -> bool:
                return notified(sink) >= expected_changes

            await poll(all_notified, TIMEOUT)
            assert relay.metrics.relay_lost_log._value.get() >= 1
        expected = await entity_event_ids(pool, tenant)
        async with TopicReader(restarted.bootstrap, topic, tenant) as reader:
            await reader.read_until(lambda r: r.ids() >= set(expected))
        events = reader.first_seen()
        levels = {
            (e["subject"], float(v["new"][0]["value"]))
            for e in events
            for v in ChangeEvent.from_envelope(e).changes.values()  # a created one: its entity
        }
        assert levels >= expected_changes
        # a notification re-sent after the restart keeps its id: one id per change
        by_change: dict[tuple[str, float], set[str]] = {}
        for r in sink.received:
            for entity in r.body["data"]:
                key = (entity["id"], float(entity["waterLevel"]["value"]))
                by_change.setdefault(key, set()).add(r.body["id"])
        repeated: list[Any] = [k for k, ids in by_change.items() if len(ids) > 1]
        assert not repeated, repeated[:5]
    finally:
        if restarted is not None:
            await restarted.stop()
