"""PostgreSQL storage of /jsonldContexts (§5.13): hosted, cached and implicitly created @contexts.

Layer: store/. One global table, ``cityos.jsonld_contexts``, shared by every tenant and every
broker process, so a context added through one process is served by all and survives restarts.
A Hosted row remembers the NGSILD-Tenant that added it; which rows a request may see is decided
in core/. Bound parameters only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

_COLUMNS = "id, url, kind, tenant, body, created_at, last_used, uses"


@dataclass(frozen=True, slots=True)
class StoredContext:
    local_id: str
    url: str
    kind: str
    tenant: str | None
    body: dict[str, Any]
    created_at: datetime
    last_used: datetime | None
    hits: int


def _row(row: asyncpg.Record) -> StoredContext:
    return StoredContext(
        local_id=row["id"],
        url=row["url"],
        kind=row["kind"],
        tenant=row["tenant"],
        body=row["body"],
        created_at=row["created_at"],
        last_used=row["last_used"],
        hits=row["uses"],
    )


class ContextRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def insert(
        self, local_id: str, url: str, kind: str, tenant: str | None, body: dict[str, Any]
    ) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO cityos.jsonld_contexts (id, url, kind, tenant, body)"
                " VALUES ($1, $2, $3, $4, $5)",
                local_id,
                url,
                kind,
                tenant,
                body,
            )

    async def put_core(self, local_id: str, url: str, body: dict[str, Any]) -> None:
        """Keep the core context's row (kind Cached) current; its usage counters are kept."""
        sql = (
            "INSERT INTO cityos.jsonld_contexts (id, url, kind, body)"
            " VALUES ($1, $2, 'Cached', $3)"
            " ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, body = EXCLUDED.body"
            " WHERE jsonld_contexts.url IS DISTINCT FROM EXCLUDED.url"
            " OR jsonld_contexts.body IS DISTINCT FROM EXCLUDED.body"
        )
        async with self._pool.acquire() as conn:
            try:
                await conn.execute(sql, local_id, url, body)
            except asyncpg.UniqueViolationError:
                # Two processes starting at once on an empty table: the other one's row came
                # in on the url index before ours hit the id conflict. It is there now.
                await conn.execute(sql, local_id, url, body)

    async def put_cached(self, local_id: str, url: str, body: dict[str, Any]) -> None:
        """Record a fetched remote context; a row already there for the URL is refreshed."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO cityos.jsonld_contexts (id, url, kind, body)"
                " VALUES ($1, $2, 'Cached', $3)"
                " ON CONFLICT (url) DO UPDATE SET body = EXCLUDED.body"
                " WHERE jsonld_contexts.kind = 'Cached'",
                local_id,
                url,
                body,
            )

    async def replace_body(self, local_id: str, body: dict[str, Any]) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE cityos.jsonld_contexts SET body = $2 WHERE id = $1", local_id, body
            )

    async def find(self, ref: str) -> StoredContext | None:
        """The context whose local id or URL is ``ref``."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM cityos.jsonld_contexts WHERE id = $1 OR url = $1 LIMIT 1",
                ref,
            )
        return None if row is None else _row(row)

    async def body(self, url: str) -> dict[str, Any] | None:
        async with self._pool.acquire() as conn:
            body: dict[str, Any] | None = await conn.fetchval(
                "SELECT body FROM cityos.jsonld_contexts WHERE url = $1", url
            )
        return body

    async def find_implicit(self, body: dict[str, Any]) -> StoredContext | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM cityos.jsonld_contexts"
                " WHERE kind = 'ImplicitlyCreated' AND body = $1 LIMIT 1",
                body,
            )
        return None if row is None else _row(row)

    async def list(self, kind: str | None, tenant: str) -> list[StoredContext]:
        """Every context of ``kind`` (None: all), Hosted ones only if ``tenant`` added them."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM cityos.jsonld_contexts"
                " WHERE ($1::text IS NULL OR kind = $1) AND (kind <> 'Hosted' OR tenant = $2)"
                " ORDER BY created_at, id",
                kind,
                tenant,
            )
        return [_row(r) for r in rows]

    async def delete(self, local_id: str) -> bool:
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                "DELETE FROM cityos.jsonld_contexts WHERE id = $1", local_id
            )
        return bool(status == "DELETE 1")

    async def add_usage(
        self, urls: Sequence[str], hits: Sequence[int], last_used: Sequence[datetime]
    ) -> None:
        """Add usage counted in memory; URLs without a row (never stored, deleted) are skipped."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE cityos.jsonld_contexts AS c"
                " SET uses = c.uses + u.hits, last_used = GREATEST(c.last_used, u.last_used)"
                " FROM unnest($1::text[], $2::bigint[], $3::timestamptz[])"
                " AS u(url, hits, last_used)"
                " WHERE c.url = u.url",
                list(urls),
                list(hits),
                list(last_used),
            )
