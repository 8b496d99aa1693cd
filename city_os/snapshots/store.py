"""Snapshots on PostgreSQL: the ``cityos.snapshots`` rows (0140_snapshots.sql) and the frozen
copies, one schema each made with the tenant DDL (store/postgres/db.create_schema).

Layer: store/ (of the snapshots room; asyncpg, bound parameters only). A copy's schema name is
generated here (``s_`` and 32 hex digits), never taken from a request. The copy is written by
plain INSERTs: no outbox row and no change event, because nothing changed in the city — the
copy is a read-only view of what the queries found. Deleting a Snapshot drops its schema and
its ledger row in the same transaction as the row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from city_os.ngsild.merge import geometries
from city_os.ngsild.representation import EntityRecord
from city_os.store.postgres.db import create_schema

Doc = dict[str, Any]
_COPY_CHUNK = 500  # entities per INSERT of a copy


@dataclass(frozen=True)
class SnapshotRow:
    doc: Doc
    schema: str  # the frozen copy


def new_schema_name() -> str:
    return "s_" + uuid.uuid4().hex


def _row(r: asyncpg.Record) -> SnapshotRow:
    return SnapshotRow(doc=r["doc"], schema=r["schema_name"])  # jsonb decoded by the pool codec


_INSERT_ENTITIES = """
INSERT INTO {s}.entities (id, types, scopes, attrs, created_at, modified_at, expires_at)
SELECT id, types, scopes, attrs, created_at, modified_at, expires_at
FROM jsonb_to_recordset($1::jsonb) AS x(id text, types text[], scopes text[], attrs jsonb,
                                         created_at timestamptz, modified_at timestamptz,
                                         expires_at timestamptz)
ON CONFLICT (id) DO UPDATE SET attrs = {s}.entities.attrs || EXCLUDED.attrs"""
_INSERT_GEO = """
INSERT INTO {s}.geo (entity_id, attr, dataset_id, geom)
SELECT n.id, n.attr, n.ds, ST_SetSRID(ST_GeomFromGeoJSON(n.geom), 4326)
FROM jsonb_to_recordset($1::jsonb) AS n(id text, attr text, ds text, geom jsonb)
ON CONFLICT (entity_id, attr, dataset_id) DO NOTHING"""
_CLONE = """
INSERT INTO {t}.entities (id, types, scopes, attrs, created_at, modified_at, expires_at)
SELECT id, types, scopes, attrs, created_at, modified_at, expires_at FROM {s}.entities;
INSERT INTO {t}.geo (entity_id, attr, dataset_id, geom)
SELECT entity_id, attr, dataset_id, geom FROM {s}.geo"""


class SnapshotRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def insert(self, tenant: str, row: SnapshotRow) -> bool:
        """Store a new Snapshot and make its (empty) copy; False if the id is taken."""
        async with self._pool.acquire() as conn, conn.transaction():
            done = await conn.fetchval(
                "INSERT INTO cityos.snapshots (tenant, id, schema_name, doc)"
                " VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT DO NOTHING RETURNING id",
                tenant, row.doc["id"], row.schema, row.doc,
            )  # fmt: skip
            if done is None:
                return False
            await create_schema(conn, row.schema)
        return True

    async def get(self, tenant: str, sid: str) -> SnapshotRow | None:
        async with self._pool.acquire() as conn:
            r = await conn.fetchrow(
                "SELECT doc, schema_name FROM cityos.snapshots WHERE tenant = $1 AND id = $2",
                tenant,
                sid,
            )
        return None if r is None else _row(r)

    async def all(self, tenant: str) -> list[SnapshotRow]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT doc, schema_name FROM cityos.snapshots WHERE tenant = $1"
                " ORDER BY created_at, id",
                tenant,
            )
        return [_row(r) for r in rows]

    async def merge(self, tenant: str, sid: str, members: Doc) -> Doc | None:
        """Overwrite ``members`` of the stored doc; the new doc, or None if it is gone."""
        async with self._pool.acquire() as conn:
            doc = await conn.fetchval(
                "UPDATE cityos.snapshots SET doc = doc || $3::jsonb"
                " WHERE tenant = $1 AND id = $2 RETURNING doc",
                tenant, sid, members,
            )  # fmt: skip
        return None if doc is None else dict(doc)

    async def delete(self, tenant: str, sids: list[str]) -> list[str]:
        """Delete Snapshots with their copies; the ids that were there."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "DELETE FROM cityos.snapshots WHERE tenant = $1 AND id = ANY($2::text[])"
                " RETURNING id, schema_name",
                tenant,
                sids,
            )
            for r in rows:
                await conn.execute(f"DROP SCHEMA IF EXISTS {r['schema_name']} CASCADE")
                await conn.execute(
                    "DELETE FROM cityos.migrations WHERE name = $1", "tenant:" + r["schema_name"]
                )
        return [r["id"] for r in rows]

    async def copy(self, schema: str, records: list[EntityRecord], now: str) -> None:
        """Write entities into a copy; an id found again merges its attributes in."""
        for start in range(0, len(records), _COPY_CHUNK):
            chunk = records[start : start + _COPY_CHUNK]
            entities = [
                {
                    "id": r.id,
                    "types": r.types,
                    "scopes": r.scopes,
                    "attrs": r.attrs,
                    "created_at": r.created_at or now,
                    "modified_at": r.modified_at or now,
                    "expires_at": r.expires_at,
                }
                for r in chunk
            ]
            geo = [
                {"id": r.id, "attr": attr, "ds": ds, "geom": geom}
                for r in chunk
                for attr, ds, geom in geometries(r.attrs)
            ]
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(_INSERT_ENTITIES.format(s=schema), orjson.dumps(entities))
                if geo:
                    await conn.execute(_INSERT_GEO.format(s=schema), orjson.dumps(geo))

    async def clone(self, source: str, target: str) -> None:
        """Copy the entities of one frozen copy into another (a clone, §5.16.2)."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_CLONE.format(s=source, t=target))
