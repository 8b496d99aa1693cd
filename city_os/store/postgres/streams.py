"""The live stream's events in PostgreSQL (table ``cityos.stream_events``, 0009_stream.sql).

Layer: store/. The notifier's stream channel appends a notification and NOTIFYs
``cityos_stream`` (payload ``[seq, tenant, subscription id]``) in one statement, so the API
process that holds a page's connection learns of it once it is committed, whichever replica
produced it. A redelivery of the same notification (a replica killed after the append) appends
nothing. Appends of one subscription take turns, so its seqs are in commit order: pages that
reconnect read what they missed after their Last-Event-ID (``seq >`` it) without a gap; rows
older than the retention are deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

CHANNEL = "cityos_stream"


@dataclass(frozen=True, slots=True)
class StreamEvent:
    seq: int
    tenant: str
    subscription_id: str
    body: bytes


# Appends of one subscription take turns (a transaction-scoped advisory lock, taken before the
# row's seq is drawn and held until its commit): per subscription, seq order is commit order, so
# a page resuming after its Last-Event-ID can never miss a row that committed after a later seq.
STREAM_LOCK_CLASS = 0x63697479  # advisory lock class of stream appends ("city")
_APPEND = f"""
WITH turn AS (SELECT pg_advisory_xact_lock({STREAM_LOCK_CLASS}, hashtext($1 || '/' || $2))),
added AS (
    INSERT INTO cityos.stream_events (tenant, subscription_id, notification_id, body)
    SELECT $1, $2, $3, $4 FROM turn
    ON CONFLICT (tenant, subscription_id, notification_id) DO NOTHING
    RETURNING seq)
SELECT pg_notify('{CHANNEL}', json_build_array(seq, $1::text, $2::text)::text) FROM added"""


class StreamStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def append(
        self,
        tenant: str,
        subscription_id: str,
        nid: str,
        body: bytes,
        conn: asyncpg.Connection | None = None,
    ) -> None:
        """Append one notification (and NOTIFY on commit); ``conn``: inside its transaction."""
        if conn is not None:
            await conn.execute(_APPEND, tenant, subscription_id, nid, body)
            return
        await self._pool.execute(_APPEND, tenant, subscription_id, nid, body)

    async def get(self, seq: int) -> StreamEvent | None:
        row = await self._pool.fetchrow(
            "SELECT seq, tenant, subscription_id, body FROM cityos.stream_events WHERE seq = $1",
            seq,
        )
        return None if row is None else StreamEvent(**dict(row))

    async def since(
        self, tenant: str, subscription_id: str, after: int, limit: int = 1000
    ) -> list[StreamEvent]:
        """The subscription's events after ``after`` (a Last-Event-ID), oldest first."""
        rows = await self._pool.fetch(
            "SELECT seq, tenant, subscription_id, body FROM cityos.stream_events"
            " WHERE tenant = $1 AND subscription_id = $2 AND seq > $3 ORDER BY seq LIMIT $4",
            tenant,
            subscription_id,
            after,
            limit,
        )
        return [StreamEvent(**dict(r)) for r in rows]

    async def cleanup(self, retention: float, limit: int = 10_000) -> int:
        status = await self._pool.execute(
            """
DELETE FROM cityos.stream_events WHERE seq IN (
    SELECT seq FROM cityos.stream_events
    WHERE created_at < now() - make_interval(secs => $1) LIMIT $2)""",
            retention,
            limit,
        )
        return int(status.split()[-1])
