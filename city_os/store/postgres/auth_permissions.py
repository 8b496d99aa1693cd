"""Permissions and data subjects on PostgreSQL, in each tenant's schema (tenant.sql).

Layer: store/. Every change runs in one transaction with its audit-log row and a NOTIFY on
``cityos_permissions`` (payload: the tenant), after which every process drops its cached copy of
that tenant's type/scope permissions. Entity permissions are not cached: a single-entity decision
reads those of its entity (``for_entity``, an index lookup) and queries read them in SQL
(auth_scope_sql). ``facts`` gives the decision point what it needs to know of an entity.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from city_os.auth.policy import (
    Action,
    EntityFacts,
    Permission,
    parse_scope_pattern,
    scope_pattern_text,
)
from city_os.store.postgres.auth_log import audit
from city_os.store.postgres.query_sql import check_identifier

CHANNEL = "cityos_permissions"
_COLUMNS = "id, assignee, action, entity_id, types, scopes, personal, created_by, created_at"


def _pattern_text(permission: Permission) -> list[str] | None:
    if permission.scopes is None:
        return None
    return [scope_pattern_text(m) for m in permission.scopes]


def _permission(row: asyncpg.Record) -> Permission:
    return Permission(
        id=row["id"],
        assignee=row["assignee"],
        action=Action(row["action"]),
        entity_id=row["entity_id"],
        types=frozenset(row["types"]) if row["types"] is not None else None,
        scopes=tuple(parse_scope_pattern(s) for s in row["scopes"])
        if row["scopes"] is not None
        else None,
        personal=row["personal"],
    )


def _stamp(row: asyncpg.Record) -> tuple[str, str]:
    created: datetime = row["created_at"]
    return row["created_by"], created.isoformat().replace("+00:00", "Z")


class PermissionRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(
        self, schema: str, tenant: str, permission: Permission, actor: str
    ) -> tuple[str, str]:
        """Store it; (created by, created at)."""
        s = check_identifier(schema)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"INSERT INTO {s}.permissions"
                " (id, assignee, action, entity_id, types, scopes, personal, created_by)"
                f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_COLUMNS}",
                permission.id,
                permission.assignee,
                int(permission.action),
                permission.entity_id,
                sorted(permission.types) if permission.types is not None else None,
                _pattern_text(permission),
                permission.personal,
                actor,
            )
            await audit(conn, tenant, actor, "permission.created", permission.id, _detail(row))
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, tenant)
        return _stamp(row)

    async def delete(self, schema: str, tenant: str, permission_id: str, actor: str) -> bool:
        s = check_identifier(schema)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"DELETE FROM {s}.permissions WHERE id = $1 RETURNING {_COLUMNS}", permission_id
            )
            if row is None:
                return False
            await audit(conn, tenant, actor, "permission.deleted", permission_id, _detail(row))
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, tenant)
        return True

    async def find(
        self, schema: str, *, entity_id: str | None = None, assignee: str | None = None
    ) -> list[tuple[Permission, tuple[str, str]]]:
        s = check_identifier(schema)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM {s}.permissions"
                " WHERE ($1::text IS NULL OR entity_id = $1)"
                " AND ($2::text IS NULL OR assignee = $2) ORDER BY created_at, id",
                entity_id,
                assignee,
            )
        return [(_permission(r), _stamp(r)) for r in rows]

    async def get(
        self, schema: str, permission_id: str
    ) -> tuple[Permission, tuple[str, str]] | None:
        s = check_identifier(schema)
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM {s}.permissions WHERE id = $1", permission_id
            )
        return (_permission(row), _stamp(row)) if row is not None else None

    async def of_tenant(self, schema: str) -> list[Permission]:
        """The type/scope permissions (what the per-process cache holds)."""
        s = check_identifier(schema)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM {s}.permissions WHERE entity_id IS NULL ORDER BY id"
            )
        return [_permission(r) for r in rows]

    async def for_entity(self, schema: str, entity_id: str) -> list[Permission]:
        s = check_identifier(schema)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM {s}.permissions WHERE entity_id = $1", entity_id
            )
        return [_permission(r) for r in rows]

    async def facts(self, schema: str, entity_id: str) -> EntityFacts | None:
        """Types, scopes and data subject of a live entity, or None."""
        s = check_identifier(schema)
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT e.id, e.types, e.scopes, d.issuer, d.subject FROM {s}.entities e"
                f" LEFT JOIN {s}.data_subjects d ON d.entity_id = e.id"
                " WHERE e.id = $1 AND (e.expires_at IS NULL OR e.expires_at > now())",
                entity_id,
            )
        if row is None:
            return None
        subject = (row["issuer"], row["subject"]) if row["issuer"] is not None else None
        return EntityFacts(row["id"], tuple(row["types"]), tuple(row["scopes"] or ()), subject)


def _detail(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "assignee": row["assignee"],
        "action": Action(row["action"]).name.lower(),
        "entityId": row["entity_id"],
        "types": row["types"],
        "scopes": row["scopes"],
        "personal": row["personal"],
    }
