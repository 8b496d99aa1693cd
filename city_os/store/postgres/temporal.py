"""Temporal history on PostgreSQL: attribute instances of one tenant schema, read by entity,
attribute and time range, aggregated in SQL (``date_bin``), and written by the temporal API.

Layer: store/. Captured history is written by the triggers of tenant_temporal.sql; this module
reads it and writes what /temporal provisions. Column names come from fixed maps
(``params.TIME_COLUMNS``), request values only as bound parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import asyncpg
import orjson

from city_os.auth.policy import ReadableScope
from city_os.ngsild.query.entity_selection import Names, Selection
from city_os.store.postgres import temporal_rollups as rollups
from city_os.store.postgres.auth_scope_sql import readable_to_sql
from city_os.store.postgres.entity_sql import recorded_actor
from city_os.store.postgres.query_sql import (
    SqlParams,
)
from city_os.store.postgres.temporal_sql import _AGGREGATES as _AGGREGATES
from city_os.store.postgres.temporal_sql import _ENTITY_COLUMNS as _ENTITY_COLUMNS
from city_os.store.postgres.temporal_sql import _INSTANCE_COLUMNS as _INSTANCE_COLUMNS
from city_os.store.postgres.temporal_sql import InstanceFilter as InstanceFilter
from city_os.store.postgres.temporal_sql import _instance_where as _instance_where
from city_os.store.postgres.temporal_sql import _read_columns as _read_columns
from city_os.store.postgres.temporal_sql import _time_expr as _time_expr
from city_os.store.postgres.temporal_sql import packed_sql
from city_os.store.postgres.temporal_sql import selection_where as selection_where
from city_os.temporal.params import SCOPE_IRI


class TemporalRepository:
    """Reads and writes the temporal history of tenant schemas through a pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self._pool.acquire() as conn:
            return list(await conn.fetch(sql, *args))

    async def entity(self, schema: str, entity_id: str) -> asyncpg.Record | None:
        rows = await self._fetch(
            f"SELECT {_ENTITY_COLUMNS} FROM {schema}.temporal_entities WHERE id = $1", entity_id
        )
        return rows[0] if rows else None

    async def select(
        self,
        schema: str,
        sel: Selection,
        names: Names,
        *,
        limit: int | None,
        offset: int,
        count: bool,
        within: InstanceFilter | None = None,
        descending: bool = False,
        visible: ReadableScope | None = None,
        tenant: str = "",
        aggregated: bool = False,
    ) -> tuple[list[asyncpg.Record], int | None]:
        """Temporal entities in id order (``limit`` None: all of them) and their count;
        ``within``: only those with an instance passing that filter; ``visible``: only those
        the caller may read (auth_scope_sql, the entity query's condition)."""
        params = SqlParams()
        tq = within.query if within is not None else None
        where = selection_where(sel, names, params, schema, tq)
        if visible is not None:
            where += (
                " AND "
                + readable_to_sql(visible, schema=schema, tenant=tenant, params=params, alias="e")[
                    0
                ]
            )
        if (
            within is not None
            and aggregated
            and within.scope is None
            and rollups.usable(within.query)
        ):
            # an aggregation read from the rollups: entities with a value there (few pages)
            where += " AND " + rollups.rollup_exists_sql(
                schema, "e.id", within.attrs, within.datasets, within.query, params
            )
        elif within is not None:
            inner = _instance_where("e.id", within, params, schema)
            where += f" AND EXISTS (SELECT 1 FROM {schema}.attr_instances a WHERE {inner})"
        order = "id DESC" if descending else "id"
        sql = f"SELECT {_ENTITY_COLUMNS} FROM {schema}.temporal_entities e WHERE {where}"
        sql += f" ORDER BY {order}"
        args = list(params.args)
        if limit is not None:
            sql += f" LIMIT {params.add(limit)} OFFSET {params.add(offset)}"
        rows = await self._fetch(sql, *params.args)
        total = None
        if count:
            total = (
                await self._fetch(
                    f"SELECT count(*) FROM {schema}.temporal_entities e WHERE {where}", *args
                )
            )[0][0]
        return rows, total

    async def instances(
        self, schema: str, ids: list[str], f: InstanceFilter, cap: int, *, audit: bool = True
    ) -> list[asyncpg.Record]:
        """Instances of ``ids`` in time order (newest first with lastN), at most ``cap`` + 1
        per entity (one more than ``cap`` tells the page is cut). Column t is the instant.
        ``audit``: with actor and client (options=sysAttrs); without them the read is an
        index-only scan (attr_instances_read), actor and client NULL."""
        params = SqlParams(2)
        where = _instance_where("$1", f, params, schema)
        tq = f.query
        t = _time_expr(tq)
        columns = _INSTANCE_COLUMNS if audit else _read_columns(schema)
        inner = f"SELECT {columns}, {t} AS t FROM {schema}.attr_instances a WHERE {where}"
        direction = "DESC" if tq.last_n else "ASC"
        order = f"t {direction}, attr, dataset_id"
        if tq.last_n:
            inner = (
                f"SELECT * FROM (SELECT x.*, row_number() OVER (PARTITION BY entity_id, attr"
                f" ORDER BY t DESC) AS n FROM ({inner}) x) y WHERE n <= {params.add(tq.last_n)}"
            )
        elif len(ids) == 1:  # one entity: a plain top-N, no window
            sql = f"{inner} ORDER BY {order} LIMIT {params.add(cap + 1)}"
            return await self._fetch(sql, ids, *params.args)
        # ORDER BY the window's own sort key: the rows come out of it in that order already.
        sql = (
            f"SELECT * FROM (SELECT z.*, row_number() OVER (PARTITION BY entity_id"
            f" ORDER BY {order}) AS k FROM ({inner}) z) w"
            f" WHERE k <= {params.add(cap + 1)} ORDER BY entity_id, {order}"
        )
        return await self._fetch(sql, ids, *params.args)

    async def aggregate(
        self,
        schema: str,
        ids: list[str],
        f: InstanceFilter,
        *,
        exact: bool = False,
        packed: bool = False,
    ) -> list[asyncpg.Record]:
        """One row per entity, attribute, dataset and period: start, end and one column per
        aggregation method. Periods start at timeAt, else at the attribute's first instance
        (§4.5.19); without aggrPeriodDuration one period spans the whole range. From the
        hourly rollups when they give the same answer (temporal_rollups.usable), unless
        ``exact``. ``packed``: one row per entity, attribute and dataset, each method's
        periods as JSON text (``packed_sql``)."""
        tq = f.query
        if not exact and f.scope is None and rollups.usable(tq):
            params = SqlParams(2)
            sql = rollups.rollup_sql(schema, "$1", f.attrs, f.datasets, tq, params)
            if packed:
                sql = packed_sql(sql, tq.aggr_methods, rollups.WILD)
            rows = await self._fetch(sql, ids, *params.args)
            if not any(r[rollups.WILD] for r in rows):
                return rows
        params = SqlParams(2)
        where = _instance_where("$1", f, params, schema)
        # The timeproperty itself (instances without it are not aggregated); deletion records
        # only with deletedAt. With observedAt the scan is index-only (attr_instances_read).
        t = f"a.{tq.column}"
        where += f" AND {t} IS NOT NULL"
        if not f.attrs:  # the scope's history is not a value to aggregate
            where += f" AND a.attr <> '{SCOPE_IRI}'"
        if tq.timeproperty != "deletedAt":
            where += " AND a.deleted_at IS NULL"
        methods = ", ".join(f'{_AGGREGATES[m]} AS "{m}"' for m in tq.aggr_methods)
        value = ", a.inst" if "distinctCount" in tq.aggr_methods else ""
        origin = f"min({t}) OVER (PARTITION BY a.entity_id, a.attr)"
        if tq.time_at is not None:
            origin = params.add(tq.time_at) + "::timestamptz"
        if tq.aggr_calendar is not None:  # months or years: calendar arithmetic
            period = params.add(tq.aggr_calendar) + "::text"
            start = f"{schema}.temporal_bin({period}::interval, i.t, i.origin)"
            end = f"{schema}.temporal_bin_end({period}::interval, {start})"
        elif tq.aggr_period is not None:
            period = params.add(tq.aggr_period)
            start = f"date_bin({period}::interval, i.t, i.origin)"
            end = f"{start} + {period}::interval"
        else:
            start = "min(i.origin)"
            end = (
                f"{params.add(tq.end_time_at)}::timestamptz"
                if tq.end_time_at is not None
                else "max(i.t)"
            )
        periodic = tq.aggr_period is not None or tq.aggr_calendar is not None
        group = "1, 2, 3, 4" if periodic else "1, 2, 3"
        sql = f"""
SELECT i.entity_id, i.attr, i.dataset_id, {start} AS start, {end} AS "end", {methods}
FROM (SELECT a.entity_id, a.attr, a.dataset_id, a.num{value}, {t} AS t, {origin} AS origin
      FROM {schema}.attr_instances a WHERE {where}) i
GROUP BY {group} ORDER BY 1, 2, 3, 4"""
        if packed:
            sql = packed_sql(sql, tq.aggr_methods, None)
        return await self._fetch(sql, ids, *params.args)

    async def attributes(self, schema: str, entity_id: str, f: InstanceFilter) -> list[str]:
        """The attributes of one entity that have instances passing ``f``."""
        params = SqlParams(2)
        where = _instance_where("$1", f, params, schema)
        rows = await self._fetch(
            f"SELECT DISTINCT a.attr FROM {schema}.attr_instances a WHERE {where}",
            [entity_id],
            *params.args,
        )
        return [r["attr"] for r in rows]

    async def latest(self, schema: str, ids: list[str]) -> list[asyncpg.Record]:
        """The newest instance of each attribute and dataset of ``ids`` (q, geoQ)."""
        return await self._fetch(
            f"SELECT DISTINCT ON (entity_id, attr, dataset_id) {_INSTANCE_COLUMNS}"
            f" FROM {schema}.attr_instances a WHERE entity_id = ANY($1::text[])"
            " ORDER BY entity_id, attr, dataset_id, coalesce(observed_at, modified_at) DESC",
            ids,
        )

    # ---------------------------------------------------------------- provision

    async def provision(
        self,
        schema: str,
        entity: dict[str, Any],
        rows: list[dict[str, Any]],
        *,
        replace_attrs: tuple[str, ...] = (),
        scope_given: bool = False,
        actor: Mapping[str, str] | None = None,
    ) -> bool:
        """Create or update a temporal entity and add instances, in one transaction; returns
        whether the entity is new. ``entity``: id, types, scopes, now (ISO). ``scope_given``:
        ``rows`` hold the scope's own instances, which take the place of the one the capture
        trigger recorded (at ``now``) when the current state was written. ``actor``: who
        provides them (``Principal.actor``), recorded with each instance."""
        async with self._pool.acquire() as conn, conn.transaction():
            created = await conn.fetchval(
                f"""INSERT INTO {schema}.temporal_entities AS t
                    (id, types, scopes, created_at, modified_at)
                VALUES ($1, $2, $3, $4::text::timestamptz, $4::text::timestamptz)
                ON CONFLICT (id) DO UPDATE SET
                    types = (SELECT array_agg(DISTINCT x) FROM unnest(t.types || $2) x),
                    scopes = coalesce($3, t.scopes), modified_at = EXCLUDED.modified_at,
                    deleted_at = NULL
                RETURNING xmax = 0""",
                entity["id"],
                entity["types"],
                entity["scopes"],
                entity["now"],
            )
            if replace_attrs:
                await conn.execute(
                    f"DELETE FROM {schema}.attr_instances WHERE entity_id = $1"
                    " AND attr = ANY($2::text[])",
                    entity["id"],
                    list(replace_attrs),
                )
            elif not created:
                await self._replace_same_instant(conn, schema, rows)
            if scope_given:
                await conn.execute(
                    f"DELETE FROM {schema}.attr_instances WHERE entity_id = $1 AND attr = $2"
                    " AND modified_at = $3::text::timestamptz AND deleted_at IS NULL",
                    entity["id"],
                    SCOPE_IRI,
                    entity["now"],
                )
            await self._insert(conn, schema, rows, actor)
        return bool(created)

    async def _replace_same_instant(
        self, conn: asyncpg.Connection, schema: str, rows: list[dict[str, Any]]
    ) -> None:
        """An update of a temporal entity (§5.6.11) gives the instance of an attribute (and
        dataset) at an observedAt: one stored at that same instant is replaced, not kept
        beside it (ETSI 008_01_01)."""
        timed = [r for r in rows if r["observed_at"] is not None and r["deleted_at"] is None]
        if not timed:
            return
        await conn.execute(
            f"""DELETE FROM {schema}.attr_instances a
            USING jsonb_to_recordset($1::jsonb) AS r(entity_id text, attr text, dataset_id text,
                                                      observed_at timestamptz)
            WHERE a.entity_id = r.entity_id AND a.attr = r.attr
              AND a.dataset_id = r.dataset_id AND a.observed_at = r.observed_at
              AND a.deleted_at IS NULL""",
            orjson.dumps(timed),
        )

    async def _insert(
        self,
        conn: asyncpg.Connection,
        schema: str,
        rows: list[dict[str, Any]],
        actor: Mapping[str, str] | None,
    ) -> None:
        if not rows:
            return
        await conn.execute(
            f"""INSERT INTO {schema}.attr_instances (entity_id, attr, dataset_id, observed_at,
                created_at, modified_at, deleted_at, num, inst, actor, client)
            SELECT r.entity_id, r.attr, r.dataset_id, r.observed_at, r.created_at,
                   r.modified_at, r.deleted_at, CASE WHEN jsonb_typeof(r.inst->'value') = 'number'
                   THEN (r.inst->>'value')::float8 END, r.inst, nullif($2::text, ''),
                   nullif($3::text, '')
            FROM jsonb_to_recordset($1::jsonb) AS r(entity_id text, attr text, dataset_id text,
                observed_at timestamptz, created_at timestamptz, modified_at timestamptz,
                deleted_at timestamptz, inst jsonb)""",
            orjson.dumps(rows),
            *recorded_actor(actor),
        )

    async def delete_entity(self, schema: str, entity_id: str) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f"DELETE FROM {schema}.attr_instances WHERE entity_id = $1", entity_id
            )
            done = await conn.execute(
                f"DELETE FROM {schema}.temporal_entities WHERE id = $1", entity_id
            )
        return bool(done != "DELETE 0")

    async def delete_attr(
        self, schema: str, entity_id: str, attr: str, dataset: str | None, every: bool
    ) -> int:
        """Delete the instances of one attribute: of one dataset (``dataset``, '' = default)
        or, with ``every``, of all its datasets; returns how many."""
        sql = f"DELETE FROM {schema}.attr_instances WHERE entity_id = $1 AND attr = $2"
        args: list[Any] = [entity_id, attr]
        if not every:
            sql += " AND dataset_id = $3"
            args.append(dataset or "")
        async with self._pool.acquire() as conn:
            done = await conn.execute(sql, *args)
        return int(done.split()[-1])

    async def modify_instance(
        self,
        schema: str,
        entity_id: str,
        attr: str,
        instance_id: str,
        row: dict[str, Any],
        actor: Mapping[str, str] | None = None,
    ) -> bool:
        """Replace one instance; ``actor`` (``Principal.actor``) becomes who it was made by."""
        async with self._pool.acquire() as conn:
            done = await conn.execute(
                f"""UPDATE {schema}.attr_instances SET inst = $4::jsonb,
                    observed_at = $5::text::timestamptz, modified_at = $6::text::timestamptz,
                    dataset_id = $7, actor = nullif($8::text, ''), client = nullif($9::text, ''),
                    num = CASE WHEN jsonb_typeof($4::jsonb->'value') = 'number'
                          THEN ($4::jsonb->>'value')::float8 END
                WHERE entity_id = $1 AND attr = $2 AND instance_id = $3::uuid""",
                entity_id,
                attr,
                instance_id,
                orjson.dumps(row["inst"]),
                row["observed_at"],
                row["modified_at"],
                row["dataset_id"],
                *recorded_actor(actor),
            )
        return bool(done != "UPDATE 0")

    async def delete_instance(
        self, schema: str, entity_id: str, attr: str, instance_id: str
    ) -> bool:
        async with self._pool.acquire() as conn:
            done = await conn.execute(
                f"DELETE FROM {schema}.attr_instances WHERE entity_id = $1 AND attr = $2"
                " AND instance_id = $3::uuid",
                entity_id,
                attr,
                instance_id,
            )
        return bool(done != "DELETE 0")

    # ---------------------------------------------------------------- retention

    async def maintain(self, schema: str, retention: timedelta | None, ahead: int = 2) -> int:
        """Create the partitions of the coming months; drop those past ``retention`` (whole
        partitions, never row by row). Returns how many were dropped."""
        async with self._pool.acquire() as conn:
            await conn.execute(f"SELECT {schema}.temporal_ensure_partitions($1)", ahead)
            if retention is None:
                return 0
            dropped = await conn.fetchval(
                f"SELECT {schema}.temporal_drop_partitions(now() - $1::interval)", retention
            )
        return int(dropped or 0)

    async def settings(self) -> dict[str, tuple[bool, int | None]]:
        """(capture, retention in days or None: kept forever) per tenant that has a setting."""
        rows = await self._fetch(
            "SELECT tenant, capture, retention_days FROM cityos.temporal_settings"
        )
        return {r["tenant"]: (r["capture"], r["retention_days"]) for r in rows}

    async def configure(
        self, tenant: str, schema: str, *, capture: bool, retention_days: int | None
    ) -> None:
        """Store a tenant's temporal settings; capture off disables the capture triggers (no
        cost per write at all), on enables them again."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO cityos.temporal_settings (tenant, capture, retention_days)
                VALUES ($1, $2, $3) ON CONFLICT (tenant) DO UPDATE SET capture = $2,
                retention_days = $3, modified_at = now()""",
                tenant,
                capture,
                retention_days,
            )
            await self._capture(conn, schema, capture)

    async def apply_capture(self, schema: str, capture: bool) -> None:
        async with self._pool.acquire() as conn:
            await self._capture(conn, schema, capture)

    async def _capture(self, conn: asyncpg.Connection, schema: str, capture: bool) -> None:
        action = "ENABLE" if capture else "DISABLE"
        for event in ("insert", "update", "delete"):
            await conn.execute(
                f"ALTER TABLE {schema}.entities {action} TRIGGER entities_temporal_{event}"
            )
