"""Entity queries and discovery on PostgreSQL: a ``Selection`` → one WHERE clause, pages, counts.

Layer: store/. The conditions come from the pure SQL builder (``query_sql``); request values only
ever travel as bound parameters. Pages are ordered by entity id so that limit/offset paging sees
every entity exactly once. Reads apply the same "live" filter as ``EntityRepository`` (transient
entities past ``expires_at`` are invisible). Data errors PostgreSQL raises while evaluating a
client's expression (e.g. SQLSTATE 2201B, invalid regular expression) become BadRequestData.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import asyncpg

from city_os.auth.policy import ReadableScope
from city_os.errors import BadRequestData
from city_os.ngsild.query.ast import GeoQuery, TypeName
from city_os.ngsild.query.entity_selection import Names, Selection
from city_os.store.postgres.auth_scope_sql import readable_to_sql
from city_os.store.postgres.entities import _COLUMNS, _LIVE, Stored
from city_os.store.postgres.entity_sql import stored_rows, text_columns
from city_os.store.postgres.indexes import ValueIndexRepository
from city_os.store.postgres.query_geo_sql import geo_conditions, geo_to_sql, selective_geo
from city_os.store.postgres.query_order_sql import OrderKey, order_sql
from city_os.store.postgres.query_page_sql import driven_ids
from city_os.store.postgres.query_sql import (
    SqlParams,
    id_pattern_to_sql,
    ids_to_sql,
    q_to_sql,
    scope_to_sql,
    type_to_sql,
)
from city_os.store.postgres.query_values import driver as values_driver

_E_COLUMNS = ", ".join(f"e.{c.strip()}" for c in _COLUMNS.split(","))


@dataclass(frozen=True)
class Visible:
    """What the caller may see of a tenant (access control): its readable scope, ANDed into
    every query's WHERE clause so that pages and counts only ever see those entities."""

    scope: ReadableScope
    tenant: str


def single_type(sel: Selection) -> str | None:
    """The one type name of a selection like ``type=Shelter`` (no ids, no pattern), else None."""
    if len(sel.selectors) != 1:
        return None
    selector = sel.selectors[0]
    if selector.ids or selector.id_pattern is not None:
        return None
    return selector.types.name if isinstance(selector.types, TypeName) else None


def _driven(sel: Selection, names: Names) -> bool:
    """Whether a page (not of one type) is best picked from the entities with the string that
    ``q`` requires (``QueryRepository._driven_page``): there is one, and no ids are listed
    (``id=…``: the primary key finds those)."""
    if values_driver(sel.q, names.attr, "txt") is None:
        return False
    return not any(selector.ids for selector in sel.selectors)


def where_clause(
    schema: str,
    sel: Selection,
    names: Names,
    *,
    skip_types: bool = False,
    numbers: frozenset[str] = frozenset(),
    visible: Visible | None = None,
    entity_type: str | None = None,
    bind: bool = False,
) -> tuple[str, list[Any]]:
    """The WHERE condition of a selection; ``skip_types`` leaves the type selection out.
    ``numbers``: attributes with value indexes (``q_to_sql``); ``visible``: only those;
    ``entity_type``: the one type (IRI) of every entity the condition is applied to, for the
    attr_values probes (``q_to_sql``), which ``bind`` makes bind their values. The bound
    arguments do not depend on ``entity_type``."""
    params = SqlParams()
    parts: list[str] = []
    if visible is not None:
        # Access control; a query of one type spares the type condition of a grant of it.
        the_type = single_type(sel)
        of_type = names.type(the_type) if the_type is not None else None
        scope, tenant = visible.scope, visible.tenant
        parts.append(
            readable_to_sql(scope, schema=schema, tenant=tenant, params=params, of_type=of_type)[0]
        )
    alternatives: list[str] = []
    for selector in sel.selectors:
        terms: list[str] = []
        if selector.ids:
            terms.append(ids_to_sql(selector.ids, params=params)[0])
        elif selector.id_pattern is not None:
            terms.append(id_pattern_to_sql(selector.id_pattern, params=params)[0])
        if selector.types is not None and not skip_types:
            terms.append(type_to_sql(selector.types, names.type, params=params)[0])
        alternatives.append("(" + (" AND ".join(terms) or "TRUE") + ")")
    if alternatives:
        parts.append("(" + " OR ".join(alternatives) + ")")
    if sel.attrs:
        parts.append(f"e.attrs ?| {params.add(list(sel.attrs))}::text[]")
    if sel.q is not None:
        table = f"{schema}.entities"
        parts.append(
            q_to_sql(
                sel.q,
                names.attr,
                params=params,
                entities_table=table,
                numbers=numbers,
                values_table=f"{schema}.attr_values",
                entity_type=entity_type,
                bind_values=bind,
            )[0]
        )
    if sel.geo is not None:
        parts.append(geo_to_sql(sel.geo, names.attr, params=params, geo_table=f"{schema}.geo")[0])
    if sel.scope is not None:
        parts.append(scope_to_sql(sel.scope, params=params)[0])
    return " AND ".join(parts) or "TRUE", params.args


