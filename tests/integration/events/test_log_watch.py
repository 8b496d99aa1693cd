"""A consumer whose Kafka lost its log re-reads the new log from the start (``LogWatch``), also
when the new log has grown past the consumer's old offset before it fetched again."""

from __future__ import annotations

import signal
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from city_os.devstack import TansuProcess, start_tansu
from city_os.events.consume import LogWatch, consumer_settings
from tests.integration.events.support import TIMEOUT, create_topic

N = 20


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, partition=0)
    finally:
        await producer.stop()


async def read(consumer: AIOKafkaConsumer, watch: LogWatch, wanted: set[bytes]) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT
    while not wanted <= set(got):
        assert time.monotonic() < deadline, f"{len(wanted - set(got))} records never came"
        batch = await watch.screen(await consumer.getmany(timeout_ms=200))
        got.extend(r.value or b"" for records in batch.values() for r in records)
    return got


async def test_a_log_begun_again_past_the_old_offset_is_read_from_its_start(
    tansu: TansuProcess, topic: str
) -> None:
    await create_topic(tansu.bootstrap, topic, partitions=1)
    old = [f"old-{i}".encode() for i in range(N)]
    await produce(tansu.bootstrap, topic, old)
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(**consumer_settings(tansu.bootstrap, metadata_max_age_ms=500))
    consumer.assign([tp])
    watch = LogWatch(consumer)
    await consumer.start()
    restarted: TansuProcess | None = None
    try:
        assert await read(consumer, watch, set(old)) == old
        # No fetch while Kafka restarts and the new log grows to twice the old one: the
        # consumer's position (N) is then valid in the new log, and everything below it is new.
        consumer.pause(tp)
        tansu.process.send_signal(signal.SIGKILL)
        await tansu.process.wait()
        restarted = await start_tansu(tansu.port)
        await create_topic(restarted.bootstrap, topic, partitions=1)
        new = [f"new-{i}".encode() for i in range(2 * N)]
        await produce(restarted.bootstrap, topic, new)
        consumer.resume(tp)
        got = await read(consumer, watch, set(new))
        assert set(got) == set(new)  # nothing of the old log came again, nothing new skipped
        assert watch.restarts == 1
        # The same log afterwards: checks go on without re-reading anything.
        more = [f"more-{i}".encode() for i in range(5)]
        await produce(restarted.bootstrap, topic, more)
        assert await read(consumer, watch, set(more)) == more
        assert watch.restarts == 1
    finally:
        await consumer.stop()
        if restarted is not None:
            await restarted.stop()
