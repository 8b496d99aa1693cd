"""Value indexes on PostgreSQL: opt-in btree indexes on an attribute's numeric values.

Layer: store/. The registry is ``cityos.value_indexes`` (migration ``0004_value_indexes.sql``);
each indexed attribute has two indexes in its tenant's schema, on
``(types, cityos.q_number_bound(attrs -> 'IRI', true))`` and the same with ``false``, built in the
background with ``CREATE INDEX CONCURRENTLY`` so writers are never blocked.

The query builder (``query_sql``) writes an order comparison on an indexed attribute as a
comparison of that function, which the planner can answer from the index; both forms select
the same entities. That is why ``numbers`` may be a few seconds stale in a process that did not
make the change: a new index is used a little later, a dropped one costs speed for a moment,
never correctness.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from city_os.store.postgres.query_sql import check_identifier, sql_string

log = logging.getLogger(__name__)

CACHE_SECONDS = 5.0

_BOUNDS = (("max", "true"), ("min", "false"))  # index name suffix, ``largest``
_ROW = "tenant, attr, term, kind, status, error, created_at"


@dataclass(frozen=True)
class ValueIndex:
    tenant: str
    attr: str  # expanded IRI
    term: str  # as registered
    kind: str  # "number"
    status: str  # "building" | "ready" | "failed"
    error: str | None  # why a build failed
    created_at: str


def index_names(attr: str) -> list[str]:
    """The names of an attribute's indexes in its tenant schema (stable, identifier-safe)."""
    digest = hashlib.sha256(attr.encode()).hexdigest()[:16]
    return [f"vi_{suffix}_{digest}" for suffix, _ in _BOUNDS]


def _index_ddl(schema: str, attr: str) -> list[str]:
    schema = check_identifier(schema)
    target = f"attrs -> {sql_string(attr)}"
    return [
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {schema}.entities"
        f" (types, cityos.q_number_bound({target}, {largest}))"
        for name, (_, largest) in zip(index_names(attr), _BOUNDS, strict=True)
    ]


def _value_index(row: asyncpg.Record) -> ValueIndex:
    created: datetime = row["created_at"]
    return ValueIndex(
        row["tenant"],
        row["attr"],
        row["term"],
        row["kind"],
        row["status"],
        row["error"],
        created.isoformat(timespec="microseconds").replace("+00:00", "Z"),
    )


