"""The outbox relay: publishes committed outbox rows to Kafka, in order, at least once.

Layer: events/. Writers put one outbox row per entity change in the same statement as the data
(store/postgres/entities.py) and NOTIFY ``cityos_outbox``; the relay wakes on that (plus a periodic
poll, in case a notification is missed) and drains the backlog batch by batch:

    BEGIN; pg_try_advisory_xact_lock(RELAY_LOCK)            -- one active relay at a time
    SELECT … WHERE published_at IS NULL ORDER BY seq LIMIT n FOR UPDATE
    send every row (key = tenant/entityId) → await all acks (acks=all)
    UPDATE … SET published_at = now() WHERE seq = ANY(…); COMMIT

Ordering. Writes of one entity are serialised by its row lock and get their ``seq`` after taking
it, so per entity ``seq`` order is commit order. A batch is acknowledged by Kafka before the next
one is read, and the transaction-scoped advisory lock makes relays take turns, batch by batch:
several relays may run (standby ones retry the lock) without two of them ever publishing rows
concurrently. ``FOR UPDATE SKIP LOCKED`` alone would let two relays split one entity's events and
race them to Kafka. Rows of a transaction not yet committed are simply picked up by a later batch
(the relay selects by ``published_at``, not by a high-water mark), so none is skipped.

Failures. Kafka down: the batch fails, the transaction rolls back, the producer is rebuilt after
a back-off, and the backlog grows until Kafka returns. A relay killed mid-batch leaves its rows
unpublished; the next relay publishes them again, so consumers see *at least once* and
de-duplicate by event id (``city_os.events.consume`` does). Published rows are deleted after
``outbox_retention`` seconds. An event larger than ``max_message_bytes`` (the topic's limit) would
be refused by Kafka on every attempt and hold everything behind it: it is published as a claim
check instead (``events.model.claim_check``: no changes and entity, a dataref to the entity).

Kafka losing what it acknowledged (Tansu restarted, a real Kafka's unclean election): detected by
``events.lost_log`` (acknowledged offsets that go backwards, a missing topic, end offsets below
what was acknowledged; the acknowledged offsets are kept in PostgreSQL, so a relay restarted while
Kafka lost its log notices too). The relay then re-creates the topic if needed and republishes
the outbox's retained window from its first row, in ``seq`` order and bounded batches, with a
cursor kept in PostgreSQL (events/replay.py): consumers see those events a second time and
de-duplicate them by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from city_os.config import Settings
from city_os.events import replay
from city_os.events.lost_log import VERIFY_INTERVAL, AckedOffsets, LostLog
from city_os.events.model import claim_check
from city_os.observability.metrics import Metrics
from city_os.store.postgres.entities import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

RELAY_LOCK = 0x6369747972656C61  # advisory lock key of the active relay ("cityrela")
CONTENT_TYPE = b"application/cloudevents+json; charset=utf-8"
MAX_BACKOFF = 5.0  # seconds between attempts while Kafka or PostgreSQL is unreachable
STOP_TIMEOUT = 5.0  # seconds a failed producer may take to close
MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # aiokafka's own cap; RelayConfig.max_message_bytes decides
RECORD_OVERHEAD = 128  # bytes of record framing, beyond key, value and headers (a generous bound)

_CLEANUP = """
DELETE FROM cityos.outbox
WHERE published_at IS NOT NULL AND published_at < now() - make_interval(secs => $1)"""
_BACKLOG = """
SELECT count(*) AS events,
       coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0)::float8 AS age
