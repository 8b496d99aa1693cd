"""Aggregation from the hourly rollups (tenant_temporal_rollups.sql) instead of the instances.

Layer: store/ (pure, no I/O): SQL text only, request values as bound parameters. A temporal
aggregation is answered from attr_rollups when that gives exactly what the instances give:
the timeproperty is observedAt, the methods are among those partial aggregates hold (all but
distinctCount), the window bounds (timeAt, endTimeAt) fall on whole UTC hours, and the period
(aggrPeriodDuration) is a whole number of hours or absent (one period). Periods then start at
timeAt (§4.5.19), so every period is a union of whole hourly buckets. Anything else takes the
exact path (TemporalRepository.aggregate over attr_instances). Float sums may differ from the
exact path in the last bits (summation order); the property test bounds the difference.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from city_os.store.postgres.query_sql import SqlParams
from city_os.temporal.params import SCOPE_IRI, TemporalQuery

WILD = "_wild"  # result column: a period holds a number the partials left out
ROLLED_UP = frozenset({"totalCount", "sum", "avg", "min", "max", "stddev", "sumsq"})
_HOUR = timedelta(hours=1)
# Each method from the partial aggregates of the buckets i of one period.
_FROM_PARTIALS = {
    "totalCount": "sum(i.cnt)::float8",
    "sum": "sum(i.total)",
    "avg": "sum(i.total) / nullif(sum(i.n), 0)::float8",
    "min": "min(i.lo)",
    "max": "max(i.hi)",
    "sumsq": "sum(i.sumsq)",
    # Pairwise combination of the buckets' squared deviations around the period's mean.
    "stddev": (
        "CASE WHEN sum(i.n) > 1 THEN sqrt(greatest(sum(CASE WHEN i.n > 0 THEN i.m2 + i.n"
        " * (i.total / i.n - i.pmean) ^ 2 ELSE 0 END), 0) / (sum(i.n)::float8 - 1)) END"
    ),
}


def _on_hour(t: datetime | None) -> bool:
    if t is None:
        return True
    return (t - datetime(2000, 1, 1, tzinfo=UTC)) % _HOUR == timedelta(0)


def usable(tq: TemporalQuery) -> bool:
    """Whether the rollups answer ``tq`` exactly (see the module docstring)."""
    if tq.timeproperty != "observedAt" or tq.timerel is None or not tq.aggr_methods:
        return False
    if not set(tq.aggr_methods) <= ROLLED_UP:
        return False
    if tq.aggr_period is not None and tq.aggr_period % _HOUR != timedelta(0):
        return False  # (with months, the fixed part too must be whole hours)
    return _on_hour(tq.time_at) and _on_hour(tq.end_time_at)


def _buckets(
    entities: str,
    attrs: tuple[str, ...],
    datasets: tuple[str, ...] | None,
    tq: TemporalQuery,
    params: SqlParams,
) -> tuple[list[str], str]:
    """The conditions on the rollups r of ``entities`` (an SQL condition) in ``tq``'s window
    (whole hours: a bucket is inside it or outside), and the timeAt placeholder."""
    where = [entities]
    if attrs:
        where.append(f"r.attr = ANY({params.add(list(attrs))}::text[])")
    else:  # the scope's history is not a value to aggregate
        where.append(f"r.attr <> '{SCOPE_IRI}'")
    if datasets is not None:
        where.append(f"r.dataset_id = ANY({params.add(list(datasets))}::text[])")
    at = params.add(tq.time_at) + "::timestamptz"
    if tq.timerel == "before":
        where.append(f"r.hour < {at}")
    else:
        where.append(f"r.hour >= {at}")
        if tq.timerel == "between":
            where.append(f"r.hour < {params.add(tq.end_time_at)}::timestamptz")
    return where, at


def rollup_sql(
    schema: str,
    ids_param: str,
    attrs: tuple[str, ...],
    datasets: tuple[str, ...] | None,
    tq: TemporalQuery,
    params: SqlParams,
) -> str:
    """The aggregation statement over attr_rollups: the same columns and rows as the exact
    path (entity_id, attr, dataset_id, start, end, one column per method), plus ``WILD``:
    when true in any row, the caller takes the exact path instead."""
    where, at = _buckets(f"r.entity_id = ANY({ids_param}::text[])", attrs, datasets, tq, params)
    if tq.aggr_calendar is not None:  # months or years: calendar arithmetic, as the exact path
        period = params.add(tq.aggr_calendar) + "::text::interval"
        bucket = f"{schema}.temporal_bin({period}, r.hour, {at})"
        end = f"{schema}.temporal_bin_end({period}, i.start)"
        start, group = "i.start", "1, 2, 3, 4"
        key = "r.entity_id, r.attr, r.dataset_id, " + bucket
    elif tq.aggr_period is not None:
        period = params.add(tq.aggr_period) + "::interval"
        bucket = f"date_bin({period}, r.hour, {at})"
        start, end, group = "i.start", f"i.start + {period}", "1, 2, 3, 4"
        key = "r.entity_id, r.attr, r.dataset_id, " + bucket
    else:
        bucket = at
        end = f"{params.add(tq.end_time_at)}::timestamptz" if tq.end_time_at else "max(i.last_t)"
        start, group = "min(i.start)", "1, 2, 3"
        key = "r.entity_id, r.attr, r.dataset_id"
    pmean = ""
    if "stddev" in tq.aggr_methods:
        pmean = (
            ", sum(r.total) OVER w / nullif(sum(r.n) OVER w, 0)::float8 AS pmean"
            f" FROM {schema}.attr_rollups r WHERE {' AND '.join(where)} WINDOW w AS"
            f" (PARTITION BY {key})"
        )
    source = pmean or f" FROM {schema}.attr_rollups r WHERE {' AND '.join(where)}"
    methods = ", ".join(f'{_FROM_PARTIALS[m]} AS "{m}"' for m in tq.aggr_methods)
    return f"""
SELECT i.entity_id, i.attr, i.dataset_id, {start} AS start, {end} AS "end", {methods},
       bool_or(i.wild) AS {WILD}
FROM (SELECT r.*, {bucket} AS start{source}) i
GROUP BY {group} ORDER BY 1, 2, 3, 4"""


def rollup_exists_sql(
    schema: str,
    eid: str,
    attrs: tuple[str, ...],
    datasets: tuple[str, ...] | None,
    tq: TemporalQuery,
    params: SqlParams,
) -> str:
    """Whether entity ``eid`` (a column) has an aggregated value in ``tq``'s window (when
    ``usable(tq)``: the window is whole hours, so a bucket is inside it or outside)."""
    where, _ = _buckets(f"r.entity_id = {eid}", attrs, datasets, tq, params)
    return f"EXISTS (SELECT 1 FROM {schema}.attr_rollups r WHERE {' AND '.join(where)})"
