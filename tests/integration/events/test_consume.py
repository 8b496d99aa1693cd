"""``city_os.events.consume``: filters, de-duplicates by event id, commits after processing."""

from __future__ import annotations

import uuid

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from city_os.devstack import TansuProcess
from city_os.events import ChangeEvent, consume
from tests.integration.events.support import (
    check_event,
    create,
    create_topic,
    poll,
    relay_client,
    set_level,
    unpublished,
)


async def test_consume_filters_dedupes_and_resumes_after_the_last_processed(
    tansu: TansuProcess, topic: str, tenant: str, pool: asyncpg.Pool
) -> None:
    await create_topic(tansu.bootstrap, topic, partitions=1)  # one partition: a total order
    async with relay_client(tansu.bootstrap, topic) as client:
        await create(client, tenant, 1, 1.0)
        await set_level(client, tenant, 1, 2.0)
        await set_level(client, tenant, 1, 3.0)

        async def drained() -> bool:
            return await unpublished(pool, tenant) == 0

        await poll(drained)
    # Redeliver the first event, as a relay restarted mid-batch would, then a new one.
    first = await pool.fetchval(
        "SELECT payload::text FROM cityos.outbox WHERE tenant = $1 ORDER BY seq LIMIT 1", tenant
    )
    sentinel = {**orjson.loads(first), "id": str(uuid.uuid4())}
    producer = AIOKafkaProducer(bootstrap_servers=tansu.bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(topic, first.encode(), key=b"dup")
        await producer.send_and_wait(topic, orjson.dumps(sentinel), key=b"dup")
    finally:
        await producer.stop()

    group = f"alerts-{uuid.uuid4().hex[:8]}"
    stream = consume(
        tansu.bootstrap, topic=topic, group_id=group, tenants=[tenant], types=["WaterObserved"]
    )
    seen: list[ChangeEvent] = []
    async for event in stream:
        check_event(event.envelope)
        seen.append(event)
        if len(seen) == 3:
            break  # the third is being processed: not committed
    await stream.aclose()
    assert [e.kind for e in seen] == ["created", "updated", "updated"]
    assert [e.value("waterLevel") for e in seen] == [1.0, 2.0, 3.0]

    # Same group again: resumes with the event that was not finished; the duplicate of the
    # first event (already committed past) is not delivered again.
    again = consume(tansu.bootstrap, topic=topic, group_id=group, tenants=[tenant])
    resumed = await anext(again)
    await again.aclose()
    assert resumed.id == seen[2].id

    # Without a group: the whole topic; the duplicate is dropped, the sentinel after it comes.
    everything = consume(tansu.bootstrap, topic=topic, tenants=[tenant])
    ids = [(await anext(everything)).id for _ in range(4)]
    await everything.aclose()
    assert ids == [*(e.id for e in seen), sentinel["id"]]