FROM cityos.outbox WHERE published_at IS NULL"""


@dataclass(frozen=True)
class Backlog:
    events: int  # outbox rows not yet published
    oldest_age: float  # seconds since the oldest of them was written; 0 when none


async def outbox_backlog(pool: asyncpg.Pool) -> Backlog:
    """The relay lag: how many events wait and for how long (one index-only scan)."""
    row = await pool.fetchrow(_BACKLOG)
    assert row is not None
    return Backlog(int(row["events"]), float(row["age"]))


def backlog_collector(pool: asyncpg.Pool) -> Any:
    """A ``Metrics.collectors`` entry refreshing the outbox gauges on scrape."""

    async def collect(metrics: Metrics) -> None:
        backlog = await outbox_backlog(pool)
        metrics.outbox_backlog.set(backlog.events)
        metrics.outbox_oldest_age.set(backlog.oldest_age)

    return collect


@dataclass(frozen=True)
class RelayConfig:
    bootstrap: str
    topic: str
    idempotence: bool = False
    batch_size: int = 500
    poll_interval: float = 1.0
    retention: float = 86400.0
    publish_timeout: float = 10.0
    max_message_bytes: int = 1_000_000  # larger events go out as a claim check
    base_url: str = ""  # of the NGSI-LD API, for the dataref of claim checks

    @classmethod
    def from_settings(cls, settings: Settings) -> RelayConfig:
        return cls(
            bootstrap=settings.kafka_bootstrap,
            topic=settings.kafka_topic,
            idempotence=settings.kafka_idempotence,
            batch_size=settings.relay_batch_size,
            poll_interval=settings.relay_poll_interval,
            retention=settings.outbox_retention,
            publish_timeout=settings.kafka_publish_timeout,
            max_message_bytes=settings.kafka_max_message_bytes,
            base_url=settings.base_url,
        )


KafkaStatus = Literal["unknown", "up", "down"]


class OutboxRelay:
    """Drains ``cityos.outbox`` into Kafka. ``run()`` until cancelled."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        config: RelayConfig,
        metrics: Metrics | None = None,
    ) -> None:
        self.pool = pool
        self.dsn = dsn
        self.config = config
        self.metrics = metrics or Metrics()
        self.kafka: KafkaStatus = "unknown"
        self.kafka_error: str | None = None
        self.active = False  # held the relay lock on the last attempt
        self._producer: AIOKafkaProducer | None = None
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._last_cleanup = 0.0
        self._acked = AckedOffsets(config.topic)
        self._lost: str | None = None  # why Kafka's log is known to be lost, until republished
        self._last_verify = 0.0

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        backoff = 0.1
        try:
            while True:
                try:
                    await self._listen()
                    await self._ensure_producer()
                    self._wake.clear()
                    if self._lost is None:
                        await self._verify()
                    else:
                        await self._recover()
                    await self.drain()
                    await self._cleanup()
                    backoff = 0.1
                except (asyncio.CancelledError, KeyboardInterrupt):
                    raise
                except LostLog as exc:
                    self._lost_log(exc)
                    continue
                except Exception as exc:
                    await self._failed(exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.poll_interval)
        finally:
            await self.close()

    async def close(self) -> None:
        self._set_active(False)
        await self._drop_producer()
        if self._listener is not None:
            listener, self._listener = self._listener, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.close(), STOP_TIMEOUT)

    async def _listen(self) -> None:
        """LISTEN on a dedicated connection (not a pool one: it is held for good)."""
        if self._listener is not None and not self._listener.is_closed():
            return
        self._listener = await asyncpg.connect(self.dsn)
        await self._listener.add_listener(NOTIFY_CHANNEL, self._notified)

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _ensure_producer(self) -> None:
        if self._producer is not None:
            return
        timeout_ms = int(self.config.publish_timeout * 1000)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.config.bootstrap,
            client_id="city-os-relay",
            acks="all",
            enable_idempotence=self.config.idempotence,
            # No linger: a batch is sent whole before its acknowledgements are awaited (the
            # sends append to the accumulator without yielding), so lingering only delayed
            # every event by its length (latency path of notifications).
            linger_ms=0,
            max_batch_size=256 * 1024,
            max_request_size=MAX_MESSAGE_BYTES,
            request_timeout_ms=timeout_ms,
            metadata_max_age_ms=60_000,
        )
        try:
            await asyncio.wait_for(producer.start(), self.config.publish_timeout)
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), STOP_TIMEOUT)
            raise
        self._producer = producer
        self._last_verify = 0.0  # a new connection: check the log before publishing on it
        self._kafka_up()

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            # Pending sends are abandoned: their rows are still unpublished in the outbox.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), STOP_TIMEOUT)

    async def _failed(self, exc: Exception) -> None:
        # Timeouts come from producer start and batch acknowledgement; PostgreSQL has none here.
        kafka = isinstance(exc, KafkaError | TimeoutError)
        stage = "kafka" if kafka else "database"
        self.metrics.publish_errors.labels(stage).inc()
        if kafka:
            self.kafka, self.kafka_error = "down", f"{type(exc).__name__}: {exc}"
            await self._drop_producer()
        self._set_active(False)
        log.warning("outbox relay: %s failure, retrying: %r", stage, exc)

    def _kafka_up(self) -> None:
        self.kafka, self.kafka_error = "up", None

    def _set_active(self, active: bool) -> None:
        if active != self.active:
            self.active = active
            self.metrics.relay_active.set(1 if active else 0)

    # ------------------------------------------------------------- batches

    async def drain(self) -> int:
        """Publish batches until the backlog is empty or another relay is active."""
        total = 0
        while True:
            published = await self.publish_batch()
            if published is None:
                return total
            total += published
            if published < self.config.batch_size:
                return total

    async def publish_batch(self) -> int | None:
        """Publish the oldest unpublished rows; None when another relay holds the lock."""
        started = time.perf_counter()
        topic, size = self.config.topic, self.config.batch_size
        async with self.pool.acquire() as conn, conn.transaction():
            state = await replay.turn(conn, RELAY_LOCK, topic)
            if not state.locked:
                self._set_active(False)
                return None
            if not self.active:  # what the relays before this one had acknowledged
                await self._acked.take_over(state.offsets, self._producer)
            self._set_active(True)  # (the turn set synchronous_commit off: replay.py)
            if state.replay_after is None:
                rows = await conn.fetch(replay.SELECT_BATCH, size)
            else:  # republishing the retained window (Kafka lost its log), batch by batch
                rows = await replay.replay_batch(conn, state.replay_after, size)
            if rows:
                await self._publish(rows)
                await replay.mark(conn, topic, [r["seq"] for r in rows], self._acked.acked)
            if state.replay_after is not None:
                last = rows[-1]["seq"] if rows else state.replay_after
                await replay.advance(conn, topic, last, done=len(rows) < size)
                self.metrics.events_requeued.inc(sum(1 for r in rows if r["republished"]))
            if not rows:
                return 0
        self._kafka_up()
        self.metrics.events_published.inc(len(rows))
        self.metrics.publish_batch.observe(time.perf_counter() - started)
        return len(rows)

    async def _publish(self, rows: list[asyncpg.Record]) -> None:
        """Send every row, then wait for all acknowledgements (or fail the whole batch)."""
        producer = self._producer
        if producer is None:
            raise RuntimeError("the Kafka producer is not started")
        topic = self.config.topic
        async with asyncio.timeout(self.config.publish_timeout):
            futures = []
            for r in rows:
                key = f"{r['tenant']}/{r['entity_id']}".encode()
                headers = [
                    ("content-type", CONTENT_TYPE),
                    ("ce_id", r["event_id"].encode()),
                    ("ce_type", r["event_type"].encode()),
                ]
                value = self._fitting(r["payload"].encode(), key, headers)
                futures.append(await producer.send(topic, value=value, key=key, headers=headers))
            acks = await asyncio.gather(*futures)
        self._acked.acknowledged(acks)

    def _fitting(self, value: bytes, key: bytes, headers: list[tuple[str, bytes]]) -> bytes:
        """The record value as is, or its claim check if the record would exceed
        ``max_message_bytes`` (a broker refuses it for good: the relay would stop there)."""
        size = len(value) + len(key) + sum(len(k) + len(v) for k, v in headers) + RECORD_OVERHEAD
        if size <= self.config.max_message_bytes:
            return value
        envelope = orjson.loads(value)
        smaller = orjson.dumps(claim_check(envelope, self.config.base_url))
        self.metrics.events_oversized.inc()
        log.warning(
            "outbox relay: event %s of %s is %d bytes, over %d: published without its data",
            envelope.get("id"),
            envelope.get("subject"),
            size,
            self.config.max_message_bytes,
        )
        return smaller

    async def _cleanup(self) -> None:
        """Delete rows published more than ``retention`` seconds ago (the active relay only)."""
        if not self.active:
            return
        interval = max(self.config.poll_interval, min(60.0, self.config.retention / 10))
        now = time.monotonic()
        if now - self._last_cleanup < interval:
            return
        self._last_cleanup = now
        await self.pool.execute(_CLEANUP, self.config.retention)

    # ------------------------------------------------------------ lost log

    async def _verify(self) -> None:
        """After a (re)connect and every VERIFY_INTERVAL: is what Kafka acknowledged still there?"""
        now = time.monotonic()
        if self._producer is None or now - self._last_verify < VERIFY_INTERVAL:
            return
        async with asyncio.timeout(self.config.publish_timeout):
            await self._acked.verify(self._producer)
        self._last_verify = now

    def _lost_log(self, exc: LostLog) -> None:
        self._lost = str(exc)
        self.metrics.relay_lost_log.inc()
        log.warning("outbox relay: Kafka lost acknowledged events (%s): republishing", exc)

    async def _recover(self) -> None:
        """Re-create the topic if it is gone, then queue the retained window again (at once,
        under the relay lock: no batch of another relay interleaves)."""
        producer = self._producer
        if producer is None:
            raise RuntimeError("the Kafka producer is not started")
        async with asyncio.timeout(self.config.publish_timeout):
            await self._acked.ensure_topic(producer, self.config.bootstrap)
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", RELAY_LOCK):
                return  # the active relay publishes; this one retries on its next round
            after = await replay.start_replay(conn, self.config.topic)
        log.warning("outbox relay: republishing the outbox after seq %d (%s)", after, self._lost)
        self._lost = None
        self._acked.clear()
        # A fresh producer reads the re-created topic's metadata (partitions, leaders).
        await self._drop_producer()
        await self._ensure_producer()

    # --------------------------------------------------------------- health

    async def check_kafka(self, within: float = 2.0) -> tuple[KafkaStatus, str | None]:
        """Ask the broker for metadata now (for /ready); falls back to the last known state."""
        producer = self._producer
        if producer is None:
            return ("down" if self.kafka == "down" else "unknown"), self.kafka_error
        try:
            await asyncio.wait_for(producer.client.fetch_all_metadata(), within)
        except Exception as exc:
            return "down", f"{type(exc).__name__}: {exc}"
        return "up", None
