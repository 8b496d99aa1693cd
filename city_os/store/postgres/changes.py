"""One guarded change of a document row: the write, its outbox event and its NOTIFY, together.

Layer: store/. Context source registrations (store/postgres/csource.py) and subscriptions
(store/postgres/subscriptions.py) change the same way: one statement ``... RETURNING id`` that
touches the row only when it is as the caller expects (absent for an insert, at the version it
read for an update, present for a delete), then, in the same transaction, the change's outbox
row and a NOTIFY of the kind's channel with the tenant and id (and the outbox relay's channel,
so it wakes up). Nothing is written when the statement touched no row.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson

from city_os.store.postgres.entities import NOTIFY_CHANNEL

_OUTBOX = """INSERT INTO cityos.outbox (event_id, tenant, entity_id, event_type, payload)
VALUES ($1::uuid, $2, $3, $4, $5::json)"""

SideEffects = Callable[[asyncpg.Connection], Awaitable[None]]


def notify_payload(tenant: str, rid: str) -> str:
    return orjson.dumps({"tenant": tenant, "id": rid}).decode()


async def write_outbox(conn: asyncpg.Connection, event: dict[str, Any]) -> None:
    await conn.execute(
        _OUTBOX,
        event["event_id"],
        event["tenant"],
        event["entity_id"],
        event["event_type"],
        orjson.dumps(event["payload"]).decode(),
    )


async def notify_change(conn: asyncpg.Connection, channel: str, tenant: str, rid: str) -> None:
    await conn.execute(
        "SELECT pg_notify($1, $2), pg_notify($3, '')",
        channel,
        notify_payload(tenant, rid),
        NOTIFY_CHANNEL,
    )


async def guarded_write(
    pool: asyncpg.Pool, side_effects: SideEffects, sql: str, *args: Any
) -> bool:
    """Run ``sql`` (one statement returning the id it touched) and, when it touched a row,
    ``side_effects`` in the same transaction; False when it touched none (nothing written)."""
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(sql, *args) is None:
            return False
        await side_effects(conn)
    return True
