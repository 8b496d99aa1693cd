"""Kafka-side helpers of the event groups (lag, notify, relay): a throwaway Tansu with the topic
created, a consumer without a group (``Tap``), the outbox drain wait and the server environment.

Layer: bench/. Used from the bench process only (the writers run in the client process, see
``bench.loadgen``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench import stack
from city_os.config import Settings
from city_os.devstack import start_tansu
from city_os.events.relay import outbox_backlog

PARTITIONS = 4
TIMEOUT = 120.0


@asynccontextmanager
async def tansu_topic(partitions: int = PARTITIONS) -> AsyncIterator[str]:
    """A Tansu on a free port with the change-event topic created; yields its bootstrap."""
    tansu = await start_tansu(stack.free_port())
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=tansu.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(Settings().kafka_topic, partitions, 1)])
        finally:
            await admin.close()
        yield tansu.bootstrap
    finally:
        await tansu.stop()


class Tap:
    """Kafka consumer without a group: keeps (receive time, key, value) of matching keys."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20
        )
        self.match = b"\x00"  # key substring of the records to keep
        self.kept: list[tuple[float, bytes, bytes]] = []
        self.seen = 0
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        parts = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
        self.consumer.assign(parts)
        await self.consumer.seek_to_end(*parts)
        for tp in parts:  # resolve "end" now, before any write
            await self.consumer.position(tp)
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            now = time.time()
            for records in batch.values():
                self.seen += len(records)
                for r in records:
                    if r.key is not None and self.match in r.key:
                        self.kept.append((now, r.key, r.value or b""))

    def follow(self, match: bytes) -> None:
        self.match, self.kept = match, []

    async def wait_for(self, n: int, within: float = TIMEOUT) -> bool:
        deadline = time.monotonic() + within
        while len(self.kept) < n:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        await self.consumer.stop()


async def empty_outbox(pool: asyncpg.Pool, within: float = TIMEOUT) -> tuple[int, float]:
    """(events waiting now, seconds until none are left)."""
    started = time.monotonic()
    first = (await outbox_backlog(pool)).events
    while (await outbox_backlog(pool)).events and time.monotonic() - started < within:  # noqa: ASYNC110 (polling PostgreSQL)
        await asyncio.sleep(0.05)
    return first, time.monotonic() - started


def kafka_env(dsn: str, port: int, pool_max: int, bootstrap: str) -> dict[str, str]:
    """``city-os serve``'s environment with the relay on, publishing to ``bootstrap``."""
    env = stack.server_env(dsn, port, pool_max)
    env.update(CITYOS_KAFKA_BOOTSTRAP=bootstrap, CITYOS_RELAY_ENABLED="true")
    return env
