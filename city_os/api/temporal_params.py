"""Output options and instance filter of temporal requests, from query parameters or a Query
body's temporalQ (§6.3.7 options/format, §6.3.14 temporal query, §4.5.19 aggregation).

Layer: api/ (pure given the mapping of parameters; no I/O).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from city_os.core.entities import RequestContext
from city_os.core.query import NOT_ATTRIBUTES
from city_os.errors import BadRequestData, InvalidRequest
from city_os.ngsild.entity import check_entity_id, expand_attr_name
from city_os.store.postgres.temporal import InstanceFilter
from city_os.temporal.params import parse_temporal
from city_os.temporal.render import TemporalFormat, TemporalOptions

_FORMATS: dict[str, TemporalFormat] = {
    "temporalValues": "temporalValues",
    "simplified": "temporalValues",
    "keyValues": "temporalValues",
    "aggregatedValues": "aggregated",
    "normalized": "normalized",
}
_OTHER = {"sysAttrs", "concise"}


def _items(raw: Any, name: str) -> list[str] | None:
    if raw is None:
        return None
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise BadRequestData(f"{name} must be a comma-separated list or an array of strings")
    out = [i.strip() for i in items]
    if not out or "" in out:
        raise BadRequestData(f"{name} has an empty item")
    return out


def temporal_options(
    raw: Mapping[str, Any], ctx: RequestContext, *, query: bool = False
) -> TemporalOptions:
    options: set[str] = set()
    values = raw.getall("options", []) if hasattr(raw, "getall") else [raw.get("options")]
    for value in values:
        if value:
            options.update(o.strip() for o in str(value).split(","))
    unknown = options - set(_FORMATS) - _OTHER
    if unknown:
        raise InvalidRequest(f"unknown options: {', '.join(sorted(unknown))}")
    chosen = {_FORMATS[o] for o in options if o in _FORMATS}
    fmt = raw.get("format")
    if fmt is not None:
        if fmt not in _FORMATS:
            raise InvalidRequest(f"unknown format {fmt!r}")
        chosen = {_FORMATS[fmt]}
    if len(chosen) > 1:
        raise BadRequestData(f"representations {', '.join(sorted(chosen))} cannot be combined")
    chosen_format: TemporalFormat = chosen.pop() if chosen else "normalized"
    tq = parse_temporal(raw, aggregated=chosen_format == "aggregated")
    lang = raw.get("lang")
    if lang is not None and not isinstance(lang, str):
        raise BadRequestData("lang must be a string")
    pick, omit = _items(raw.get("pick"), "pick"), _items(raw.get("omit"), "omit")
    for name in (*(pick or ()), *(omit or ())):
        if "{" in name or "}" in name:
            raise BadRequestData(f"pick/omit: linked entity projection {name!r} is not allowed")
    if (pick is not None or omit is not None) and raw.get("attrs") is not None:
        raise BadRequestData("attrs cannot be combined with pick or omit")
    if pick is not None and omit is not None and set(pick) & set(omit):
        raise BadRequestData("a member cannot be both in pick and in omit")
    return TemporalOptions(
        format=chosen_format,
        sys_attrs="sysAttrs" in options,
        lang=lang,
        timeproperty=tq.timeproperty,
        methods=tq.aggr_methods,
        pick=frozenset(pick) if pick is not None else None,
        omit=frozenset(omit) if omit is not None else None,
    )


def _attr_names(ctx: RequestContext, names: list[str], what: str) -> tuple[str, ...]:
    out = []
    for name in names:
        if "{" in name or "}" in name:
            raise BadRequestData(f"{what}: linked entity projection {name!r} is not allowed here")
        if name in NOT_ATTRIBUTES:
            continue
        out.append(expand_attr_name(ctx.terms, name))
    return tuple(dict.fromkeys(out))


def filter_of(
    raw: Mapping[str, Any], ctx: RequestContext, opts: TemporalOptions, *, query: bool = False
) -> InstanceFilter:
    tq = parse_temporal(raw, aggregated=opts.format == "aggregated")
    attrs: tuple[str, ...] = ()
    names = _items(raw.get("attrs"), "attrs")
    if names is not None:
        attrs = _attr_names(ctx, names, "attrs")
        if not attrs:
            raise BadRequestData("attrs names no attribute")
    datasets = _items(raw.get("datasetId"), "datasetId")
    if datasets is not None:
        datasets = ["" if d == "@none" else check_entity_id(d, "datasetId") for d in datasets]
    return InstanceFilter(
        attrs=attrs, datasets=tuple(datasets) if datasets is not None else None, query=tq
    )
