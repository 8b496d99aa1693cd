"""Consumer helper: follow entity changes from Kafka, filtered, de-duplicated, committed.

Layer: events/ (a client SDK; the broker itself never consumes). The relay publishes *at least
once*: after a crash or a Kafka outage an event may arrive twice, always with the same CloudEvents
``id``. ``consume`` drops repeats (remembering the last ``dedupe_size`` ids) and, in a consumer
group, commits a record's offset only after the loop body that received it has finished, so a
crash re-delivers instead of losing::

    async for event in consume("127.0.0.1:9092", group_id="alerts", types=["WaterObserved"]):
        handle(event)        # committed once this returns and the next event is requested

Leaving the loop with ``break`` does not commit the event being handled (it comes again).

A Kafka that lost its log (Tansu restarted: it keeps everything in memory; a topic deleted and
re-created; a real Kafka after an unclean election) starts the partitions again at offset 0, and
the relay republishes its retained window there (``events.relay``). A consumer left at its old
offset would wait there, or skip everything below it once the new log grows past it. ``LogWatch``
notices: when a partition brings records after a quiet spell (a restart always makes one), it
re-reads the last record handed on first; a different record at that offset, or none, means the
log began again, and the partition is read again from its beginning (de-duplicated by event id).
The notifier's consumer uses the same watch and ``consumer_settings``.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.conn import CloseReason

from city_os.events.model import EVENT_TYPE_PREFIX, event_changes

log = logging.getLogger(__name__)
DEFAULT_TOPIC = "cityos.entity-changes"
QUIET = 1.0  # seconds without records after which a partition's log is checked
Batch = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


def consumer_settings(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments of ``AIOKafkaConsumer`` shared by city-os consumers: offsets committed
    by the code after processing, a lost position restarts at the log's beginning (never at
    its end: that would skip events), metadata refreshed often enough to see a re-created topic."""
    values: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "metadata_max_age_ms": 5_000,
    }
    values.update(overrides)
    return values


def _digest(record: ConsumerRecord[bytes, bytes]) -> int:
    return hash((record.key, record.value))


