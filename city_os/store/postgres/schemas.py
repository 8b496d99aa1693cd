"""Schema registry persistence on PostgreSQL: versions, the active pointer, change notifications.

Layer: store/. Tables ``cityos.schema_types`` and ``cityos.schema_versions`` (migration
``0002_schemas.sql``). Every change runs in one transaction that also calls ``pg_notify`` on
``CHANNEL``, so the notification is delivered exactly when the change is visible; broker processes
LISTEN and refresh their in-memory active schemas. Also the paged scan of a tenant's entities of
one type, for dry runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg
import orjson

from city_os.store.postgres.entities import _COLUMNS, _LIVE, Stored, _record

CHANNEL = "cityos_schemas"
# pg_notify payloads must stay under 8000 bytes; longer keys are announced as "reload everything".
_MAX_PAYLOAD = 7000

_INFO = "tenant, type_iri, term, version, digest, active, created_at"


@dataclass(frozen=True)
class VersionInfo:
    tenant: str
    type_iri: str
    term: str
    version: int
    digest: str
    active: bool
    created_at: str


@dataclass(frozen=True)
class SchemaVersion:
    info: VersionInfo
    schema: dict[str, Any]
    context: Any  # the @context registered with the schema (None = core only)


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _info(row: asyncpg.Record) -> VersionInfo:
    return VersionInfo(
        row["tenant"],
        row["type_iri"],
        row["term"],
        row["version"],
        row["digest"],
        row["active"],
        _iso(row["created_at"]),
    )


def _version(row: asyncpg.Record) -> SchemaVersion:
    context = row["context"]
    return SchemaVersion(
        _info(row), orjson.loads(row["schema"]), None if context is None else orjson.loads(context)
    )


def notify_payload(tenant: str, type_iri: str) -> str:
    payload = orjson.dumps({"tenant": tenant, "type": type_iri}).decode()
    return payload if len(payload.encode()) <= _MAX_PAYLOAD else ""


class SchemaRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def _notify(self, conn: asyncpg.Connection, tenant: str, type_iri: str) -> None:
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, notify_payload(tenant, type_iri))

    async def register(
        self,
        tenant: str,
        type_iri: str,
        term: str,
        schema: dict[str, Any],
        context: Any,
        digest: str,
        *,
        activate: bool,
    ) -> tuple[VersionInfo, bool]:
        """Store a new version, or find the version with the same digest; True if created."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO cityos.schema_types (tenant, type_iri) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING",
                tenant,
                type_iri,
            )
            # Serialises registrations of one type: numbering and the digest check are exact.
            await conn.execute(
                "SELECT 1 FROM cityos.schema_types WHERE tenant = $1 AND type_iri = $2 FOR UPDATE",
                tenant,
                type_iri,
            )
            version = await conn.fetchval(
                "SELECT version FROM cityos.schema_versions"
                " WHERE tenant = $1 AND type_iri = $2 AND digest = $3 ORDER BY version LIMIT 1",
                tenant,
                type_iri,
                digest,
            )
            created = version is None
            if created:
                version = await conn.fetchval(
                    "UPDATE cityos.schema_types SET last_version = last_version + 1"
                    " WHERE tenant = $1 AND type_iri = $2 RETURNING last_version",
                    tenant,
                    type_iri,
                )
                await conn.execute(
                    "INSERT INTO cityos.schema_versions"
                    " (tenant, type_iri, version, term, schema, context, digest)"
                    " VALUES ($1, $2, $3, $4, $5::json, $6::json, $7)",
                    tenant,
                    type_iri,
                    version,
                    term,
                    orjson.dumps(schema).decode(),
                    None if context is None else orjson.dumps(context).decode(),
                    digest,
                )
            if activate:
                await self._activate(conn, tenant, type_iri, version)
            if created or activate:
                await self._notify(conn, tenant, type_iri)
            row = await conn.fetchrow(
                f"SELECT {_INFO} FROM cityos.schema_versions"
                " WHERE tenant = $1 AND type_iri = $2 AND version = $3",
                tenant,
                type_iri,
                version,
            )
        return _info(row), created

    async def _activate(
        self, conn: asyncpg.Connection, tenant: str, type_iri: str, version: int
    ) -> None:
        # Two statements: the partial unique index is checked row by row, not per statement.
        await conn.execute(
            "UPDATE cityos.schema_versions SET active = false"
            " WHERE tenant = $1 AND type_iri = $2 AND active AND version <> $3",
            tenant,
            type_iri,
            version,
        )
        await conn.execute(
            "UPDATE cityos.schema_versions SET active = true"
            " WHERE tenant = $1 AND type_iri = $2 AND version = $3 AND NOT active",
            tenant,
            type_iri,
            version,
        )

    async def versions(self, tenant: str, type_iri: str | None = None) -> list[VersionInfo]:
        """Versions of every type of a tenant (or of one type), by type IRI and version."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_INFO} FROM cityos.schema_versions"
                " WHERE tenant = $1 AND ($2::text IS NULL OR type_iri = $2)"
                " ORDER BY type_iri, version",
                tenant,
                type_iri,
            )
        return [_info(r) for r in rows]

    async def get(self, tenant: str, type_iri: str, version: int) -> SchemaVersion | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {_INFO}, schema, context FROM cityos.schema_versions"
                " WHERE tenant = $1 AND type_iri = $2 AND version = $3",
                tenant,
                type_iri,
                version,
            )
        return None if row is None else _version(row)

    async def active(
        self, tenant: str | None = None, type_iri: str | None = None
    ) -> list[SchemaVersion]:
        """Active versions of every tenant and type, or of one (tenant, type)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_INFO}, schema, context FROM cityos.schema_versions"
                " WHERE active AND ($1::text IS NULL OR (tenant = $1 AND type_iri = $2))",
                tenant,
                type_iri,
            )
        return [_version(r) for r in rows]

    async def activate(self, tenant: str, type_iri: str, version: int) -> bool:
        """Make ``version`` the active one; False if there is no such version."""
        async with self._pool.acquire() as conn, conn.transaction():
            exists = await conn.fetchval(
                "SELECT 1 FROM cityos.schema_versions"
                " WHERE tenant = $1 AND type_iri = $2 AND version = $3",
                tenant,
                type_iri,
                version,
            )
            if not exists:
                return False
            await self._activate(conn, tenant, type_iri, version)
            await self._notify(conn, tenant, type_iri)
        return True

    async def deactivate(self, tenant: str, type_iri: str) -> bool:
        """No active version any more; False if the type has no versions at all."""
        async with self._pool.acquire() as conn, conn.transaction():
            exists = await conn.fetchval(
                "SELECT 1 FROM cityos.schema_versions WHERE tenant = $1 AND type_iri = $2 LIMIT 1",
                tenant,
                type_iri,
            )
            if not exists:
                return False
            await conn.execute(
                "UPDATE cityos.schema_versions SET active = false"
                " WHERE tenant = $1 AND type_iri = $2 AND active",
                tenant,
                type_iri,
            )
            await self._notify(conn, tenant, type_iri)
        return True

    async def delete_version(
        self, tenant: str, type_iri: str, version: int
    ) -> Literal["deleted", "missing", "active"]:
        async with self._pool.acquire() as conn, conn.transaction():
            active = await conn.fetchval(
                "SELECT active FROM cityos.schema_versions"
                " WHERE tenant = $1 AND type_iri = $2 AND version = $3 FOR UPDATE",
                tenant,
                type_iri,
                version,
            )
            if active is None:
                return "missing"
            if active:
                return "active"
            await conn.execute(
                "DELETE FROM cityos.schema_versions"
                " WHERE tenant = $1 AND type_iri = $2 AND version = $3",
                tenant,
                type_iri,
                version,
            )
            await self._notify(conn, tenant, type_iri)
        return "deleted"

    async def delete_type(self, tenant: str, type_iri: str) -> bool:
        """Delete every version (active included); False if the type has none."""
        async with self._pool.acquire() as conn, conn.transaction():
            deleted = await conn.fetch(
                "DELETE FROM cityos.schema_versions WHERE tenant = $1 AND type_iri = $2"
                " RETURNING version",
                tenant,
                type_iri,
            )
            await conn.execute(
                "DELETE FROM cityos.schema_types WHERE tenant = $1 AND type_iri = $2",
                tenant,
                type_iri,
            )
            if deleted:
                await self._notify(conn, tenant, type_iri)
        return bool(deleted)

    async def scan(self, schema: str, type_iri: str, after: str, limit: int) -> list[Stored]:
        """Live entities of one type in a tenant schema, by id, after ``after`` (keyset paging).

        ``schema`` is a generated tenant schema name (db.schema_name), never request text.
        """
        sql = (
            f"SELECT {_COLUMNS} FROM {schema}.entities"
            f" WHERE types @> ARRAY[$1]::text[] AND id > $2 AND {_LIVE} ORDER BY id LIMIT $3"
        )
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, type_iri, after, limit)
        return [_record(r) for r in rows]
