"""API keys on PostgreSQL (``cityos.api_keys``, migration 0007).

Layer: store/. Creation and revocation run in one transaction with their audit-log row and a
NOTIFY on ``cityos_apikeys`` (payload: the key id), so every process forgets its cached copy of a
revoked key at once. Last-used times arrive in batches (``touch``: one UPDATE for many keys).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from city_os.store.postgres.auth_log import audit

CHANNEL = "cityos_apikeys"
_COLUMNS = (
    "id, tenant, name, secret_hash, operations, types, origin, created_by, created_at,"
    " expires_at, revoked_at, last_used_at"
)


@dataclass(frozen=True, slots=True)
class StoredKey:
    id: str
    tenant: str
    name: str
    secret_hash: bytes
    operations: tuple[str, ...]
    types: tuple[str, ...]
    origin: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


def _key(row: asyncpg.Record) -> StoredKey:
    return StoredKey(
        id=row["id"],
        tenant=row["tenant"],
        name=row["name"],
        secret_hash=bytes(row["secret_hash"]),
        operations=tuple(row["operations"]),
        types=tuple(row["types"]),
        origin=row["origin"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )


class ApiKeyRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def insert(self, key: StoredKey) -> StoredKey:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "INSERT INTO cityos.api_keys (id, tenant, name, secret_hash, operations, types,"
                " origin, created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                f" RETURNING {_COLUMNS}",
                key.id,
                key.tenant,
                key.name,
                key.secret_hash,
                list(key.operations),
                list(key.types),
                key.origin,
                key.created_by,
                key.expires_at,
            )
            detail = {
                "name": key.name,
                "operations": list(key.operations),
                "types": list(key.types),
            }
            await audit(conn, key.tenant, key.created_by, "apikey.created", key.id, detail)
        return _key(row)

    async def get(self, key_id: str) -> StoredKey | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM cityos.api_keys WHERE id = $1", key_id
            )
        return _key(row) if row is not None else None

    async def of_tenant(self, tenant: str) -> list[StoredKey]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM cityos.api_keys WHERE tenant = $1 ORDER BY created_at, id",
                tenant,
            )
        return [_key(r) for r in rows]

    async def revoke(self, tenant: str, key_id: str, actor: str) -> StoredKey | None:
        """Revoke (idempotent: a revoked key stays revoked at its first time); None if the
        tenant has no such key."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE cityos.api_keys SET revoked_at = coalesce(revoked_at, now())"
                f" WHERE tenant = $1 AND id = $2 RETURNING {_COLUMNS}",
                tenant,
                key_id,
            )
            if row is None:
                return None
            await audit(conn, tenant, actor, "apikey.revoked", key_id, {})
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, key_id)
        return _key(row)

    async def touch(self, ids: Sequence[str], used: Sequence[datetime]) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE cityos.api_keys k SET last_used_at = GREATEST(k.last_used_at, u.used)"
                " FROM unnest($1::text[], $2::timestamptz[]) AS u(id, used) WHERE k.id = u.id",
                list(ids),
                list(used),
            )