class LogWatch:
    """Screens a consumer's batches for a partition log that was lost and begun again.

    A broker restart breaks the consumer's connections, a re-created topic interrupts the
    fetches of its partitions; so when a partition brings records after a broken connection,
    or after ``quiet`` seconds without records, they are not handed on yet: the consumer seeks
    back to the last record handed on, and the next fetch must bring that same record at that
    same offset (then the records after it follow as usual). Another record, or another offset
    (the position was out of range and reset), means the log began again, and the partition
    is read from its beginning. The price: one more fetch round trip for the first records
    after a quiet spell, on that partition only.
    Create the watch before ``consumer.start()``: it hooks the client's connection-closed
    callback (aiokafka has no public one).
    """

    def __init__(self, consumer: AIOKafkaConsumer, quiet: float = QUIET) -> None:
        self._consumer = consumer
        self._quiet = quiet
        self._last: dict[TopicPartition, tuple[int, int]] = {}  # (offset, digest) handed on
        self._seen: dict[TopicPartition, float] = {}  # when records of it last came
        self._probing: dict[TopicPartition, tuple[int, int]] = {}
        self._breaks = 0  # connections to brokers lost so far
        self._breaks_at: dict[TopicPartition, int] = {}  # … when records of it last came
        self.restarts = 0  # partitions found begun again
        self.begun: set[TopicPartition] = set()  # those of the last ``screen``: drop their
        # uncommitted offsets, they belong to the old log
        client: Any = getattr(consumer, "_client", None)
        closed = getattr(client, "_on_connection_closed", None)
        if client is not None and closed is not None:

            def on_closed(conn: Any, reason: Any) -> None:
                if reason in (CloseReason.CONNECTION_BROKEN, CloseReason.CONNECTION_TIMEOUT):
                    self._breaks += 1
                closed(conn, reason)

            client._on_connection_closed = on_closed

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions revoked from this consumer (their next owner watches them)."""
        for tp in partitions:
            self._last.pop(tp, None)
            self._seen.pop(tp, None)
            self._breaks_at.pop(tp, None)
            self._probing.pop(tp, None)

    async def screen(self, batch: Batch) -> Batch:
        """The records of ``batch`` that may be handed on."""
        out: Batch = {}
        self.begun = set()
        now = time.monotonic()
        for tp, records in batch.items():
            if not records:
                continue
            quiet = now - self._seen.get(tp, now) > self._quiet
            quiet = quiet or self._breaks_at.get(tp, self._breaks) != self._breaks
            self._seen[tp], self._breaks_at[tp] = now, self._breaks
            probe = self._probing.pop(tp, None)
            if probe is not None:
                first = records[0]
                if first.offset != probe[0] or _digest(first) != probe[1]:
                    await self._begun_again(tp, probe[0], first.offset)
                    continue
                records = records[1:]  # the record handed on before: the same log
            elif quiet and tp in self._last and tp in self._consumer.assignment():
                self._probing[tp] = self._last[tp]
                self._consumer.seek(tp, self._last[tp][0])  # these records come again
                continue
            if records:
                out[tp] = records
                last = records[-1]
                self._last[tp] = (last.offset, _digest(last))
        return out

    async def _begun_again(self, tp: TopicPartition, offset: int, found: int) -> None:
        self.restarts += 1
        self.begun.add(tp)
        self._last.pop(tp, None)
        log.warning(
            "the log of %s began again (offset %d: %s): reading it from the beginning",
            tp,
            offset,
            "another record" if found == offset else f"gone, position reset to {found}",
        )
        if tp in self._consumer.assignment():
            await self._consumer.seek_to_beginning(tp)


@dataclass(frozen=True)
class ChangeEvent:
    """One entity change (the CloudEvents envelope, with its ``data`` members lifted out)."""

    id: str
    kind: str  # created | updated | replaced | deleted | expired | purged
    tenant: str
    entity_id: str
    types: list[str]  # expanded type IRIs
    # attribute IRI → {"previous": [...]|None, "new": ...}; of a created event: every attribute
    changes: dict[str, dict[str, Any]]
    entity: dict[str, Any] | None  # the entity after the change; None once deleted
    time: str
    envelope: dict[str, Any]
    # A change too large for Kafka comes as a claim check: ``omitted`` names the data members
    # left out (changes and entity are then empty), ``dataref`` is the entity's API URL.
    omitted: tuple[str, ...] = ()
    dataref: str | None = None

    @classmethod
    def from_envelope(cls, envelope: dict[str, Any]) -> ChangeEvent:
        data = envelope["data"]
        kind = envelope["type"].removeprefix(EVENT_TYPE_PREFIX)
        return cls(
            id=envelope["id"],
            kind=kind,
            tenant=data["tenant"],
            entity_id=data["entityId"],
            types=list(data["types"]),
            changes=event_changes(data, kind),
            entity=data.get("entity"),
            time=envelope["time"],
            envelope=envelope,
            omitted=tuple(data.get("omitted", ())),
            dataref=envelope.get("dataref"),
        )

    def value(self, attribute: str) -> Any:
        """The new value of ``attribute`` (IRI or short name) in this change, else None."""
        for iri, change in self.changes.items():
            if _same_term(iri, attribute):
                new = change.get("new") or []
                if new and isinstance(new[0], dict):
                    return new[0].get("value", new[0].get("object"))
        return None


class SeenIds:
    """A bounded memory of event ids (least recently seen forgotten first)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def check(self, event_id: str) -> bool:
        """True if ``event_id`` was seen before; remembers it either way."""
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return True
        self._ids[event_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return False


def _same_term(iri: str, term: str) -> bool:
    """An expanded IRI matches itself or its last segment (``WaterObserved``, ``waterLevel``)."""
    return iri == term or iri.endswith(("/" + term, "#" + term))


def matches(
    event: ChangeEvent,
    types: Iterable[str] | None,
    tenants: Iterable[str] | None,
    kinds: Iterable[str] | None,
) -> bool:
    if tenants is not None and event.tenant not in tenants:
        return False
    if kinds is not None and event.kind not in kinds:
        return False
    if types is not None:
        return any(_same_term(t, wanted) for t in event.types for wanted in types)
    return True


def _entity_change(record: ConsumerRecord[bytes, bytes]) -> bool:
    """False for the topic's other events (subscription changes), by their ce_type header."""
    for key, value in record.headers or ():
        if key == "ce_type":
            return bytes(value).decode(errors="replace").startswith(EVENT_TYPE_PREFIX)
    return True


def parse(value: bytes | None) -> ChangeEvent | None:
    try:
        envelope = orjson.loads(value or b"")
        return ChangeEvent.from_envelope(envelope)
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None


async def consume(
    bootstrap: str,
    *,
    topic: str = DEFAULT_TOPIC,
    group_id: str | None = None,
    types: Iterable[str] | None = None,
    tenants: Iterable[str] | None = None,
    kinds: Iterable[str] | None = None,
    from_beginning: bool = True,
    dedupe_size: int = 100_000,
    poll_timeout: float = 1.0,
) -> AsyncIterator[ChangeEvent]:
    """Entity changes on ``topic`` matching types (IRI or short name), tenants and kinds.

    With ``group_id`` offsets are committed after processing (resume where the group left off);
    without it nothing is committed and the whole topic is read (``from_beginning``).
    """
    type_set = None if types is None else list(types)
    tenant_set = None if tenants is None else set(tenants)
    kind_set = None if kinds is None else set(kinds)
    seen = SeenIds(dedupe_size)
    reset = "earliest" if from_beginning else "latest"
    settings = consumer_settings(bootstrap, group_id=group_id, auto_offset_reset=reset)
    consumer = AIOKafkaConsumer(topic, **settings)
    watch = LogWatch(consumer)
    await consumer.start()
    done: dict[TopicPartition, int] = {}  # next offset to commit, per partition
    try:
        while True:
            batch = await watch.screen(await consumer.getmany(timeout_ms=int(poll_timeout * 1000)))
            for tp in watch.begun:
                done.pop(tp, None)
            for tp, records in batch.items():
                for record in records:
                    event = parse(record.value)
                    if event is None:
                        if _entity_change(record):
                            log.warning("skipping a malformed event at %s@%d", tp, record.offset)
                    elif not seen.check(event.id) and matches(
                        event, type_set, tenant_set, kind_set
                    ):
                        yield event
                    done[tp] = record.offset + 1
            if group_id is not None and done:
                await consumer.commit(done)
                done = {}
    finally:
        try:
            if group_id is not None and done:
                await consumer.commit(done)
        finally:
            await consumer.stop()
