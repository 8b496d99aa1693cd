"""Value indexes on PostgreSQL: opt-in btree indexes on an attribute's numeric values.

Layer: store/. The registry is ``cityos.value_indexes`` (migration ``0004_value_indexes.sql``);
each indexed attribute has two indexes in its tenant's schema, on
``(types, cityos.q_number_max(attrs -> 'IRI'))`` and the same with ``q_number_min``, built with
``CREATE INDEX CONCURRENTLY`` so writers are never blocked.

The query builder (``query_sql``) writes an order comparison on an indexed attribute as a
comparison of those functions, which the planner can answer from the index; both forms select
the same entities. That is why ``numbers`` may be a few seconds stale in a process that did not
make the change: a new index is used a little later, a dropped one costs speed for a moment,
never correctness.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from city_os.store.postgres.query_sql import check_identifier, sql_string

CACHE_SECONDS = 5.0

_FUNCTIONS = (("max", "cityos.q_number_max"), ("min", "cityos.q_number_min"))
_ROW = "tenant, attr, term, kind, status, created_at"


@dataclass(frozen=True)
class ValueIndex:
    tenant: str
    attr: str  # expanded IRI
    term: str  # as registered
    kind: str  # "number"
    status: str  # "building" | "ready"
    created_at: str


def index_names(attr: str) -> list[str]:
    """The names of an attribute's indexes in its tenant schema (stable, identifier-safe)."""
    digest = hashlib.sha256(attr.encode()).hexdigest()[:16]
    return [f"vi_{suffix}_{digest}" for suffix, _ in _FUNCTIONS]


def _index_ddl(schema: str, attr: str) -> list[str]:
    schema = check_identifier(schema)
    target = f"attrs -> {sql_string(attr)}"
    return [
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {schema}.entities"
        f" (types, {function}({target}))"
        for name, (_, function) in zip(index_names(attr), _FUNCTIONS, strict=True)
    ]


def _value_index(row: asyncpg.Record) -> ValueIndex:
    created: datetime = row["created_at"]
    return ValueIndex(
        row["tenant"],
        row["attr"],
        row["term"],
        row["kind"],
        row["status"],
        created.isoformat(timespec="microseconds").replace("+00:00", "Z"),
    )


class ValueIndexRepository:
    def __init__(self, pool: asyncpg.Pool, cache_seconds: float = CACHE_SECONDS) -> None:
        self._pool = pool
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

    async def list(self, tenant: str) -> list[ValueIndex]:
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

    async def create(
        self, tenant: str, schema: str, attr: str, term: str, kind: str
    ) -> tuple[ValueIndex, bool]:
        """Register and build an attribute's indexes; False if it was registered already
        (then nothing is built here: its builder finishes it). The build takes as long as
        reading the tenant's entities; if it fails, nothing is left behind."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "INSERT INTO cityos.value_indexes (tenant, schema_name, attr, term, kind, status)"
                " VALUES ($1, $2, $3, $4, $5, 'building') ON CONFLICT (tenant, attr) DO NOTHING"
                f" RETURNING {_ROW}",
                tenant,
                schema,
                attr,
                term,
                kind,
            )
            if row is None:
                existing = await self.get(tenant, attr)
                if existing is not None:
                    return existing, False
        if row is None:  # dropped between the two statements: register it anew
            return await self.create(tenant, schema, attr, term, kind)
        async with self._pool.acquire() as conn:
            try:
                for ddl in _index_ddl(schema, attr):
                    await conn.execute(ddl)  # CONCURRENTLY: outside any transaction
            except BaseException:
                await asyncio.shield(self._drop(conn, tenant, schema, attr))
                raise
            row = await conn.fetchrow(
                "UPDATE cityos.value_indexes SET status = 'ready'"
                f" WHERE tenant = $1 AND attr = $2 RETURNING {_ROW}",
                tenant,
                attr,
            )
        self.forget(schema)
        return _value_index(row), True

    async def drop(self, tenant: str, schema: str, attr: str) -> bool:
        """Drop an attribute's indexes; False if it had none."""
        async with self._pool.acquire() as conn:
            found = await self._drop(conn, tenant, schema, attr)
        self.forget(schema)
        return found

    async def _drop(self, conn: asyncpg.Connection, tenant: str, schema: str, attr: str) -> bool:
        # Unregister first: queries stop naming the functions before the indexes go.
        status = await conn.fetchval(
            "DELETE FROM cityos.value_indexes WHERE tenant = $1 AND attr = $2 RETURNING status",
            tenant,
            attr,
        )
        for name in index_names(attr):
            await conn.execute(
                f"DROP INDEX CONCURRENTLY IF EXISTS {check_identifier(schema)}.{name}"
            )
        return status is not None
