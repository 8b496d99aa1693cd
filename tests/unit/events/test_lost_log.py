"""AckedOffsets: an acknowledgement at or below one seen before means Kafka lost its log."""

from __future__ import annotations

import pytest
from aiokafka.structs import RecordMetadata, TopicPartition

from city_os.events.lost_log import AckedOffsets, LostLog


def ack(partition: int, offset: int) -> RecordMetadata:
    tp = TopicPartition("t", partition)
    return RecordMetadata("t", partition, tp, offset, 0, -1, 0)


def test_increasing_offsets_per_partition_are_remembered() -> None:
    acked = AckedOffsets("t")
    acked.acknowledged([ack(0, 0), ack(1, 0), ack(0, 1), ack(1, 5)])
    acked.acknowledged([ack(0, 2)])
    assert acked.acked == {0: 2, 1: 5}


@pytest.mark.parametrize(
    ("later", "detail"),
    [
        (ack(0, 0), "partition 0 acknowledged offset 0, but 7 was acknowledged before"),
        (ack(0, 7), "partition 0 acknowledged offset 7, but 7 was acknowledged before"),
    ],
)
def test_an_offset_not_above_the_highest_acknowledged_is_a_lost_log(
    later: RecordMetadata, detail: str
) -> None:
    acked = AckedOffsets("t")
    acked.acknowledged([ack(0, 7), ack(1, 3)])
    with pytest.raises(LostLog) as raised:
        acked.acknowledged([ack(1, 4), later])
    assert str(raised.value) == detail


def test_after_clear_a_new_log_starts_from_nothing() -> None:
    acked = AckedOffsets("t")
    acked.acknowledged([ack(0, 7)])
    acked.ends[0] = 8
    acked.clear()
    acked.acknowledged([ack(0, 0)])
    assert acked.acked == {0: 0} and acked.ends == {}
