"""The durable deliveries and cluster timers on PostgreSQL (store/postgres/notifications.py):
de-duplication, leases and take-over, the per-endpoint backlog, clean-up, timers that fire once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from city_os.store.postgres.db import create_pool
from city_os.store.postgres.notifications import (
    NewNotification,
    NotificationStore,
    StoredNotification,
    period_id,
)
from city_os.store.postgres.streams import STREAM_LOCK_CLASS, StreamStore
from tests.conftest import TEST_DSN
from tests.integration.events.support import poll


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(TEST_DSN, 1, 4)
    yield p
    await p.close()


def row(
    tenant: str, source: str, endpoint: str = "http://r/1", entity: str = "e1"
) -> NewNotification:
    return NewNotification(
        notification_id=f"urn:ngsi-ld:Notification:{uuid.uuid4()}",
        tenant=tenant,
        subscription_id="urn:ngsi-ld:Subscription:1",
        source_id=source,
        entity_id=entity,
        endpoint=endpoint,
        headers={"Content-Type": "application/json"},
        body=b'{"type": "Notification"}',
        event_time=1_800_000_000.0,
    )


async def test_a_re_consumed_event_stores_nothing_new(pool: asyncpg.Pool, tenant: str) -> None:
    store = NotificationStore(pool, uuid.uuid4(), lease=30)
    source = str(uuid.uuid4())
    first = await store.add([row(tenant, source)])
    again = await store.add([row(tenant, source), row(tenant, str(uuid.uuid4()))])
    assert len(first) == 1 and len(again) == 1  # only the new event's row
    assert first[0].notification_id.startswith("urn:ngsi-ld:Notification:")
    assert first[0].headers == {"Content-Type": "application/json"}
    assert await store.pending(tenant) == 2


async def test_rows_of_a_stopped_replica_are_taken_over(pool: asyncpg.Pool, tenant: str) -> None:
    dead = NotificationStore(pool, uuid.uuid4(), lease=0.2)
    alive = NotificationStore(pool, uuid.uuid4(), lease=30)
    await dead.add([row(tenant, str(uuid.uuid4())), row(tenant, str(uuid.uuid4()))])
    assert [r for r in await alive.take_over(100) if r.tenant == tenant] == []  # still leased
    taken: list[StoredNotification] = []

    async def expired() -> bool:  # once the 0.2 s lease ran out
        taken.extend(r for r in await alive.take_over(100) if r.tenant == tenant)
        return len(taken) == 2

    await poll(expired, within=10)
    assert taken[0].seq < taken[1].seq and {r.attempts for r in taken} == {0}
    await dead.renew()  # the old owner renews nothing it no longer owns
    assert [r for r in await alive.take_over(100) if r.tenant == tenant] == []


async def test_a_clean_stop_hands_rows_over_at_once(pool: asyncpg.Pool, tenant: str) -> None:
    leaving = NotificationStore(pool, uuid.uuid4(), lease=30)
    other = NotificationStore(pool, uuid.uuid4(), lease=30)
    await leaving.add([row(tenant, str(uuid.uuid4()))])
    await leaving.release()
    assert len([r for r in await other.take_over(100) if r.tenant == tenant]) == 1


async def test_backlog_and_finish(pool: asyncpg.Pool, tenant: str) -> None:
    store = NotificationStore(pool, uuid.uuid4(), lease=30)
    endpoint = f"http://r/{tenant}"
    rows = await store.add([row(tenant, str(uuid.uuid4()), endpoint) for _ in range(3)])
    later = await store.backlog(endpoint, rows[0].seq, 10)
    assert [r.seq for r in later] == [r.seq for r in rows[1:]]
    await store.finish([(rows[0].seq, "sent", 1), (rows[1].seq, "dropped", 0)])
    assert await store.pending(tenant) == 1
    state = await pool.fetch(
        "SELECT state, body IS NULL AS gone FROM cityos.notifications"
        " WHERE tenant = $1 ORDER BY seq",
        tenant,
    )
    assert [(r["state"], r["gone"]) for r in state] == [
        ("sent", True),
        ("dropped", True),
        ("pending", False),
    ]
    await store.cleanup(0)
    left = await pool.fetchval(
        "SELECT count(*) FROM cityos.notifications WHERE tenant = $1", tenant
    )
    assert left == 1  # the pending one stays


async def test_a_period_fires_once_among_replicas(pool: asyncpg.Pool, tenant: str) -> None:
    await pool.execute(
        "INSERT INTO cityos.subscription_timers (tenant, subscription_id, kind, period, due)"
        " VALUES ($1, 's', 'interval', 3600, now())",
        tenant,
    )
    replicas = [NotificationStore(pool, uuid.uuid4(), lease=30) for _ in range(4)]
    fired = await asyncio.gather(*(r.due_periods() for r in replicas))
    mine = [f for batch in fired for f in batch if f[0] == tenant]
    assert len(mine) == 1
    _, sid, due = mine[0]
    assert period_id(tenant, sid, due) == period_id(tenant, sid, due)


async def test_a_late_period_fires_once_and_keeps_the_cadence(
    pool: asyncpg.Pool, tenant: str
) -> None:
    """A timer found 3.5 periods late fires once and moves to the next boundary after now
    (due + 4 periods), not to now: the missed periods are not fired back to back."""
    await pool.execute(
        "INSERT INTO cityos.subscription_timers (tenant, subscription_id, kind, period, due)"
        " VALUES ($1, 's', 'interval', 60, now() - interval '210 seconds')",
        tenant,
    )
    store = NotificationStore(pool, uuid.uuid4(), lease=30)
    mine = [f for f in await store.due_periods() if f[0] == tenant]
    assert len(mine) == 1
    assert [f for f in await store.due_periods() if f[0] == tenant] == []
    ahead = await pool.fetchval(
        "SELECT extract(epoch FROM due - now()) FROM cityos.subscription_timers"
        " WHERE tenant = $1 AND subscription_id = 's'",
        tenant,
    )
    assert 29 <= ahead <= 31, ahead  # 210 s late, period 60: the boundary 30 s from now


async def test_throttling_lets_one_through_per_period(pool: asyncpg.Pool, tenant: str) -> None:
    replicas = [NotificationStore(pool, uuid.uuid4(), lease=30) for _ in range(3)]
    allowed = await asyncio.gather(*(r.allow([(tenant, "s", 3600.0)]) for r in replicas))
    assert sum(len(a) for a in allowed) == 1
    assert await replicas[0].allow([(tenant, "s", 3600.0)]) == set()


async def test_stream_appends_of_one_subscription_commit_in_seq_order(
    pool: asyncpg.Pool, tenant: str
) -> None:
    """A resume (Last-Event-ID = the highest seq a page saw) cannot miss a row: an append that
    starts while another of the same subscription is uncommitted waits for it, so no row with
    a lower seq commits after a higher one."""
    streams = StreamStore(pool)
    sid = "urn:ngsi-ld:Subscription:stream"
    async with pool.acquire() as first:
        tx = first.transaction()
        await tx.start()
        await streams.append(tenant, sid, str(uuid.uuid4()), b'{"n": 1}', conn=first)
        second = asyncio.create_task(streams.append(tenant, sid, str(uuid.uuid4()), b'{"n": 2}'))

        async def waiting() -> bool:  # the second append waits for the first one's turn
            return bool(
                await pool.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND classid = $1::oid",
                    STREAM_LOCK_CLASS,
                )
            )

        await poll(waiting, 10)
        assert await streams.since(tenant, sid, 0) == []  # nothing visible has a higher seq
        await tx.commit()
    await asyncio.wait_for(second, 10)
    events = await streams.since(tenant, sid, 0)
    assert [e.body for e in events] == [b'{"n": 1}', b'{"n": 2}']
    assert events[0].seq < events[1].seq


async def test_rows_stored_without_the_flush_are_made_durable_by_the_barrier(tenant: str) -> None:
    """The intake's rows commit without waiting for the WAL flush; they are visible and
    de-duplicated like any other, the connection keeps synchronous commits for everyone else,
    and after ``barrier`` the WAL is on disk past them (the consumer's offsets go after it)."""
    one = await create_pool(TEST_DSN, 1, 1)  # one connection: a leaked setting would show
    try:
        store = NotificationStore(one, uuid.uuid4(), lease=30)
        source = str(uuid.uuid4())
        first = await store.add([row(tenant, source)], flushed=False)
        assert len(first) == 1 and await store.pending(tenant) == 1
        assert await store.add([row(tenant, source)], flushed=False) == []  # re-consumed
        assert await one.fetchval("SHOW synchronous_commit") == "on"
        written = await one.fetchval("SELECT pg_current_wal_insert_lsn()")
        await store.barrier()
        assert await one.fetchval("SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn", written)
    finally:
        await one.close()
