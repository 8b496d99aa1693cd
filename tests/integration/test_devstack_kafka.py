"""The development Kafka (Tansu via city_os.devstack) speaks enough Kafka for aiokafka."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from city_os.devstack import TansuProcess, free_port, start_tansu

TIMEOUT = 30.0  # seconds for any single broker round trip


async def test_produce_and_consume_one_message(tansu: TansuProcess) -> None:
    topic = f"devstack-{uuid.uuid4().hex}"
    producer = AIOKafkaProducer(
        bootstrap_servers=tansu.bootstrap, acks="all", enable_idempotence=False
    )
    await producer.start()
    try:
        metadata = await asyncio.wait_for(
            producer.send_and_wait(topic, b"hello", key=b"tenant/urn:ngsi-ld:Test:1"), TIMEOUT
        )
    finally:
        await producer.stop()

    # No consumer group: Tansu holds a JoinGroup for about 5 s, which this check doesn't need.
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=tansu.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), TIMEOUT)
    finally:
        await consumer.stop()

    assert (record.topic, record.partition, record.offset) == (
        topic,
        metadata.partition,
        metadata.offset,
    )
    assert record.key == b"tenant/urn:ngsi-ld:Test:1"
    assert record.value == b"hello"


async def test_stop_kills_the_broker_and_frees_the_port() -> None:
    broker = await start_tansu(free_port())
    await broker.stop()
    await broker.stop()  # idempotent
    assert broker.process.returncode is not None
    again = await start_tansu(broker.port)  # the port is usable again
    await again.stop()


async def test_start_refuses_a_port_in_use(tansu: TansuProcess) -> None:
    with pytest.raises(RuntimeError, match="already in use"):
        await start_tansu(tansu.port)
