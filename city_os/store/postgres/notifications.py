"""The notifier's shared state on PostgreSQL: durable deliveries and cluster-wide timers.

Layer: store/. Tables ``cityos.notifications`` and ``cityos.subscription_timers`` (migration
0007_notifier.sql, docs/storage.md). Deliveries are written in one statement per consumed
batch, before the batch's Kafka offsets are committed; the unique (tenant, subscription,
source) key makes a re-consumed event a no-op. The replica that writes a row leases it and
renews its leases; rows whose lease ran out (their replica died) are taken over by any replica.
Finished rows (sent, failed for good, dropped) lose their body and keep their key for the
retention window, then go in bulk deletes. Timers fire once per period in the whole cluster:
a replica acts only when its ``UPDATE … WHERE due <= now()`` moved the timer.

Deliveries of consumed events are committed without waiting for the WAL flush (``add(…,
flushed=False)``): the rows are visible at once and may be sent, and the flush (a disk sync,
tens of milliseconds on a busy disk) is off the notification's latency path. ``barrier`` makes
everything committed before it durable; the consumer calls it before committing Kafka offsets,
so a PostgreSQL crash can lose only rows whose events are read again (and notified again,
with the same notification id).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
import orjson


@dataclass(frozen=True, slots=True)
class NewNotification:
    notification_id: str
    tenant: str
    subscription_id: str
    source_id: str  # the change event's id (uuid), or one per period
    entity_id: str
    endpoint: str
    headers: dict[str, str]
    body: bytes
    event_time: float | None  # epoch seconds


@dataclass(frozen=True, slots=True)
class StoredNotification:
    seq: int
    notification_id: str
    tenant: str
    subscription_id: str
    entity_id: str
    endpoint: str
    headers: dict[str, str]
    body: bytes
    event_time: float | None
    created: float  # epoch seconds
    attempts: int = 0


# Notification ids are urn:ngsi-ld:Notification:<uuid>; the uuid is stored.
_PREFIX = "urn:ngsi-ld:Notification:"
_ROW = f"""seq, '{_PREFIX}' || notification_id::text AS notification_id, tenant, subscription_id,
entity_id, endpoint, headers, body, extract(epoch FROM event_time)::float8 AS event_time,
extract(epoch FROM created_at)::float8 AS created, attempts"""


_ADD = """
INSERT INTO cityos.notifications AS n (notification_id, tenant, subscription_id, source_id,
    entity_id, endpoint, headers, body, event_time, owner, lease_until)
SELECT r.nid::uuid, r.tenant, r.sid, r.source::uuid, r.entity, r.endpoint, r.headers::jsonb, r.body,
       to_timestamp(r.event_time), $10::uuid, now() + make_interval(secs => $11)
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::bytea[], $9::float8[])
     AS r(nid, tenant, sid, source, entity, endpoint, headers, body, event_time){commit}
ON CONFLICT (tenant, subscription_id, source_id) DO NOTHING
RETURNING n.seq, n.notification_id::text AS nid,
          extract(epoch FROM n.created_at)::float8 AS created"""
# the statement's own (implicit) transaction commits without waiting for the WAL flush
_ADD_ASYNC = _ADD.format(
    commit=",\n     (SELECT set_config('synchronous_commit', 'off', true)) AS c"
)
_ADD = _ADD.format(commit="")
_BARRIER = """
SELECT 1 FROM cityos.notifications
WHERE seq = (SELECT max(seq) FROM cityos.notifications) FOR KEY SHARE"""


def _stored(r: asyncpg.Record) -> StoredNotification:
    return StoredNotification(**dict(r))


class NotificationStore:
    def __init__(self, pool: asyncpg.Pool, owner: uuid.UUID, lease: float) -> None:
        self._pool = pool
        self.owner = owner
        self._lease = lease

    async def add(
        self, rows: list[NewNotification], *, flushed: bool = True
    ) -> list[StoredNotification]:
        """Store new notifications (leased by this replica); returns those that were new.
        Only their seq and time come back: the rest is what was sent (no body round trip).
        ``flushed=False``: the commit does not wait for the WAL flush (see ``barrier``)."""
        if not rows:
            return []
        async with self._pool.acquire() as conn:
            found = await conn.fetch(
                _ADD_ASYNC if not flushed else _ADD,
                [r.notification_id.removeprefix(_PREFIX) for r in rows],
                [r.tenant for r in rows],
                [r.subscription_id for r in rows],
                [r.source_id for r in rows],
                [r.entity_id for r in rows],
                [r.endpoint for r in rows],
                [orjson.dumps(r.headers).decode() for r in rows],
                [r.body for r in rows],
                [r.event_time for r in rows],
                self.owner,
                self._lease,
            )
        # notification ids are unique (uuid5 of the unique key)
        by_id = {r.notification_id.removeprefix(_PREFIX): r for r in rows}
        stored = []
        for f in found:
            r = by_id[f["nid"]]
            stored.append(
                StoredNotification(
                    seq=f["seq"],
                    notification_id=r.notification_id,
                    tenant=r.tenant,
                    subscription_id=r.subscription_id,
                    entity_id=r.entity_id,
                    endpoint=r.endpoint,
                    headers=r.headers,
                    body=r.body,
                    event_time=r.event_time,
                    created=f["created"],
                )
            )
        return sorted(stored, key=lambda s: s.seq)

    async def barrier(self) -> None:
        """Return once everything committed before the call is flushed to the WAL on disk: a
        transaction that writes WAL (a key-share lock on the newest row) and commits with
        ``synchronous_commit`` on waits for the flush up to its own commit record, which lies
        after every earlier commit. Nothing to lock (no rows) means nothing to flush."""
        async with self._pool.acquire() as conn:
            await conn.execute(_BARRIER)

    async def finish(self, done: list[tuple[int, str, int]]) -> None:
        """Record finished deliveries: (seq, state, attempts); state sent | failed | dropped."""
        if not done:
            return
        done = sorted(done)  # one order for concurrent finishes of overlapping rows
        async with self._pool.acquire() as conn:
            await conn.execute(
                """