class QueryRepository:
    """Read-only queries over one tenant schema: pages of entities, ids, discovery aggregates."""

    def __init__(self, pool: asyncpg.Pool, indexes: ValueIndexRepository | None = None) -> None:
        self._pool = pool
        self._indexes = indexes

    async def _numbers(self, schema: str, sel: Selection) -> frozenset[str]:
        if sel.q is None or self._indexes is None:
            return frozenset()
        return await self._indexes.numbers(schema)

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            async with self._pool.acquire() as conn:
                return list(await conn.fetch(sql, *args))
        except asyncpg.DataError as exc:
            raise BadRequestData(f"the query cannot be evaluated: {exc}") from None

    async def page(
        self,
        schema: str,
        sel: Selection,
        names: Names,
        *,
        limit: int,
        offset: int,
        count: bool,
        order: tuple[OrderKey, ...] = (),
        collation: str | None = None,
        visible: Visible | None = None,
    ) -> tuple[list[Stored], int | None]:
        """``collation``: a name from pg_collation (see ``collation``), for string values."""
        numbers = await self._numbers(schema, sel)
        where, args = where_clause(schema, sel, names, numbers=numbers, visible=visible)
        base = f"FROM {schema}.entities e WHERE {_LIVE} AND ({where})"
        rows: list[asyncpg.Record] = []
        the_type = single_type(sel)
        if limit > 0 and sel.geo is not None and selective_geo(sel.geo) and not order:
            rows = await self._geo_page(
                schema, sel, sel.geo, names, numbers, limit, offset, visible
            )
        elif limit > 0 and the_type is not None and not order:
            rows = await self._type_page(
                schema, sel, names, numbers, the_type, limit, offset, visible
            )
        elif limit > 0 and not order and _driven(sel, names):
            rows = await self._driven_page(schema, sel, names, numbers, limit, offset, visible)
        elif limit > 0:
            params = SqlParams(len(args) + 1)
            keys = [k for key in order for k in order_sql(schema, key, params, collation)]
            keys.append("e.id")  # ties (and no orderBy): a stable order for paging
            page_args = [*args, *params.args, limit, offset]
            n = len(page_args)
            rows = await self._fetch(
                f"SELECT {text_columns('e')} {base} ORDER BY {', '.join(keys)}"
                f" LIMIT ${n - 1} OFFSET ${n}",
                *page_args,
            )
        total = None
        if count and the_type is not None:
            total = await self._type_count(schema, sel, names, numbers, the_type, visible)
        elif count:
            found = await self._fetch(f"SELECT count(*) AS n {base}", *args)
            total = int(found[0]["n"])
        return await stored_rows(rows), total

    async def _type_page(
        self,
        schema: str,
        sel: Selection,
        names: Names,
        numbers: frozenset[str],
        the_type: str,
        limit: int,
        offset: int,
        visible: Visible | None = None,
    ) -> list[asyncpg.Record]:
        """A page of one type in id order. Entities whose only type it is are read along the
        ``(types, id) INCLUDE (expires_at)`` btree, already in order; the few with several types
        come from a partial GIN index and are merged in. Without this, ``ORDER BY id LIMIT``
        walks the primary key through every entity of the other types (ids of one type cluster
        together) whenever the rest of the filter is not selective.

        The single-typed branch picks the page's ids first and reads the entity rows after:
        when the rest of the selection is made of attr_values probes (``query_values``), the
        walk is index-only and merges with the values' index streams, so only the page's rows
        are read from the heap, not every entity walked past. Its probes keep to the values of
        the type (``etype``, tenant_values.sql). With a string equality ANDed into ``q``, the
        candidates come from attr_values instead (``query_page_sql``).
        """
        driver = values_driver(sel.q, names.attr, "txt")
        rest, typed, args = self._rest(
            schema, sel, names, numbers, the_type, visible, bind=driver is not None
        )
        params = SqlParams(len(args) + 1)
        types = params.add([names.type(the_type)])
        first = params.add(limit + offset)  # each branch: enough rows for the page
        page, skip = params.add(limit), params.add(offset)
        single = f"FROM {schema}.entities e WHERE {_LIVE} AND ({typed})"
        ids = f"SELECT e.id {single} AND e.types = {types}::text[] ORDER BY e.id LIMIT {first}"
        if driver is not None:
            check = f"SELECT 1 {single} AND e.id = d.id AND e.types = {types}::text[]"
            ids = driven_ids(schema, sel.q, names, the_type, check, first, params)
        sql = (
            f"SELECT {text_columns('u')} FROM ("
            f"(SELECT {_E_COLUMNS} FROM ({ids}) p JOIN {schema}.entities e ON e.id = p.id)"
            " UNION ALL "
            # OFFSET 0 fences the few multi-typed rows off from a walk of the primary key; the
            # rest of the selection filters them outside the fence (a probe per row, not a
            # hash of every entity the rest matches).
            f"(SELECT * FROM (SELECT {_COLUMNS} FROM {schema}.entities e WHERE {_LIVE}"
            f" AND cardinality(e.types) > 1 AND e.types && {types}::text[] OFFSET 0) e"
            f" WHERE ({rest}) ORDER BY e.id LIMIT {first})"
            f") u ORDER BY u.id LIMIT {page} OFFSET {skip}"
        )
        return await self._fetch(sql, *args, *params.args)

    async def _driven_page(
        self,
        schema: str,
        sel: Selection,
        names: Names,
        numbers: frozenset[str],
        limit: int,
        offset: int,
        visible: Visible | None,
    ) -> list[asyncpg.Record]:
        """A page in id order, not of one type, whose ``q`` ANDs a string equality: the
        entities with that string are the candidates, in id order from attr_values, each
        checked against the whole selection (the readable scope among it) until the page is
        full (``query_page_sql``). Only the page's rows are read again from the heap."""
        where, args = where_clause(schema, sel, names, numbers=numbers, visible=visible, bind=True)
        params = SqlParams(len(args) + 1)
        first = params.add(limit + offset)
        page, skip = params.add(limit), params.add(offset)
        check = f"SELECT 1 FROM {schema}.entities e WHERE e.id = d.id AND {_LIVE} AND ({where})"
        ids = driven_ids(schema, sel.q, names, None, check, first, params)
        sql = (
            f"SELECT {text_columns('e')} FROM ({ids}) p JOIN {schema}.entities e ON e.id = p.id"
            f" ORDER BY e.id LIMIT {page} OFFSET {skip}"
        )
        return await self._fetch(sql, *args, *params.args)

    @staticmethod
    def _rest(
        schema: str,
        sel: Selection,
        names: Names,
        numbers: frozenset[str],
        the_type: str,
        visible: Visible | None,
        *,
        bind: bool = False,
    ) -> tuple[str, str, list[Any]]:
        """The selection but its type, for entities of several types and for those of
        ``the_type`` only (attr_values probes kept to its rows), and their arguments (the
        same for both; ``bind``: the probes' values among them)."""
        one = names.type(the_type)
        kw: dict[str, Any] = {"numbers": numbers, "visible": visible, "bind": bind}
        rest, args = where_clause(schema, sel, names, skip_types=True, **kw)
        typed, typed_args = where_clause(schema, sel, names, skip_types=True, entity_type=one, **kw)
        assert typed_args == args
        return rest, typed, args

    async def _geo_page(
        self,
        schema: str,
        sel: Selection,
        geo: GeoQuery,
        names: Names,
        numbers: frozenset[str],
        limit: int,
        offset: int,
        visible: Visible | None = None,
    ) -> list[asyncpg.Record]:
        """A page of a geoquery in id order, starting from the geometries that match.

        The matching ``geo`` rows come from GiST indexes (points and other shapes apart: see
        ``geo_conditions``) and only their entity ids are sorted; entity rows are then read in
        that order, each checked against the rest of the selection, until the page is full.
        The planner's estimate for a geography distance is a guess (often "1 row"), so left
        to itself it reads every matching entity before sorting: thousands of heap fetches
        for a page of twenty.
        """
        rest, args = where_clause(
            schema, replace(sel, geo=None), names, numbers=numbers, visible=visible
        )
        params = SqlParams(len(args) + 1)
        branches = geo_conditions(geo, names.attr, params=params)
        matches = " UNION ALL ".join(
            f"SELECT g.entity_id FROM {schema}.geo g WHERE {branch}" for branch in branches
        )
        page, skip = params.add(limit), params.add(offset)
        # One sort of the matching ids, bytewise ("C": no locale rules per comparison); the
        # page follows that order, so paging through it sees every match once.
        sql = (
            f"SELECT {text_columns('e')}"
            f' FROM (SELECT DISTINCT ON (k) m.entity_id, m.entity_id COLLATE "C" AS k'
            f" FROM ({matches}) m ORDER BY k) c"
            f" CROSS JOIN LATERAL (SELECT {_COLUMNS} FROM {schema}.entities e"
            f" WHERE e.id = c.entity_id AND {_LIVE} AND ({rest})) e"
            f" ORDER BY c.k LIMIT {page} OFFSET {skip}"
        )
        return await self._fetch(sql, *args, *params.args)

    async def _type_count(
        self,
        schema: str,
        sel: Selection,
        names: Names,
        numbers: frozenset[str],
        the_type: str,
        visible: Visible | None = None,
    ) -> int:
        """``count=true`` for one type, split like ``_type_page`` so both parts use an index."""
        rest, typed, args = self._rest(schema, sel, names, numbers, the_type, visible)
        params = SqlParams(len(args) + 1)
        types = params.add([names.type(the_type)])
        where = f"FROM {schema}.entities e WHERE {_LIVE} AND ({rest})"
        single = f"FROM {schema}.entities e WHERE {_LIVE} AND ({typed})"
        rows = await self._fetch(
            f"SELECT (SELECT count(*) {single} AND e.types = {types}::text[])"
            f" + (SELECT count(*) {where} AND cardinality(e.types) > 1"
            f" AND e.types && {types}::text[]) AS n",
            *args,
            *params.args,
        )
        return int(rows[0]["n"])

    async def collation(self, tags: list[str]) -> str | None:
        """The first of ``tags`` PostgreSQL can collate with (ICU ``<tag>-x-icu`` first)."""
        candidates = [c for tag in tags for c in (f"{tag}-x-icu", tag)]
        rows = await self._fetch(
            "SELECT collname FROM pg_collation WHERE collname = ANY($1::text[])"
            " AND collencoding IN (-1, pg_char_to_encoding(current_setting('server_encoding')))",
            candidates,
        )
        found = {r["collname"] for r in rows}
        return next((c for c in candidates if c in found), None)

    async def ids(
        self, schema: str, sel: Selection, names: Names, visible: Visible | None = None
    ) -> list[str]:
        numbers = await self._numbers(schema, sel)
        where, args = where_clause(schema, sel, names, numbers=numbers, visible=visible)
        rows = await self._fetch(
            f"SELECT e.id FROM {schema}.entities e WHERE {_LIVE} AND ({where}) ORDER BY e.id",
            *args,
        )
        return [r["id"] for r in rows]
