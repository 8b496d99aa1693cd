"""The outbox relay's state in PostgreSQL: acknowledged offsets and the republication cursor.

Layer: events/ (the relay's SQL; tables of migration 0070_relay_state.sql). Every statement runs
inside a relay batch's transaction, under the relay lock, so relays taking turns share one state:

- ``turn``: take the relay lock (and commit without waiting for the WAL flush), and read in
  the same round trip what a relay becoming active needs — the highest offsets Kafka
  acknowledged (so a relay restarted while Kafka lost its log still notices: the topic is
  missing, or the first acknowledgement comes back at or below them) and the cursor of a
  republication under way;
- ``mark``: mark a batch published and store its highest acknowledged offsets, one statement;
- ``start_replay``: Kafka lost its log — forget the offsets and republish the retained window
  from its first row; ``replay_batch`` / ``advance``: the window goes out in seq order, one
  bounded batch per transaction (never one UPDATE over the whole window), the cursor moving in
  the batch's transaction, so a relay restarted mid-way continues where it stopped.

Rows of the window keep their ``published_at`` (at least once: consumers de-duplicate by event
id). Rows committed after the cursor passed their seq are unpublished and go out after the
republication, in seq order, as usual (per entity, seq order is commit order).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import orjson

# Marking rows published need not wait for the WAL flush (set here, in the same round trip):
# if that commit is lost in a crash the rows are published again (at least once; consumers
# de-duplicate), and the writers' own commits no longer queue behind the relay's fsyncs.
_TURN = """
SELECT pg_try_advisory_xact_lock($1) AS locked,
       set_config('synchronous_commit', 'off', true) AS commit_mode,
       (SELECT after_seq FROM cityos.relay_replay WHERE topic = $2) AS replay_after,
       (SELECT json_object_agg(partition, acked) FROM cityos.relay_offsets
        WHERE topic = $2)::text AS offsets"""
_COLUMNS = """seq, event_id::text AS event_id, tenant, entity_id, event_type,
payload::text AS payload, published_at IS NOT NULL AS republished"""
SELECT_BATCH = f"""
SELECT {_COLUMNS}
FROM cityos.outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE"""
_SELECT_REPLAY = f"""
SELECT {_COLUMNS}
FROM cityos.outbox WHERE seq > $1 ORDER BY seq LIMIT $2 FOR UPDATE"""
_MARK = """
WITH marked AS (
    UPDATE cityos.outbox SET published_at = coalesce(published_at, now())
    WHERE seq = ANY($1::bigint[]))
INSERT INTO cityos.relay_offsets AS o (topic, partition, acked)
SELECT $2, p, a FROM unnest($3::int[], $4::bigint[]) AS u(p, a)
ON CONFLICT (topic, partition) DO UPDATE SET acked = EXCLUDED.acked"""
_START = """
WITH forgotten AS (DELETE FROM cityos.relay_offsets WHERE topic = $1)
INSERT INTO cityos.relay_replay (topic, after_seq)
SELECT $1, coalesce(min(seq), 1) - 1 FROM cityos.outbox
ON CONFLICT (topic) DO UPDATE SET after_seq = EXCLUDED.after_seq
RETURNING after_seq"""
_ADVANCE = "UPDATE cityos.relay_replay SET after_seq = $2 WHERE topic = $1"
_FINISH = "DELETE FROM cityos.relay_replay WHERE topic = $1"


@dataclass(frozen=True)
class Turn:
    locked: bool  # this relay holds the relay lock for the transaction
    replay_after: int | None  # a republication under way: rows after this seq go out next
    offsets: dict[int, int]  # partition → highest acknowledged offset, as stored


async def turn(conn: asyncpg.Connection, lock: int, topic: str) -> Turn:
    row = await conn.fetchrow(_TURN, lock, topic)
    assert row is not None
    raw = orjson.loads(row["offsets"]) if row["offsets"] else {}
    return Turn(row["locked"], row["replay_after"], {int(p): int(a) for p, a in raw.items()})


async def replay_batch(conn: asyncpg.Connection, after: int, limit: int) -> list[asyncpg.Record]:
    """The next rows of the retained window, published or not, in seq order (locked)."""
    return list(await conn.fetch(_SELECT_REPLAY, after, limit))


async def mark(
    conn: asyncpg.Connection, topic: str, seqs: list[int], acked: dict[int, int]
) -> None:
    """Mark rows published and store the highest acknowledged offsets of their partitions."""
    parts = sorted(acked)
    await conn.execute(_MARK, seqs, topic, parts, [acked[p] for p in parts])


async def advance(conn: asyncpg.Connection, topic: str, last_seq: int, done: bool) -> None:
    """Move the republication cursor past ``last_seq`` (or end it: the window is out)."""
    if done:
        await conn.execute(_FINISH, topic)
    else:
        await conn.execute(_ADVANCE, topic, last_seq)


async def start_replay(conn: asyncpg.Connection, topic: str) -> int:
    """Forget the acknowledged offsets and republish from the window's first row; returns the
    cursor (the seq before it)."""
    return int(await conn.fetchval(_START, topic))
