"""EntityMaps in PostgreSQL (table ``cityos.entity_maps``, 0030_entitymaps.sql).

Layer: store/. Bound parameters only. A map is read only while it is live; expired rows are
deleted by ``sweep`` (called on creation, so the table never grows without bound).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson


@dataclass(frozen=True)
class StoredMap:
    id: str
    expires_at: datetime
    query: list[tuple[str, str]]
    entries: list[tuple[str, list[str]]]  # entity id → places, in answer order


class EntityMapRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def insert(self, tenant: str, stored: StoredMap) -> None:
        await self._pool.execute(
            "INSERT INTO cityos.entity_maps (tenant, id, expires_at, query, entity_map) "
            "VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)",
            tenant,
            stored.id,
            stored.expires_at,
            orjson.dumps(stored.query),  # bytes: JSON already (the pool's jsonb codec)
            orjson.dumps(stored.entries),
        )

    async def get(self, tenant: str, map_id: str) -> StoredMap | None:
        row = await self._pool.fetchrow(
            "SELECT id, expires_at, query, entity_map FROM cityos.entity_maps "
            "WHERE tenant = $1 AND id = $2 AND expires_at > now()",
            tenant,
            map_id,
        )
        if row is None:
            return None
        query: Any = row["query"]
        entries: Any = row["entity_map"]
        return StoredMap(
            row["id"],
            row["expires_at"],
            [(k, v) for k, v in query],
            [(i, list(p)) for i, p in entries],
        )

    async def set_expiry(self, tenant: str, map_id: str, expires_at: datetime) -> bool:
        done = await self._pool.execute(
            "UPDATE cityos.entity_maps SET expires_at = $3 "
            "WHERE tenant = $1 AND id = $2 AND expires_at > now()",
            tenant,
            map_id,
            expires_at,
        )
        return bool(done != "UPDATE 0")

    async def prune(self, tenant: str, map_id: str, gone: list[str]) -> None:
        """Remove entities that no longer fit the query from the map."""
        if not gone:
            return
        await self._pool.execute(
            "UPDATE cityos.entity_maps SET entity_map = COALESCE(("
            "  SELECT jsonb_agg(e ORDER BY n) FROM jsonb_array_elements(entity_map)"
            "  WITH ORDINALITY AS t(e, n) WHERE NOT (e->>0 = ANY($3::text[]))), '[]'::jsonb) "
            "WHERE tenant = $1 AND id = $2",
            tenant,
            map_id,
            gone,
        )

    async def delete(self, tenant: str, map_id: str) -> bool:
        done = await self._pool.execute(
            "DELETE FROM cityos.entity_maps WHERE tenant = $1 AND id = $2 AND expires_at > now()",
            tenant,
            map_id,
        )
        return bool(done != "DELETE 0")

    async def sweep(self) -> None:
        await self._pool.execute("DELETE FROM cityos.entity_maps WHERE expires_at <= now()")