class ValueIndexRepository:
    def __init__(self, pool: asyncpg.Pool, dsn: str, cache_seconds: float = CACHE_SECONDS) -> None:
        self._pool = pool
        self._dsn = dsn  # builds run on connections of their own
        self._cache_seconds = cache_seconds
        self._numbers: dict[str, tuple[float, frozenset[str]]] = {}
        self._loading: dict[str, asyncio.Future[frozenset[str]]] = {}

    # -- the query hot path ----------------------------------------------------------------

    async def numbers(self, schema: str) -> frozenset[str]:
        """IRIs of the attributes of a tenant schema whose number indexes are ready."""
        cached = self._numbers.get(schema)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        loading = self._loading.get(schema)
        if loading is not None:  # one query per schema however many requests wait for it
            return await asyncio.shield(loading)
        future: asyncio.Future[frozenset[str]] = asyncio.get_running_loop().create_future()
        self._loading[schema] = future
        try:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT attr FROM cityos.value_indexes"
                    " WHERE schema_name = $1 AND kind = 'number' AND status = 'ready'",
                    schema,
                )
            found = frozenset(r["attr"] for r in rows)
            self._numbers[schema] = (time.monotonic() + self._cache_seconds, found)
            future.set_result(found)
            return found
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it, nobody logs "never retrieved"
            raise
        finally:
            del self._loading[schema]

    def forget(self, schema: str) -> None:
        self._numbers.pop(schema, None)

    # -- the registry ----------------------------------------------------------------------

    async def of_tenant(self, tenant: str) -> list[ValueIndex]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_ROW} FROM cityos.value_indexes WHERE tenant = $1 ORDER BY attr", tenant
            )
        return [_value_index(r) for r in rows]

    async def get(self, tenant: str, attr: str) -> ValueIndex | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {_ROW} FROM cityos.value_indexes WHERE tenant = $1 AND attr = $2",
                tenant,
                attr,
            )
        return _value_index(row) if row is not None else None

    async def register(
        self, tenant: str, schema: str, attr: str, term: str, kind: str
    ) -> tuple[ValueIndex, bool]:
        """Register an attribute for value indexes (status ``building``; ``build`` makes them);
        False with the existing entry if it was registered already."""
        while True:
            async with self._pool.acquire() as conn:
                row = await conn.fetchrow(
                    "INSERT INTO cityos.value_indexes"
                    " (tenant, schema_name, attr, term, kind, status)"
                    " VALUES ($1, $2, $3, $4, $5, 'building')"
                    f" ON CONFLICT (tenant, attr) DO NOTHING RETURNING {_ROW}",
                    tenant,
                    schema,
                    attr,
                    term,
                    kind,
                )
            if row is not None:
                return _value_index(row), True
            existing = await self.get(tenant, attr)
            if existing is not None:
                return existing, False
            # dropped between the two statements: register it anew

    async def pending(self) -> list[tuple[str, str, str]]:
        """(tenant, schema, attr) of every registration still ``building`` (after a restart,
        its build must be run again)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT tenant, schema_name, attr FROM cityos.value_indexes"
                " WHERE status = 'building' ORDER BY created_at"
            )
        return [(r["tenant"], r["schema_name"], r["attr"]) for r in rows]

    async def build(self, tenant: str, schema: str, attr: str) -> None:
        """Build a registered attribute's indexes, on a connection of its own (it can take as
        long as reading every entity of the tenant; writes go on meanwhile). One process
        builds a given attribute at a time (a session advisory lock): others return at once.
        A build stopped half-way leaves an invalid index, dropped before the next attempt; a
        failure is recorded in the registration (status ``failed`` and ``error``)."""
        conn = await asyncpg.connect(self._dsn, server_settings={"application_name": "city-os"})
        try:
            key = int.from_bytes(hashlib.sha256(f"{tenant}\0{attr}".encode()).digest()[:8], "big")
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1::bigint)", key - 2**63):
                return
            status = await conn.fetchval(
                "SELECT status FROM cityos.value_indexes WHERE tenant = $1 AND attr = $2",
                tenant,
                attr,
            )
            if status != "building":
                return  # built, failed or dropped meanwhile
            try:
                await self._drop_invalid(conn, schema, attr)
                for ddl in _index_ddl(schema, attr):
                    await conn.execute(ddl)  # CONCURRENTLY: outside any transaction
            except (asyncpg.PostgresError, OSError) as exc:
                log.warning("value index on %s of tenant %r failed: %s", attr, tenant, exc)
                await self._drop_indexes(conn, schema, attr)
                await conn.execute(
                    "UPDATE cityos.value_indexes SET status = 'failed', error = $3"
                    " WHERE tenant = $1 AND attr = $2",
                    tenant,
                    attr,
                    f"{type(exc).__name__}: {exc}",
                )
                return
            ready = await conn.fetchval(
                "UPDATE cityos.value_indexes SET status = 'ready', error = NULL"
                " WHERE tenant = $1 AND attr = $2 RETURNING true",
                tenant,
                attr,
            )
            if not ready:  # dropped while it was being built
                await self._drop_indexes(conn, schema, attr)
        finally:
            await conn.close()
        self.forget(schema)

    async def drop(self, tenant: str, schema: str, attr: str) -> bool:
        """Unregister an attribute and drop its indexes; False if it was not registered."""
        async with self._pool.acquire() as conn:
            # Unregister first: queries stop naming the functions before the indexes go.
            status = await conn.fetchval(
                "DELETE FROM cityos.value_indexes WHERE tenant = $1 AND attr = $2 RETURNING status",
                tenant,
                attr,
            )
            self.forget(schema)
            # Waits for a build running elsewhere (same table lock); one that has not created
            # an index yet drops it itself once it finds the registration gone.
            await self._drop_indexes(conn, schema, attr)
        return status is not None

    @staticmethod
    async def _drop_indexes(conn: asyncpg.Connection, schema: str, attr: str) -> None:
        schema = check_identifier(schema)
        for name in index_names(attr):
            await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema}.{name}")

    @staticmethod
    async def _drop_invalid(conn: asyncpg.Connection, schema: str, attr: str) -> None:
        """Drop what an interrupted build left: indexes marked invalid."""
        rows = await conn.fetch(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) AND NOT i.indisvalid",
            schema,
            index_names(attr),
        )
        schema = check_identifier(schema)
        for row in rows:
            name = check_identifier(row["relname"])
            await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema}.{name}")
