"""Discovery aggregates on PostgreSQL (§5.7.5-5.7.10): entity types and attributes in use.

Layer: store/. Computed over the live entities of a tenant schema — with access control only
over those the caller may read (``Visible``, the readable-scope SQL of ``auth_scope_sql``), so
``/types`` and ``/attributes`` never tell what exists beyond them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from city_os.errors import BadRequestData
from city_os.store.postgres.auth_scope_sql import readable_to_sql
from city_os.store.postgres.entities import _LIVE
from city_os.store.postgres.query import Visible
from city_os.store.postgres.query_sql import SqlParams


@dataclass(frozen=True)
class AttributeStats:
    iri: str
    count: int  # attribute instances
    kinds: list[str]  # Property, Relationship, …
    types: list[str]  # entity type IRIs


class DiscoveryRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            async with self._pool.acquire() as conn:
                return list(await conn.fetch(sql, *args))
        except asyncpg.DataError as exc:
            raise BadRequestData(f"the query cannot be evaluated: {exc}") from None

    async def types(self, schema: str, visible: Visible | None = None) -> dict[str, list[str]]:
        """Every entity type in use → the attribute IRIs its entities carry."""
        seen, args = _seen(schema, visible)
        rows = await self._fetch(
            f"""
SELECT t.type, array_remove(array_agg(DISTINCT k.key), NULL) AS attrs
FROM {schema}.entities e
CROSS JOIN unnest(e.types) AS t(type)
LEFT JOIN LATERAL jsonb_object_keys(e.attrs) AS k(key) ON true
WHERE {_LIVE} AND {seen}
GROUP BY t.type ORDER BY t.type""",
            *args,
        )
        return {r["type"]: list(r["attrs"]) for r in rows}

    async def type_info(
        self, schema: str, type_iri: str, visible: Visible | None = None
    ) -> tuple[int, dict[str, list[str]]]:
        """Entities of a type, and each of their attributes → its attribute types."""
        seen, args = _seen(schema, visible, SqlParams(2))
        where = f"{_LIVE} AND e.types @> ARRAY[$1]::text[] AND {seen}"
        count = await self._fetch(
            f"SELECT count(*) AS n FROM {schema}.entities e WHERE {where}", type_iri, *args
        )
        rows = await self._fetch(
            f"""
SELECT a.key, array_agg(DISTINCT coalesce(i->>'type', 'Property')) AS kinds
FROM {schema}.entities e
CROSS JOIN LATERAL jsonb_each(e.attrs) AS a(key, val)
CROSS JOIN LATERAL jsonb_array_elements(a.val) AS i
WHERE {where}
GROUP BY a.key ORDER BY a.key""",
            type_iri,
            *args,
        )
        return int(count[0]["n"]), {r["key"]: list(r["kinds"]) for r in rows}

    async def attributes(
        self, schema: str, attr: str | None = None, visible: Visible | None = None
    ) -> list[AttributeStats]:
        """Every attribute in use (or just ``attr``): instance count, kinds, entity types."""
        params = SqlParams()
        extra = ""
        if attr is not None:
            extra = f"AND a.key = {params.add(attr)}"
        seen, _ = _seen(schema, visible, params)
        seen2, args = _seen(schema, visible, params, alias="e2")
        rows = await self._fetch(
            f"""
SELECT a.key, count(*) AS n,
       array_agg(DISTINCT coalesce(i->>'type', 'Property')) AS kinds,
       (SELECT array_agg(DISTINCT t) FROM {schema}.entities e2, unnest(e2.types) AS t
        WHERE {_LIVE.replace("expires_at", "e2.expires_at")} AND e2.attrs ? a.key
        AND {seen2}) AS types
FROM {schema}.entities e
CROSS JOIN LATERAL jsonb_each(e.attrs) AS a(key, val)
CROSS JOIN LATERAL jsonb_array_elements(a.val) AS i
WHERE {_LIVE} {extra} AND {seen}
GROUP BY a.key ORDER BY a.key""",
            *args,
        )
        return [
            AttributeStats(r["key"], int(r["n"]), list(r["kinds"]), list(r["types"] or []))
            for r in rows
        ]


def _seen(
    schema: str, visible: Visible | None, params: SqlParams | None = None, alias: str = "e"
) -> tuple[str, list[Any]]:
    """The readable-scope condition of a discovery query (``TRUE`` without access control)."""
    params = params if params is not None else SqlParams()
    if visible is None:
        return "TRUE", params.args
    return readable_to_sql(
        visible.scope, schema=schema, tenant=visible.tenant, params=params, alias=alias
    )
