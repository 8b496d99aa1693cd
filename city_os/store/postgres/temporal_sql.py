"""SQL text of the temporal history: the conditions on attr_instances a (entities, attributes,
datasets, the temporal query) and on temporal_entities e (the entity selection).

Layer: store/. Column names come from fixed maps (``params.TIME_COLUMNS``); request values
only as bound parameters (``SqlParams``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from city_os.ngsild.query.ast import ScopeExpr
from city_os.ngsild.query.entity_selection import Names, Selection
from city_os.store.postgres.query_sql import (
    SqlParams,
    id_pattern_to_sql,
    ids_to_sql,
    scope_to_sql,
    type_to_sql,
)
from city_os.temporal.params import SCOPE_IRI, TemporalQuery

# instance_id as text: rendering needs its text only (no UUID object per instance).
_INSTANCE_COLUMNS = (
    "entity_id, attr, dataset_id, instance_id::text AS instance_id, observed_at, created_at,"
    " modified_at, deleted_at, num, inst, actor, client"
)
# inst of a row the index does not hold a copy of (inst_small NULL: a large instance), by the
# index's key and the instance id.
_HEAP_INST = (
    "SELECT b.inst FROM {schema}.attr_instances b WHERE b.entity_id = a.entity_id"
    " AND b.attr = a.attr AND b.observed_at {cond} AND b.instance_id = a.instance_id LIMIT 1"
)


def _read_columns(schema: str) -> str:
    """_INSTANCE_COLUMNS from attr_instances_read alone (actor and client NULL), but for the
    inst of large instances."""
    heap = (
        f"CASE WHEN a.observed_at IS NULL THEN ({_HEAP_INST.format(schema=schema, cond='IS NULL')})"
        f" ELSE ({_HEAP_INST.format(schema=schema, cond='= a.observed_at')}) END"
    )
    return (
        "a.entity_id, a.attr, a.dataset_id, a.instance_id::text AS instance_id, a.observed_at,"
        " a.created_at, a.modified_at, a.deleted_at, a.num,"
        f" coalesce(a.inst_small, {heap}) AS inst, NULL::text AS actor, NULL::text AS client"
    )


_ENTITY_COLUMNS = "id, types, scopes, created_at, modified_at, deleted_at"
# SQL of each aggregation method over the instances i (num: the numeric value).
_AGGREGATES = {
    "totalCount": "count(*)::float8",
    "distinctCount": "count(DISTINCT i.inst->'value')::float8",
    "sum": "sum(i.num)",
    "avg": "avg(i.num)",
    "min": "min(i.num)",
    "max": "max(i.num)",
    "stddev": "stddev_samp(i.num)",
    "sumsq": "sum(i.num * i.num)",
}


@dataclass(frozen=True)
class InstanceFilter:
    """Which instances of the selected entities: attributes, datasets, the temporal query;
    ``scope``: a scopeQ, whose instances are those observed while a matching scope was valid
    (§4.18, §5.7.4.4 S4)."""

    attrs: tuple[str, ...] = ()  # expanded IRIs; empty = all
    datasets: tuple[str, ...] | None = None  # '' = the default instance; None = all
    query: TemporalQuery = field(default_factory=TemporalQuery)
    scope: ScopeExpr | None = None


# The validity intervals of an entity's scopes (§4.18: a scope is valid from when it was set
# until it is replaced or removed), from its scope instances; ``{eid}``: the entity's id.
_SCOPE_T = "coalesce(sc.deleted_at, sc.observed_at, sc.modified_at)"
_INTERVALS = (
    "(SELECT CASE WHEN sc.deleted_at IS NULL THEN ARRAY(SELECT jsonb_array_elements_text("
    f"sc.inst->'value')) END AS scopes, {_SCOPE_T} AS since, lead({_SCOPE_T}) OVER"
    f" (ORDER BY {_SCOPE_T}) AS until FROM {{schema}}.attr_instances sc"
    f" WHERE sc.entity_id = {{eid}} AND sc.attr = '{SCOPE_IRI}')"
)


def _no_scope_history(schema: str, eid: str) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM {schema}.attr_instances sc WHERE sc.entity_id = {eid}"
        f" AND sc.attr = '{SCOPE_IRI}')"
    )


def scope_window_sql(scope: ScopeExpr, tq: TemporalQuery, params: SqlParams, schema: str) -> str:
    """scopeQ on temporal_entities e: a scope instance matching it was valid at some time in
    the window; an entity without scope history is matched on its current scopes."""
    window = ["TRUE"]
    if tq.timerel in ("after", "between"):
        window.append(f"(v.until IS NULL OR v.until > {params.add(tq.time_at)})")
    if tq.timerel == "before":
        window.append(f"v.since < {params.add(tq.time_at)}")
    elif tq.timerel == "between":
        window.append(f"v.since < {params.add(tq.end_time_at)}")
    intervals = _INTERVALS.format(schema=schema, eid="e.id")
    matched = scope_to_sql(scope, params=params, alias="v")[0]
    current = scope_to_sql(scope, params=params, alias="e")[0]
    return (
        f"(EXISTS (SELECT 1 FROM {intervals} v WHERE {' AND '.join(window)} AND {matched})"
        f" OR ({_no_scope_history(schema, 'e.id')} AND {current}))"
    )


def _time_expr(tq: TemporalQuery) -> str:
    """The instant an instance is ordered by: its timeproperty (modifiedAt when unset)."""
    return f"coalesce(a.{tq.column}, a.modified_at)"


def _instance_where(ids_param: str, f: InstanceFilter, params: SqlParams, schema: str = "") -> str:
    """Instances a of the entities ``ids_param`` (a text[] placeholder, or a column) that
    pass ``f`` (its scope condition needs the tenant ``schema``)."""
    tq = f.query
    col = f"a.{tq.column}"
    parts = [
        f"a.entity_id = ANY({ids_param}::text[])"
        if ids_param.startswith("$")
        else f"a.entity_id = {ids_param}"
    ]
    if f.attrs:
        parts.append(f"a.attr = ANY({params.add(list(f.attrs))}::text[])")
    if f.datasets is not None:
        parts.append(f"a.dataset_id = ANY({params.add(list(f.datasets))}::text[])")
    if tq.timeproperty == "deletedAt":
        parts.append("a.deleted_at IS NOT NULL")
    if tq.timerel == "before":
        parts.append(f"{col} < {params.add(tq.time_at)}")
    elif tq.timerel == "after":
        parts.append(f"{col} >= {params.add(tq.time_at)}")  # ETSI 021_26: timeAt included
    elif tq.timerel == "between":
        parts.append(f"{col} >= {params.add(tq.time_at)} AND {col} < {params.add(tq.end_time_at)}")
    if f.scope is not None and schema:
        # instances (but the scope's own) observed while a matching scope was valid
        intervals = _INTERVALS.format(schema=schema, eid="a.entity_id")
        matched = scope_to_sql(f.scope, params=params, alias="v")[0]
        t = _time_expr(tq)
        parts.append(
            f"(a.attr = '{SCOPE_IRI}' OR {_no_scope_history(schema, 'a.entity_id')}"
            f" OR EXISTS (SELECT 1 FROM {intervals} v WHERE v.since <= {t}"
            f" AND (v.until IS NULL OR {t} < v.until) AND {matched}))"
        )
    return " AND ".join(parts)


def selection_where(
    sel: Selection,
    names: Names,
    params: SqlParams,
    schema: str,
    tq: TemporalQuery | None = None,
) -> str:
    """The condition on temporal_entities e of ids/idPattern/type, scopeQ (over the scopes
    valid in ``tq``'s window) and attrs (q and geoQ are evaluated on the latest instances by
    the service)."""
    parts: list[str] = []
    alternatives: list[str] = []
    for selector in sel.selectors:
        terms: list[str] = []
        if selector.ids:
            terms.append(ids_to_sql(selector.ids, params=params)[0])
        elif selector.id_pattern is not None:
            terms.append(id_pattern_to_sql(selector.id_pattern, params=params)[0])
        if selector.types is not None:
            terms.append(type_to_sql(selector.types, names.type, params=params)[0])
        alternatives.append("(" + (" AND ".join(terms) or "TRUE") + ")")
    if alternatives:
        parts.append("(" + " OR ".join(alternatives) + ")")
    if sel.scope is not None:
        parts.append(scope_window_sql(sel.scope, tq or TemporalQuery(), params, schema))
    if sel.attrs:
        parts.append(
            f"EXISTS (SELECT 1 FROM {schema}.attr_instances a WHERE a.entity_id = e.id"
            f" AND a.attr = ANY({params.add(list(sel.attrs))}::text[]))"
        )
    return " AND ".join(parts) or "TRUE"


def _stamp(expr: str) -> str:
    """An instant as render.iso writes it: UTC, ``Z``, microseconds only when not 0."""
    return (
        f"to_char({expr} AT TIME ZONE 'UTC', CASE WHEN extract(microseconds FROM {expr})"
        """::bigint % 1000000 = 0 THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"'"""
        """ ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END)"""
    )


def packed_sql(inner: str, methods: tuple[str, ...], wild: str | None) -> str:
    """An aggregation statement's rows (one per period) packed into one row per entity,
    attribute and dataset: per method the JSON text of its [value, start, end] list, in
    period order — 100 entities × 24 periods come back as 100 rows, formatted by PostgreSQL.
    ``wild``: a boolean column of ``inner`` to carry over (OR-ed)."""
    start, end = _stamp("x.start"), _stamp('x."end"')
    cols = ", ".join(
        f'json_agg(json_build_array(x."{m}", {start}, {end}) ORDER BY x.start)::text AS "{m}"'
        for m in methods
    )
    extra = f", bool_or(x.{wild}) AS {wild}" if wild else ""
    return (
        f"SELECT x.entity_id, x.attr, x.dataset_id, {cols}{extra} FROM ({inner}) x"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    )
