"""Subscription persistence on PostgreSQL: one tenant schema's ``subscriptions`` table.

Layer: store/. Every change is one transaction that writes the subscription row, its outbox row
(the ``jp.city-os.subscription.*`` event), the cluster-wide timers of periodic and throttled
subscriptions (``cityos.subscription_timers``), and NOTIFYs ``CHANNEL`` with the tenant and id,
so every notifier replica refreshes that one subscription as soon as the change is visible
(and the outbox relay wakes up). Updates are optimistic: they only touch a row still at the
version the caller read. The notifier's delivery status lives in ``subscription_status`` and is
written in batches (``add_status``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from city_os.ngsild.subscription_render import DeliveryStatus
from city_os.store.postgres.changes import SideEffects, guarded_write, notify_change, write_outbox
from city_os.store.postgres.entities import _iso

CHANNEL = "cityos_subscriptions"
# Context-source subscriptions (§5.11, federation/csource_subscriptions.py) share the table;
# their documents carry "csource": true.
_IS_CSOURCE = "coalesce((s.doc->>'csource')::boolean, false)"


@dataclass(frozen=True)
class SubscriptionRow:
    """A subscription as stored; ``doc`` is the document of ngsild/subscription.py."""

    id: str
    doc: dict[str, Any]
    context: Any  # the @context it was created with (None: core only)
    notify_context: str  # jsonldContext
    created_at: str
    modified_at: str
    expires_at: str | None = None
    is_active: bool = True
    version: int = 0
    delivery: DeliveryStatus | None = None
    owner: dict[str, Any] | None = None  # the creator (auth/subscribers.py); None: auth was off


@dataclass(frozen=True)
class Timer:
    kind: str  # interval | throttle
    period: float  # seconds


_COLUMNS = """s.id, s.doc, s.context, s.notify_context, s.created_at, s.modified_at, s.expires_at,
s.is_active, s.version, s.owner, st.times_sent, st.times_failed, st.last_notification,
st.last_success, st.last_failure, st.last_failure_reason, st.failing"""


def _row(r: asyncpg.Record) -> SubscriptionRow:
    delivery = None
    if r["times_sent"] is not None:
        delivery = DeliveryStatus(
            times_sent=r["times_sent"],
            times_failed=r["times_failed"],
            last_notification=_iso(r["last_notification"]),
            last_success=_iso(r["last_success"]),
            last_failure=_iso(r["last_failure"]),
            last_failure_reason=r["last_failure_reason"],
            failing=r["failing"],
        )
    return SubscriptionRow(
        id=r["id"],
        doc=r["doc"],
        context=r["context"],
        notify_context=r["notify_context"],
        created_at=_iso(r["created_at"]) or "",
        modified_at=_iso(r["modified_at"]) or "",
        expires_at=_iso(r["expires_at"]),
        is_active=r["is_active"],
        version=r["version"],
        delivery=delivery,
        owner=r["owner"],
    )


_TIMERS_DROP = """DELETE FROM cityos.subscription_timers
WHERE tenant = $1 AND subscription_id = $2 AND NOT (kind = ANY($3::text[]))"""
# A changed period restarts the timer; an unchanged one keeps its place in time.
_TIMERS_SET = """
INSERT INTO cityos.subscription_timers AS t (tenant, subscription_id, kind, period, due)
SELECT $1, $2, k, p, now() FROM unnest($3::text[], $4::float8[]) AS u(k, p)
ON CONFLICT (tenant, subscription_id, kind) DO UPDATE SET period = EXCLUDED.period,
    due = CASE WHEN t.period = EXCLUDED.period THEN t.due ELSE now() END"""


class SubscriptionRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def _side_effects(
        self,
        tenant: str,
        subscription_id: str,
        event: dict[str, Any],
        timers: list[Timer] | None,
    ) -> SideEffects:
        """Outbox row, timers and notifications of one change, inside its transaction."""

        async def write(conn: asyncpg.Connection) -> None:
            await write_outbox(conn, event)
            kinds = [t.kind for t in timers or []]
            await conn.execute(_TIMERS_DROP, tenant, subscription_id, kinds)
            if timers:
                await conn.execute(
                    _TIMERS_SET, tenant, subscription_id, kinds, [t.period for t in timers]
                )
            await notify_change(conn, CHANNEL, tenant, subscription_id)

        return write

    async def insert(
        self,
        schema: str,
        tenant: str,
        row: SubscriptionRow,
        event: dict[str, Any],
        timers: list[Timer],
    ) -> bool:
        """Store a new subscription; False when one with its id exists (nothing written)."""
        return await guarded_write(
            self._pool,
            self._side_effects(tenant, row.id, event, timers),
            f"INSERT INTO {schema}.subscriptions (id, doc, context, notify_context,"
            " created_at, modified_at, expires_at, is_active, owner)"
            " VALUES ($1, $2, $3, $4, $5::text::timestamptz, $5::text::timestamptz,"
            " $6::text::timestamptz, $7, $8)"
            " ON CONFLICT (id) DO NOTHING RETURNING id",
            row.id,
            row.doc,
            row.context,
            row.notify_context,
            row.created_at,
            row.expires_at,
            row.is_active,
            row.owner,
        )

    async def update(
        self,
        schema: str,
        tenant: str,
        row: SubscriptionRow,
        event: dict[str, Any],
        timers: list[Timer],
    ) -> bool:
        """Write a new state of a subscription still at ``row.version``; False otherwise."""
        return await guarded_write(
            self._pool,
            self._side_effects(tenant, row.id, event, timers),
            f"UPDATE {schema}.subscriptions SET doc = $2, context = $3, notify_context = $4,"
            " modified_at = $5::text::timestamptz, expires_at = $6::text::timestamptz,"
            " is_active = $7,"
            " version = version + 1 WHERE id = $1 AND version = $8 RETURNING id",
            row.id,
            row.doc,
            row.context,
            row.notify_context,
            row.modified_at,
            row.expires_at,
            row.is_active,
            row.version,
        )

    async def delete(
        self, schema: str, tenant: str, subscription_id: str, event: dict[str, Any]
    ) -> bool:
        side_effects = self._side_effects(tenant, subscription_id, event, None)

        async def write(conn: asyncpg.Connection) -> None:
            await conn.execute(
                f"DELETE FROM {schema}.subscription_status WHERE id = $1", subscription_id
            )
            await side_effects(conn)

        return await guarded_write(
            self._pool,
            write,
            f"DELETE FROM {schema}.subscriptions WHERE id = $1 RETURNING id",
            subscription_id,
        )

    async def get(self, schema: str, subscription_id: str) -> SubscriptionRow | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM {schema}.subscriptions s"
                f" LEFT JOIN {schema}.subscription_status st ON st.id = s.id WHERE s.id = $1",
                subscription_id,
            )
        return None if row is None else _row(row)

    async def page(
        self,
        schema: str,
        limit: int,
        offset: int,
        owner: str | None = None,
        csource: bool | None = None,
    ) -> list[SubscriptionRow]:
        """Subscriptions in creation order (``limit`` 0: all of them); ``owner``: only those
        of that owner key; ``csource``: only context-source subscriptions (True) or only the
        others (False)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM {schema}.subscriptions s"
                f" LEFT JOIN {schema}.subscription_status st ON st.id = s.id"
                " WHERE ($3::text IS NULL OR s.owner->>'key' = $3) AND ($4::boolean IS NULL"
                f" OR {_IS_CSOURCE} = $4)"
                " ORDER BY s.created_at, s.id LIMIT $1 OFFSET $2",
                limit or None,
                offset,
                owner,
                csource,
            )
        return [_row(r) for r in rows]

    async def count(
        self, schema: str, owner: str | None = None, csource: bool | None = None
    ) -> int:
        async with self._pool.acquire() as conn:
            return int(
                await conn.fetchval(
                    f"SELECT count(*) FROM {schema}.subscriptions s"
                    " WHERE ($1::text IS NULL OR s.owner->>'key' = $1) AND ($2::boolean IS NULL"
                    f" OR {_IS_CSOURCE} = $2)",
                    owner,
                    csource,
                )
            )

    async def failing(self, schema: str) -> set[str]:
        """Ids of the subscriptions whose last notification failed (notification.status)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT id FROM {schema}.subscription_status WHERE failing")
        return {r["id"] for r in rows}

    async def add_status(self, schema: str, updates: list[dict[str, Any]]) -> None:
        """Add the notifier's counts to the delivery status of several subscriptions at once.

        Each update: ``id``, ``sent``, ``failed`` (counts to add), ``last_notification``,
        ``last_success``, ``last_failure`` (datetimes or None), ``reason``, ``failing``.
        """
        if not updates:
            return
        async with self._pool.acquire() as conn:
            await conn.execute(
                f"""
INSERT INTO {schema}.subscription_status AS st (id, times_sent, times_failed, last_notification,
    last_success, last_failure, last_failure_reason, failing)
SELECT u.id, u.sent, u.failed, u.last_notification, u.last_success, u.last_failure, u.reason,
       u.failing
FROM jsonb_to_recordset($1::jsonb) AS u(id text, sent bigint, failed bigint,
    last_notification timestamptz, last_success timestamptz, last_failure timestamptz,
    reason text, failing boolean)
WHERE EXISTS (SELECT 1 FROM {schema}.subscriptions s WHERE s.id = u.id)
ON CONFLICT (id) DO UPDATE SET
    times_sent = st.times_sent + EXCLUDED.times_sent,
    times_failed = st.times_failed + EXCLUDED.times_failed,
    last_notification = greatest(st.last_notification, EXCLUDED.last_notification),
    last_success = greatest(st.last_success, EXCLUDED.last_success),
    last_failure = greatest(st.last_failure, EXCLUDED.last_failure),
    last_failure_reason = coalesce(EXCLUDED.last_failure_reason, st.last_failure_reason),
    failing = EXCLUDED.failing""",
                updates,
            )
