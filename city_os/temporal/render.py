"""Temporal representations of an entity (§4.5.7 normalized, §4.5.9 temporalValues a.k.a.
simplified, §4.5.19 aggregated) built from attribute instance rows.

Layer: temporal/ (pure, no I/O). Rows are mappings with the columns of attr_instances (plus t,
the instant of the timeproperty); names are compacted through the request's term map, instance
members rendered by ngsild/representation like the entity API's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, Literal

import orjson

from city_os.ngsild.entity import NULL_URI, VALUE_KEY
from city_os.ngsild.representation import (
    RenderOptions,
    TermCompactor,
    instance_alive,
    render_instance,
)
from city_os.store.postgres.entity_sql import _iso
from city_os.store.postgres.temporal import InstanceFilter
from city_os.temporal.params import SCOPE_IRI

Row = Mapping[str, Any]
TemporalFormat = Literal["normalized", "temporalValues", "aggregated"]
INSTANCE_PREFIX = "urn:ngsi-ld:attribute:instance:"
# Instance members (options=sysAttrs) naming who recorded it (attr_instances.actor, client).
ACTOR_MEMBER = "cityosactor"
CLIENT_MEMBER = "cityosclient"
# §4.5.9: the member holding the [value, time] pairs of each kind of attribute.
VALUES_KEY = {
    "Property": "values",
    "GeoProperty": "values",
    "Relationship": "objects",
    "LanguageProperty": "languageMaps",
    "VocabProperty": "vocabs",
    "JsonProperty": "jsons",
    "ListProperty": "valueLists",
    "ListRelationship": "objectLists",
}


@dataclass(frozen=True)
class TemporalOptions:
    format: TemporalFormat = "normalized"
    sys_attrs: bool = False
    lang: str | None = None
    timeproperty: str = "observedAt"
    methods: tuple[str, ...] = ()
    pick: frozenset[str] | None = None  # member names as output (compacted)
    omit: frozenset[str] | None = None


def project(body: dict[str, Any], opts: TemporalOptions) -> dict[str, Any]:
    """pick/omit (§4.21) on a rendered temporal entity."""
    if opts.pick is not None:
        body = {k: v for k, v in body.items() if k in opts.pick}
    if opts.omit is not None:
        body = {k: v for k, v in body.items() if k not in opts.omit}
    return body


iso = _iso
_BY_T = itemgetter("t")


def entity_head(row: Row, tm: TermCompactor, sys_attrs: bool) -> dict[str, Any]:
    types = [tm.compact_type(t) for t in row["types"]]
    out: dict[str, Any] = {"id": row["id"], "type": types[0] if len(types) == 1 else types}
    scopes = row["scopes"]
    if scopes:
        out["scope"] = scopes[0] if len(scopes) == 1 else list(scopes)
    if sys_attrs:
        out["createdAt"] = iso(row["created_at"])
        out["modifiedAt"] = iso(row["modified_at"])
        if row["deleted_at"] is not None:
            out["deletedAt"] = iso(row["deleted_at"])
    return out


def instance(row: Row, tm: TermCompactor, opts: TemporalOptions) -> dict[str, Any]:
    """One instance in normalized form: its members, observedAt, instanceId, deletedAt."""
    inst = row["inst"]
    kind = inst.get("type", "Property")
    if row["deleted_at"] is None and kind == "Property" and len(inst) == 2 and "value" in inst:
        # The common case (a sensor reading): what render_instance gives, without the walk.
        observed = row["observed_at"]
        if observed is not None and not opts.sys_attrs:
            return {
                "type": "Property",
                "value": inst["value"],
                "observedAt": _iso(observed),
                "instanceId": INSTANCE_PREFIX + str(row["instance_id"]),
            }
        out: dict[str, Any] = {"type": "Property", "value": inst["value"]}
        if observed is not None:
            out["observedAt"] = _iso(observed)
    elif row["deleted_at"] is not None:
        out = {"type": kind, VALUE_KEY.get(kind, "value"): deleted_value(kind, row["attr"])}
        if "datasetId" in inst:
            out["datasetId"] = inst["datasetId"]
        out["deletedAt"] = iso(row["deleted_at"])
    else:
        # With sysAttrs an instance keeps its system members (its own expiresAt; §6.3.11 covers
        # /temporal/entities too); createdAt/modifiedAt are the row's, set below.
        out = render_instance(
            inst, tm, RenderOptions("normalized", sys_attrs=opts.sys_attrs, lang=opts.lang)
        )
        if row["observed_at"] is not None:
            out["observedAt"] = iso(row["observed_at"])
    out["instanceId"] = INSTANCE_PREFIX + str(row["instance_id"])
    if opts.sys_attrs:
        out["createdAt"] = iso(row["created_at"])
        out["modifiedAt"] = iso(row["modified_at"])
        # city-os extension (issue #10, audit): who recorded the instance, named like the
        # CloudEvents extension attributes; absent for the broker itself and with auth off.
        if row.get("actor") is not None:
            out[ACTOR_MEMBER] = row["actor"]
        if row.get("client") is not None:
            out[CLIENT_MEMBER] = row["client"]
    return out


def deleted_value(kind: str, attr: str = "") -> Any:
    """The NGSI-LD Null of a deleted instance of ``kind`` (§4.5.x); a removed scope has no
    scopes left, [] (ETSI 020_19)."""
    if attr == SCOPE_IRI:
        return []
    return {"@none": NULL_URI} if kind == "LanguageProperty" else NULL_URI


def _simple_value(row: Row, tm: TermCompactor, opts: TemporalOptions) -> Any:
    inst = row["inst"]
    if row["deleted_at"] is not None:
        kind = inst.get("type", "Property")
        member = VALUE_KEY.get(kind, "value")
        if row["attr"] == SCOPE_IRI:
            return []
        if member in ("value", "object", "valueList", "objectList"):
            return NULL_URI
        return {member: deleted_value(kind)}
    if row["num"] is not None:
        return row["num"]
    # keyValues form: {"languageMap": …}, {"json": …}, {"vocab": …} stay wrapped (§4.5.9)
    return render_instance(inst, tm, RenderOptions("keyValues", lang=opts.lang))


def _grouped(rows: Iterable[Row]) -> dict[str, dict[str, list[Row]]]:
    """attr → dataset_id → rows, attributes and datasets in order of first appearance."""
    out: dict[str, dict[str, list[Row]]] = {}
    for row in rows:
        out.setdefault(row["attr"], {}).setdefault(row["dataset_id"], []).append(row)
    return out


def render_entity(
    head: Row, rows: list[Row], tm: TermCompactor, opts: TemporalOptions
) -> dict[str, Any]:
    """The temporal representation (normalized or temporalValues) of one entity."""
    out = entity_head(head, tm, opts.sys_attrs)
    for attr, datasets in _grouped(sorted(_live(rows), key=_BY_T)).items():
        name = tm.compact_attr(attr)
        if opts.format == "normalized":
            out[name] = [instance(r, tm, opts) for rs in datasets.values() for r in rs]
            continue
        items = []
        for dataset, rs in datasets.items():
            kind = rs[-1]["inst"].get("type", "Property")
            item: dict[str, Any] = {"type": kind}
            if dataset:
                item["datasetId"] = dataset
            item[VALUES_KEY.get(kind, "values")] = [
                [_simple_value(r, tm, opts), iso(r["t"])] for r in rs
            ]
            items.append(item)
        out[name] = items[0] if len(items) == 1 else items
    return out


def _live(rows: list[Row]) -> list[Row]:
    """The rows but the instances of transient attributes that have expired: §5.2.5 makes
    expiresAt the end of "the storage of the Property", so its history goes with it (as the
    current state hides it, ngsild/representation). Only instances that carry expiresAt are
    looked at; the durable rows pass with one key test."""
    now: datetime | None = None
    out = []
    for row in rows:
        inst = row["inst"]
        if "expiresAt" in inst:
            now = now or datetime.now(UTC)
            if not instance_alive(inst, now):
                continue
        out.append(row)
    return out


def render_aggregated(
    head: Row, rows: list[Row], tm: TermCompactor, opts: TemporalOptions
) -> dict[str, Any]:
    """The aggregated representation: per attribute (and dataset) one [value, start, end]
    list per method (§4.5.19). ``rows``: one per attribute and dataset, each method's list as
    JSON text formatted by PostgreSQL (TemporalRepository.aggregate, packed)."""
    out = entity_head(head, tm, opts.sys_attrs)
    for attr, datasets in _grouped(rows).items():
        items = []
        for dataset, rs in datasets.items():
            item: dict[str, Any] = {"type": "Property"}  # aggregated values are numbers
            if dataset:
                item["datasetId"] = dataset
            for method in opts.methods:
                item[method] = [
                    [_number(v), start, end]
                    for r in rs
                    for v, start, end in orjson.loads(r[method])
                ]
            items.append(item)
        out[tm.compact_attr(attr)] = items[0] if len(items) == 1 else items
    return out


def _number(value: Any) -> Any:
    """A float stays a float (JSON 67.0, as the ETSI expectations write them); a numeric or an
    integer from SQL becomes one."""
    return value if value is None or type(value) is float else float(value)


def content_range_of(f: InstanceFilter, ranges: list[tuple[Any, Any]], descending: bool) -> str:
    """§6.3.10: ``date-time <start>-<end>/<size>``; the range starts at the requested bound
    (timeAt, or endTimeAt for lastN between) when there is one, else at the first instance
    returned, and ends at the last instance returned."""
    tq = f.query
    if descending:
        first = max(r[0] for r in ranges)
        last = max(r[1] for r in ranges)
        if tq.timerel == "before":
            first = tq.time_at
        elif tq.timerel == "between":
            first = tq.end_time_at
    else:
        first = min(r[0] for r in ranges)
        last = min(r[1] for r in ranges)
        if tq.timerel in ("after", "between"):
            first = tq.time_at
    size = str(tq.last_n) if tq.last_n else "*"
    return f"date-time {iso(first)}-{iso(last)}/{size}"
