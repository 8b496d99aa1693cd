"""Context source registrations on PostgreSQL: one tenant schema's ``csource_registrations``.

Layer: store/. Every change is one transaction: the registration row, its outbox row (the
``jp.city-os.registration.*`` event, through the same outbox as entities and subscriptions)
and a NOTIFY on ``CHANNEL`` with the tenant and id, so every replica's registration index
(federation/index.py) re-reads that one registration as soon as the change is visible (and the
outbox relay wakes up). Updates are optimistic: they only touch a row still at the version the
caller read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from city_os.store.postgres.changes import SideEffects, guarded_write, notify_change, write_outbox
from city_os.store.postgres.entities import _iso

CHANNEL = "cityos_registrations"


@dataclass(frozen=True)
class RegistrationRow:
    """A registration as stored; ``doc`` is ``Registration.to_doc()`` (names expanded)."""

    id: str
    doc: dict[str, Any]
    context: Any  # the @context it was written with (None: core only)
    created_at: str
    modified_at: str
    expires_at: str | None = None
    version: int = 0


_COLUMNS = "id, doc, context, created_at, modified_at, expires_at, version"


def _row(r: asyncpg.Record) -> RegistrationRow:
    return RegistrationRow(
        id=r["id"],
        doc=r["doc"],
        context=r["context"],
        created_at=_iso(r["created_at"]) or "",
        modified_at=_iso(r["modified_at"]) or "",
        expires_at=_iso(r["expires_at"]),
        version=r["version"],
    )


class RegistrationRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def _side_effects(self, tenant: str, rid: str, event: dict[str, Any]) -> SideEffects:
        async def write(conn: asyncpg.Connection) -> None:
            await write_outbox(conn, event)
            await notify_change(conn, CHANNEL, tenant, rid)

        return write

    async def insert(
        self, schema: str, tenant: str, row: RegistrationRow, event: dict[str, Any]
    ) -> bool:
        """Store a new registration; False when one with its id exists (nothing written)."""
        return await guarded_write(
            self._pool,
            self._side_effects(tenant, row.id, event),
            f"INSERT INTO {schema}.csource_registrations (id, doc, context, created_at,"
            " modified_at, expires_at) VALUES ($1, $2, $3, $4::text::timestamptz,"
            " $4::text::timestamptz, $5::text::timestamptz)"
            " ON CONFLICT (id) DO NOTHING RETURNING id",
            row.id,
            row.doc,
            row.context,
            row.created_at,
            row.expires_at,
        )

    async def update(
        self, schema: str, tenant: str, row: RegistrationRow, event: dict[str, Any]
    ) -> bool:
        """Write a new state of a registration still at ``row.version``; False otherwise."""
        return await guarded_write(
            self._pool,
            self._side_effects(tenant, row.id, event),
            f"UPDATE {schema}.csource_registrations SET doc = $2, context = $3,"
            " modified_at = $4::text::timestamptz, expires_at = $5::text::timestamptz,"
            " version = version + 1 WHERE id = $1 AND version = $6 RETURNING id",
            row.id,
            row.doc,
            row.context,
            row.modified_at,
            row.expires_at,
            row.version,
        )

    async def delete(self, schema: str, tenant: str, rid: str, event: dict[str, Any]) -> bool:
        return await guarded_write(
            self._pool,
            self._side_effects(tenant, rid, event),
            f"DELETE FROM {schema}.csource_registrations WHERE id = $1 RETURNING id",
            rid,
        )

    async def get(self, schema: str, rid: str) -> RegistrationRow | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM {schema}.csource_registrations WHERE id = $1", rid
            )
        return None if row is None else _row(row)

    async def expired(self, schema: str) -> list[RegistrationRow]:
        """The registrations whose expiresAt has passed (§5.9.2.4: to be deleted)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM {schema}.csource_registrations"
                " WHERE expires_at <= now() ORDER BY expires_at LIMIT 500"
            )
        return [_row(r) for r in rows]

    async def all(self, schema: str) -> list[RegistrationRow]:
        """Every registration of the tenant, in creation order (registrations are few: the
        query of §5.10.2 and the index filter them in process, with one evaluator)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM {schema}.csource_registrations ORDER BY created_at, id"
            )
        return [_row(r) for r in rows]
