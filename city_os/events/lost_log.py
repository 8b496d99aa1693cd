"""Noticing a Kafka that lost records it had acknowledged (the relay's side of the check).

Layer: events/. A broker acknowledging a record is not the record being kept: Tansu in memory
forgets everything when it restarts (and then acknowledges produce requests for the topic it no
longer has, without storing them), and a real Kafka loses acknowledged records after an unclean
leader election or a lost disk. The relay remembers, per partition, the highest offset Kafka
acknowledged to it, and calls the log lost when

- an acknowledgement comes back at or below that offset (the partition's log restarted: checked
  on every publish, for free), or
- the topic is missing from the broker's metadata, or a partition's end offset went below the one
  listed before (checked after every producer start, i.e. after a reconnect, and every
  ``VERIFY_INTERVAL`` seconds: one Metadata and one ListOffsets request per partition leader).
  Not "below the acknowledged offset": Tansu's ListOffsets answers an end that trails the
  records it acknowledged by up to a few hundred (measured), so only a fall is a sure sign.

Then the relay re-creates the topic if it is missing and republishes the outbox's retained window
(``relay.OutboxRelay._recover``). The acknowledged offsets are stored with every published batch
(events/replay.py) and read by a relay that starts or becomes the active one, so a relay
restarted *together with* a lost Kafka notices it too: at its first acknowledgement, or at once
when the topic is missing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.protocol.offset import OffsetRequest
from aiokafka.structs import RecordMetadata, TopicPartition

VERIFY_INTERVAL = 1.0  # seconds between checks of the topic's end offsets
LATEST = -1  # ListOffsets timestamp meaning "the end of the log"


class LostLog(Exception):
    """Kafka no longer has records it acknowledged; the message says what was seen."""


@dataclass
class TopicShape:
    partitions: int = 1
    replicas: int = 1


class AckedOffsets:
    """The highest acknowledged offset per partition of one topic, and the checks against it."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.acked: dict[int, int] = {}
        self.ends: dict[int, int] = {}  # end offsets as last listed
        self.shape = TopicShape()  # as last seen, to re-create the topic like it was

    async def take_over(self, acked: dict[int, int], producer: AIOKafkaProducer | None) -> None:
        """Take over the offsets acknowledged to the relays before (kept in PostgreSQL), and
        check before anything is published that the topic exists (LostLog if not): a lost
        log found later, by an acknowledgement, lets that first batch land in the new log ahead
        of the republished window. End offsets cannot tell here: Tansu lists ends trailing its
        acknowledged offsets even at rest (by 1-2, measured), so "below" is no sure sign."""
        self.acked = dict(acked)
        self.ends.clear()
        if not acked or producer is None:
            return
        cluster = await producer.client.fetch_all_metadata()
        if not cluster.partitions_for_topic(self.topic):
            raise LostLog(f"topic {self.topic} is missing from the broker's metadata")

    def clear(self) -> None:
        self.acked.clear()
        self.ends.clear()

    def acknowledged(self, acks: Iterable[RecordMetadata]) -> None:
        """Record a batch's acknowledgements (in send order); LostLog if one went backwards."""
        for ack in acks:
            highest = self.acked.get(ack.partition, -1)
            if ack.offset <= highest:
                raise LostLog(
                    f"partition {ack.partition} acknowledged offset {ack.offset}, "
                    f"but {highest} was acknowledged before"
                )
            self.acked[ack.partition] = ack.offset

    async def verify(self, producer: AIOKafkaProducer) -> None:
        """Ask the broker for the topic and its end offsets; LostLog if they fell behind."""
        if not self.acked:
            return
        cluster = await producer.client.fetch_all_metadata()
        partitions = cluster.partitions_for_topic(self.topic)
        if not partitions:
            raise LostLog(f"topic {self.topic} is missing from the broker's metadata")
        self._remember(cluster, partitions)
        ends = await self._end_offsets(producer, cluster, partitions)
        for partition, before in self.ends.items():
            end = ends.get(partition, 0)
            if end < before:
                raise LostLog(f"partition {partition} ends at offset {end}, before at {before}")
        self.ends.update(ends)

    def _remember(self, cluster: ClusterMetadata, partitions: set[int]) -> None:
        replicas = 1
        with contextlib.suppress(Exception):  # private structure of aiokafka's metadata
            meta = cluster._partitions[self.topic][min(partitions)]
            replicas = max(1, len(meta.replicas))
        self.shape = TopicShape(len(partitions), replicas)

    async def _end_offsets(
        self, producer: AIOKafkaProducer, cluster: ClusterMetadata, partitions: set[int]
    ) -> dict[int, int]:
        by_leader: dict[int, list[int]] = {}
        for p in sorted(partitions):
            leader = cluster.leader_for_partition(TopicPartition(self.topic, p))
            if leader is not None and leader >= 0:
                by_leader.setdefault(leader, []).append(p)
        ends: dict[int, int] = {}
        for leader, parts in by_leader.items():
            request = OffsetRequest(-1, 0, [(self.topic, [(p, LATEST) for p in parts])])
            response = await producer.client.send(leader, request)
            for _topic, answers in response.topics:
                for answer in answers:
                    partition, error = answer[0], answer[1]
                    if error == 0:
                        # v0 answers a list of offsets, v1+ (timestamp, offset, …)
                        offset = answer[2][0] if response.API_VERSION == 0 else answer[3]
                        ends[partition] = int(offset)
        return ends

    async def ensure_topic(self, producer: AIOKafkaProducer, bootstrap: str) -> None:
        """Make the topic exist again before anything is republished (Tansu would acknowledge
        and drop records for a topic it does not have): the broker's auto-creation first,
        else an explicit CreateTopics with the shape it had."""
        node = producer.client.get_random_node()
        if node is not None:
            with contextlib.suppress(Exception):
                await producer.client.send(node, MetadataRequest([self.topic], True))
        cluster = await producer.client.fetch_all_metadata()
        if cluster.partitions_for_topic(self.topic):
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="city-os-relay")
        await admin.start()
        try:
            new = NewTopic(self.topic, self.shape.partitions, self.shape.replicas)
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([new])
        finally:
            await admin.close()
