"""Several ``city-os notifier`` processes in one consumer group: each notification delivered
once, nothing lost when one is killed, and a periodic subscription firing once per interval.

The API and the outbox relay run in the test (no notifier there); the notifiers are real
processes on the test database and a Tansu of the test's own.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp.test_utils import TestClient, TestServer

from city_os.api.keys import POOL
from city_os.app import create_app
from city_os.devstack import TansuProcess
from city_os.notifier.dispatch import MAX_UNRECORDED, DispatchConfig
from tests.conftest import test_settings as settings_for_tests
from tests.integration.events.support import create_topic, poll
from tests.integration.notifier.processes import NotifierProcess, all_ready, start_notifier
from tests.integration.notifier.support import Client, Receiver, shelter, subscribe, write

PARTITIONS = 4
# Starting notifier processes took 55 s each at load average 15 on this 2-core machine: the
# project's 120 s per test is too short for tests that start two or three of them. Each step
# still fails on its own polling deadline (SLOW, processes.TIMEOUT).
pytestmark = pytest.mark.timeout(600)
SLOW = 180.0  # seconds for what a loaded 2-core machine may take (a timeout, never a sleep)


@asynccontextmanager
async def cluster(
    tansu: TansuProcess, replicas: int, **env: str
) -> AsyncIterator[tuple[Client, list[NotifierProcess], str, str]]:
    """(API + relay, notifier processes, topic, group)."""
    topic, group = f"test-rep-{uuid.uuid4().hex[:10]}", f"test-{uuid.uuid4().hex[:10]}"
    await create_topic(tansu.bootstrap, topic, PARTITIONS)
    # 10 writes in flight plus the relay: a pool of 8 ran dry at load average 15 (503s)
    settings = settings_for_tests(
        kafka_bootstrap=tansu.bootstrap, kafka_topic=topic, relay_poll_interval=0.2, db_pool_max=16
    )
    processes = [
        await start_notifier(tansu.bootstrap, topic, group, **env) for _ in range(replicas)
    ]
    try:
        async with TestClient(TestServer(create_app(settings))) as client:
            yield client, processes, topic, group
    finally:
        for p in processes:
            await p.stop()


async def pending(client: Client, tenant: str) -> int:
    return int(
        await client.app[POOL].fetchval(
            "SELECT count(*) FROM cityos.notifications WHERE tenant = $1 AND state = 'pending'",
            tenant,
        )
    )


async def updates(client: Client, tenant: str, entities: int, rounds: int) -> None:
    for n in range(entities):
        await write(client, "POST", "/entities", tenant, shelter(n, 0), status=201)
    for capacity in range(1, rounds + 1):
        await asyncio.gather(
            *(
                write(
                    client,
                    "PATCH",
                    f"/entities/urn:ngsi-ld:Shelter:{n}/attrs",
                    tenant,
                    {"capacity": {"type": "Property", "value": capacity}},
                )
                for n in range(entities)
            )
        )


def changes(sink: Receiver) -> dict[tuple[str, int], set[str]]:
    """(entity, capacity) → the notification ids that reported it."""
    out: dict[tuple[str, int], set[str]] = {}
    for r in sink.received:
        entity = r.body["data"][0]
        out.setdefault((entity["id"], entity["capacity"]["value"]), set()).add(r.body["id"])
    return out


def in_order(sink: Receiver) -> bool:
    last: dict[str, int] = {}
    for r in sink.received:
        entity = r.body["data"][0]
        value = entity["capacity"]["value"]
        if value < last.get(entity["id"], -1):
            return False
        last[entity["id"]] = value
    return True


async def test_two_notifiers_deliver_each_notification_once(
    tansu: TansuProcess, sink: Receiver, tenant: str
) -> None:
    async with cluster(tansu, 2) as (client, replicas, _, _):
        await all_ready(replicas, PARTITIONS, 0)
        await subscribe(
            client,
            tenant,
            {"entities": [{"type": "Shelter"}], "notification": {"endpoint": {"uri": sink.url}}},
        )
        await all_ready(replicas, PARTITIONS, 1)
        await updates(client, tenant, entities=20, rounds=10)
        await sink.wait_for(220, within=SLOW)

        async def delivered() -> bool:
            return await pending(client, tenant) == 0

        await poll(delivered, SLOW)
        assert len(sink.received) == 220
        assert len({r.body["id"] for r in sink.received}) == 220
        assert len(changes(sink)) == 220
        assert in_order(sink)


async def test_a_notifier_killed_mid_load_loses_nothing(
    tansu: TansuProcess, sink: Receiver, tenant: str
) -> None:
    async with cluster(tansu, 1) as (client, replicas, topic, group):
        await all_ready(replicas, PARTITIONS, 0)
        await subscribe(
            client,
            tenant,
            {"entities": [{"type": "Shelter"}], "notification": {"endpoint": {"uri": sink.url}}},
        )
        await all_ready(replicas, PARTITIONS, 1)
        load = asyncio.create_task(updates(client, tenant, entities=10, rounds=30))
        await sink.wait_for(60, within=SLOW)
        replicas[0].kill()
        await load
        successor = await start_notifier(tansu.bootstrap, topic, group)
        replicas.append(successor)
        await all_ready([successor], PARTITIONS, 1)

        async def everything() -> bool:
            return len(changes(sink)) == 310 and await pending(client, tenant) == 0

        # a loaded machine: the successor's start, group join and the lease take their time
        await poll(everything, SLOW)
        # repeats only of deliveries sent but not yet recorded by the killed replica, and with
        # the same notification id
        assert all(len(ids) == 1 for ids in changes(sink).values())
        repeated = len(sink.received) - 310
        assert repeated <= MAX_UNRECORDED + DispatchConfig().concurrency, repeated


async def test_a_periodic_subscription_fires_once_per_interval(
    tansu: TansuProcess, sink: Receiver, tenant: str
) -> None:
    async with cluster(tansu, 2) as (client, replicas, _, _):
        await all_ready(replicas, PARTITIONS, 0)
        await write(client, "POST", "/entities", tenant, shelter(1), status=201)
        await subscribe(
            client,
            tenant,
            {
                "entities": [{"type": "Shelter"}],
                "timeInterval": 1,
                "notification": {"endpoint": {"uri": sink.url}},
            },
        )
        got = await sink.wait_for(4, within=30)
        # A period fired by both replicas carries the same id (period_id: tenant, subscription,
        # due time) — so ids are distinct, and there are no more notifications than periods
        # elapsed. (Gaps alone would judge the scheduler's punctuality: under load a late
        # period is followed by an on-time one less than an interval later.)
        assert len({r.body["id"] for r in got}) == len(got)
        span = got[-1].at - got[0].at
        assert len(got) - 1 <= math.ceil(span / 1.0) + 1, [round(r.at - got[0].at, 2) for r in got]
