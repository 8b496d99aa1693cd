"""Consumer helper: follow entity changes from Kafka, filtered, de-duplicated, committed.

Layer: events/ (a client SDK; the broker itself never consumes). The relay publishes *at least
once*: after a crash or a Kafka outage an event may arrive twice, always with the same CloudEvents
``id``. ``consume`` drops repeats (remembering the last ``dedupe_size`` ids) and, in a consumer
group, commits a record's offset only after the loop body that received it has finished, so a
crash re-delivers instead of losing::

    async for event in consume("127.0.0.1:9092", group_id="alerts", types=["WaterObserved"]):
        handle(event)        # committed once this returns and the next event is requested

Leaving the loop with ``break`` does not commit the event being handled (it comes again).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from city_os.events.model import EVENT_TYPE_PREFIX

log = logging.getLogger(__name__)
DEFAULT_TOPIC = "cityos.entity-changes"


@dataclass(frozen=True)
class ChangeEvent:
    """One entity change (the CloudEvents envelope, with its ``data`` members lifted out)."""

    id: str
    kind: str  # created | updated | replaced | deleted | expired | purged
    tenant: str
    entity_id: str
    types: list[str]  # expanded type IRIs
    changes: dict[str, dict[str, Any]]  # attribute IRI → {"previous": [...]|None, "new": ...}
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
        return cls(
            id=envelope["id"],
            kind=envelope["type"].removeprefix(EVENT_TYPE_PREFIX),
            tenant=data["tenant"],
            entity_id=data["entityId"],
            types=list(data["types"]),
            changes=data.get("changes", {}),
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
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    await consumer.start()
    done: dict[TopicPartition, int] = {}  # next offset to commit, per partition
    try:
        while True:
            batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
            batch = await consumer.getmany(timeout_ms=int(poll_timeout * 1000))
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
