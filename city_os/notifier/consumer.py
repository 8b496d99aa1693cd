"""The notifier's Kafka consumer group on the change-event topic.

Layer: notifier/. Replicas share the topic's partitions (all changes of an entity are on one
partition, so one replica sees them in order). Each fetched batch goes to ``handle``, which
stores its notifications (committed without waiting for the WAL flush); the batch's offsets are
committed only after ``durable`` returned (everything stored so far is flushed) — and not after
every batch: a re-consumed event stores nothing new (its rows exist), so commits go out
every ``COMMIT_INTERVAL`` seconds, on a rebalance and on shutdown, which bounds re-reading
after a crash. Fetches wait at most ``fetch_wait`` seconds for data (latency: a change should
reach its receiver within tens of milliseconds). A lost connection or a failing ``handle``
restarts the consumer after a back-off, from the last committed offsets. A log that Kafka lost
and began again (Tansu restarted) is read again from its start (``events.consume.LogWatch``;
the deliveries already stored make the re-read events store nothing new).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from city_os.events.consume import LogWatch, consumer_settings

log = logging.getLogger(__name__)
COMMIT_INTERVAL = 0.5  # seconds between offset commits while events flow
MAX_BACKOFF = 5.0
State = Literal["starting", "up", "down"]


@dataclass(frozen=True)
class ConsumerConfig:
    bootstrap: str
    topic: str
    group_id: str
    batch_size: int = 500
    fetch_wait: float = 0.01


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: ChangeConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # Everything handled so far is durable: hand the partitions over at that point.
        await self._owner.commit()
        if self._owner.watch is not None:
            self._owner.watch.forget(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._owner.assigned = len(assigned)


class ChangeConsumer:
    def __init__(
        self,
        config: ConsumerConfig,
        handle: Callable[[list[dict[str, Any]]], Awaitable[int]],
        durable: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self._handle = handle
        self._durable = durable
        self._consumer: AIOKafkaConsumer | None = None
        self.watch: LogWatch | None = None
        self._offsets: dict[TopicPartition, int] = {}
        self._last_commit = 0.0
        self._committing: asyncio.Task[None] | None = None
        self.state: State = "starting"
        self.error: str | None = None
        self.assigned = 0  # partitions of this replica

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.state, self.error = "down", f"{type(exc).__name__}: {exc}"
                log.warning("notifier consumer: %s; restarting in %.1f s", self.error, backoff)
                await self._stop()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = 0.2

    async def _consume(self) -> None:
        cfg = self.config
        consumer = AIOKafkaConsumer(
            **consumer_settings(
                cfg.bootstrap,
                group_id=cfg.group_id,
                client_id="city-os-notifier",
                fetch_max_wait_ms=max(1, int(cfg.fetch_wait * 1000)),
                max_poll_records=cfg.batch_size,
                # A replica that died hands its partitions over after this (Kafka's minimum).
                session_timeout_ms=6_000,
                heartbeat_interval_ms=2_000,
            )
        )
        consumer.subscribe([cfg.topic], listener=_Rebalance(self))
        self._consumer = consumer
        self.watch = watch = LogWatch(consumer)
        self._offsets = {}
        await consumer.start()
        self.state, self.error = "up", None
        try:
            while True:
                batch = await watch.screen(
                    await consumer.getmany(timeout_ms=200, max_records=cfg.batch_size)
                )
                for tp in watch.begun:  # offsets of the old log must not be committed
                    self._offsets.pop(tp, None)
                envelopes: list[dict[str, Any]] = []
                offsets: dict[TopicPartition, int] = {}
                for tp, records in batch.items():
                    for record in records:
                        try:
                            envelopes.append(orjson.loads(record.value or b""))
                        except orjson.JSONDecodeError:
                            log.warning("skipping a malformed event at %s@%d", tp, record.offset)
                        offsets[tp] = record.offset + 1
                if envelopes:
                    await self._handled(envelopes)
                self._offsets.update(offsets)
                due = time.monotonic() - self._last_commit >= COMMIT_INTERVAL
                if due and (self._committing is None or self._committing.done()):
                    # in the background: a commit round trip must not delay the next batch
                    self._committing = asyncio.get_running_loop().create_task(self.commit())
        finally:
            with contextlib.suppress(Exception):
                if self._committing is not None:
                    await self._committing
                await self.commit()
            await self._stop()

    async def _handled(self, envelopes: list[dict[str, Any]]) -> None:
        """Hand the batch over until it is stored (PostgreSQL may be away for a while): its
        offsets must not be committed before."""
        backoff = 0.2
        while True:
            try:
                await self._handle(envelopes)
            except Exception as exc:
                self.state, self.error = "down", f"storing notifications: {exc!r}"
                log.warning("notifier: %s; retrying in %.1f s", self.error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            self.state, self.error = "up", None
            return

    async def commit(self) -> None:
        consumer, offsets = self._consumer, self._offsets
        self._last_commit = time.monotonic()
        if consumer is None or not offsets:
            return
        self._offsets = {}
        try:
            if self._durable is not None:  # what was stored for these offsets is on disk
                await self._durable()
            await consumer.commit(offsets)
        except Exception:
            # Not fatal: the rows are durable, a re-read of these events stores nothing new.
            log.info("notifier consumer: offset commit failed; these events may be re-read")

    async def _stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 5.0)