UPDATE cityos.notifications n SET state = d.state, attempts = d.attempts, done_at = now(),
    body = NULL, owner = NULL, lease_until = NULL
FROM unnest($1::bigint[], $2::text[], $3::int[]) AS d(seq, state, attempts)
WHERE n.seq = d.seq""",
                [d[0] for d in done],
                [d[1] for d in done],
                [d[2] for d in done],
            )

    async def renew(self) -> None:
        """Extend the leases of every row this replica is delivering."""
        # SKIP LOCKED: a row locked now is being finished (or taken over); waiting for it in
        # another order than finish() locks rows deadlocked under load.
        await self._pool.execute(
            """
UPDATE cityos.notifications SET lease_until = now() + make_interval(secs => $2)
WHERE seq IN (SELECT seq FROM cityos.notifications WHERE owner = $1 AND state = 'pending'
              FOR UPDATE SKIP LOCKED)""",
            self.owner,
            self._lease,
        )

    async def release(self) -> None:
        """On shutdown: let another replica take over the unfinished rows right away."""
        await self._pool.execute(
            """
UPDATE cityos.notifications SET lease_until = now()
WHERE seq IN (SELECT seq FROM cityos.notifications WHERE owner = $1 AND state = 'pending'
              FOR UPDATE SKIP LOCKED)""",
            self.owner,
        )

    async def take_over(self, limit: int) -> list[StoredNotification]:
        """Lease rows whose replica stopped renewing them (oldest first). Never this replica's
        own: a late renewal (a busy event loop) must not queue its rows a second time."""
        rows = await self._pool.fetch(
            f"""
UPDATE cityos.notifications n SET owner = $1, lease_until = now() + make_interval(secs => $2)
WHERE n.seq IN (SELECT seq FROM cityos.notifications
                WHERE state = 'pending' AND lease_until < now()
                  AND owner IS DISTINCT FROM $1
                ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED)
RETURNING {_ROW}""",
            self.owner,
            self._lease,
            limit,
        )
        return sorted((_stored(r) for r in rows), key=lambda s: s.seq)

    async def backlog(self, endpoint: str, after: int, limit: int) -> list[StoredNotification]:
        """This replica's unfinished rows of an endpoint after ``after``, in order."""
        rows = await self._pool.fetch(
            f"SELECT {_ROW} FROM cityos.notifications WHERE owner = $1 AND state = 'pending'"
            " AND endpoint = $2 AND seq > $3 ORDER BY seq LIMIT $4",
            self.owner,
            endpoint,
            after,
            limit,
        )
        return [_stored(r) for r in rows]

    async def cleanup(self, retention: float, limit: int = 10_000) -> int:
        """Delete finished rows older than ``retention`` seconds (a bounded batch)."""
        status = await self._pool.execute(
            """
DELETE FROM cityos.notifications WHERE seq IN (
    SELECT seq FROM cityos.notifications
    WHERE state <> 'pending' AND done_at < now() - make_interval(secs => $1) LIMIT $2)""",
            retention,
            limit,
        )
        return int(status.split()[-1])

    async def pending(self, tenant: str | None = None) -> int:
        """Unfinished notifications (of one tenant)."""
        value = await self._pool.fetchval(
            "SELECT count(*) FROM cityos.notifications WHERE state = 'pending'"
            " AND ($1::text IS NULL OR tenant = $1)",
            tenant,
        )
        return int(value)

    # ---------------------------------------------------------------- timers

    async def due_periods(self) -> list[tuple[str, str, float]]:
        """Periodic subscriptions due now, each moved to its next period by this call:
        (tenant, subscription id, epoch of the period that starts now). A timer found late by
        more than a period moves to the first period boundary after now — the periods missed
        are skipped, not fired back to back — so the cadence stays and no interval fires twice."""
        rows = await self._pool.fetch(
            """
UPDATE cityos.subscription_timers
SET due = due + make_interval(
    secs => period * (floor(extract(epoch FROM now() - due) / period) + 1))
WHERE kind = 'interval' AND due <= now()
RETURNING tenant, subscription_id, extract(epoch FROM due)::float8 AS due"""
        )
        return [(r["tenant"], r["subscription_id"], r["due"]) for r in rows]

    async def allow(self, keys: list[tuple[str, str, float]]) -> set[tuple[str, str]]:
        """Throttled subscriptions (tenant, id, throttling) that may notify now; each one
        allowed is closed for its throttling period from now, cluster-wide."""
        if not keys:
            return set()
        rows = await self._pool.fetch(
            """
INSERT INTO cityos.subscription_timers AS t (tenant, subscription_id, kind, period, due)
SELECT k.tenant, k.sid, 'throttle', k.period, now() + make_interval(secs => k.period)
FROM unnest($1::text[], $2::text[], $3::float8[]) AS k(tenant, sid, period)
ON CONFLICT (tenant, subscription_id, kind) DO UPDATE
    SET due = now() + make_interval(secs => EXCLUDED.period)
    WHERE t.due <= now()
RETURNING t.tenant, t.subscription_id""",
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
        )
        return {(r["tenant"], r["subscription_id"]) for r in rows}


def period_id(tenant: str, subscription_id: str, due: float) -> str:
    """The source id of one period's notification: the same on every replica."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}/{subscription_id}/{due:.6f}"))
