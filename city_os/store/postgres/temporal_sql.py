"""SQL text of the temporal history: the conditions on attr_instances a (entities, attributes,
datasets, the temporal query) and on temporal_entities e (the entity selection).

Layer: store/. Column names come from fixed maps (``params.TIME_COLUMNS``); request values
only as bound parameters (``SqlParams``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from city_os.ngsild.query.entity_selection import Names, Selection
from city_os.store.postgres.query_sql import (
    SqlParams,
    id_pattern_to_sql,
    ids_to_sql,
    scope_to_sql,
    type_to_sql,
)
from city_os.temporal.params import TemporalQuery

_INSTANCE_COLUMNS = (
    "entity_id, attr, dataset_id, instance_id, observed_at, created_at, modified_at,"
    " deleted_at, num, inst"
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
    """Which instances of the selected entities: attributes, datasets, the temporal query."""

    attrs: tuple[str, ...] = ()  # expanded IRIs; empty = all
    datasets: tuple[str, ...] | None = None  # '' = the default instance; None = all
    query: TemporalQuery = field(default_factory=TemporalQuery)


def _time_expr(tq: TemporalQuery) -> str:
    """The instant an instance is ordered by: its timeproperty (modifiedAt when unset)."""
    return f"coalesce(a.{tq.column}, a.modified_at)"


def _instance_where(ids_param: str, f: InstanceFilter, params: SqlParams) -> str:
    """Instances a of the entities ``ids_param`` (a text[] placeholder, or a column) that
    pass ``f``."""
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
    return " AND ".join(parts)


def selection_where(sel: Selection, names: Names, params: SqlParams, schema: str) -> str:
    """The condition on temporal_entities e of ids/idPattern/type, scopeQ and attrs (q and
    geoQ are evaluated on the latest instances by the service)."""
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
        parts.append(scope_to_sql(sel.scope, params=params)[0])
    if sel.attrs:
        parts.append(
            f"EXISTS (SELECT 1 FROM {schema}.attr_instances a WHERE a.entity_id = e.id"
            f" AND a.attr = ANY({params.add(list(sel.attrs))}::text[]))"
        )
    return " AND ".join(parts) or "TRUE"
