"""What a distributed retrieve or query sends to one source, and how its answer is read.

Layer: federation/ (pure: no I/O). A source is asked in the first way its registration serves:
``retrieveEntity`` (GET /entities/{id}), ``queryEntity`` (GET /entities) or ``queryBatch``
(POST /entityOperations/query). The request asks only for what the source registered: the
entity ids it names, ``attrs`` cut to its registered attributes; ``local=true`` when the
registration is ``localOnly`` (§4.3.6.4: the source must not cascade). With
``splitEntities=true`` the filters (q, scopeQ) stay home and are applied to the merged
entities (§5.7.2.4). Answers are read by federation/remote.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from city_os.core.request import RequestContext
from city_os.federation.client import link_header
from city_os.federation.merge import Origin
from city_os.federation.model import Registration

# Query parameters that are the broker's own business and never forwarded as the client sent
# them (paging and output are redone here; local/csf chose the sources).
NOT_FORWARDED = frozenset(
    {
        "limit", "offset", "count", "options", "format", "local", "csf", "entityMap", "pick",
        "omit", "join", "joinLevel", "geometryProperty", "lang", "via", "contextSourceIdentity",
        "splitEntities", "attrs", "orderBy", "collation", "orderFrom", "orderGeometry",
    }
)  # fmt: skip
FILTERS = frozenset({"q", "scopeQ"})
_TYPE_NAME = re.compile(r"[^|;,()\s]+")


@dataclass(frozen=True)
class Source:
    """A matching registration, seen by one request."""

    registration: Registration
    attrs: frozenset[str] | None  # what the source holds for the request (None: everything)
    operation: str  # how it is asked: retrieveEntity, queryEntity or queryBatch

    @property
    def origin(self) -> Origin:
        return self.registration.mode

    @property
    def owned(self) -> frozenset[str] | None:
        return self.attrs if self.origin in ("exclusive", "redirect") else None


@dataclass(frozen=True)
class Outbound:
    method: str
    path: str
    params: list[tuple[str, str]]
    body: Any = None


def split_entities(ctx: RequestContext) -> bool:
    return ("splitEntities", "true") in ctx.params


def outbound(
    ctx: RequestContext,
    source: Source,
    *,
    entity_id: str | None = None,
    limit: int | None = None,
    count: bool = False,
) -> Outbound:
    """The request for ``source``: a retrieve of ``entity_id``, else a query."""
    reg = source.registration
    forwardable = link_header(ctx.context) is not None
    params = [(k, v) for k, v in ctx.params if k not in NOT_FORWARDED]
    if split_entities(ctx):
        params = [(k, v) for k, v in params if k not in FILTERS]
    if not forwardable:  # the source cannot know the client's terms: send full IRIs
        params = [(k, _expand_types(ctx, v) if k == "type" else v) for k, v in params]
    names = {k for k, _ in params}
    if "type" not in names and (entity_id is None or source.operation != "retrieveEntity"):
        types = sorted({t for i in reg.information for e in i.entities for t in e.types})
        if types:
            shown = [ctx.terms.compact_type(t) if forwardable else t for t in types]
            params.append(("type", ",".join(shown)))
    if entity_id is not None:
        params = [(k, v) for k, v in params if k != "id"]
        if source.operation != "retrieveEntity":
            params.append(("id", entity_id))
    elif "id" not in names and "idPattern" not in names:
        ids = _registered_ids(reg)
        if ids:
            params.append(("id", ",".join(ids)))
    if source.attrs is not None:
        # sorted: the same request asks a source the same way every time
        shown = sorted(ctx.terms.compact_attr(a) if forwardable else a for a in source.attrs)
        params.append(("attrs", ",".join(shown)))
    if local_only(reg):
        params.append(("local", "true"))
    if source.operation == "retrieveEntity" and entity_id is not None:
        return Outbound("GET", "/entities/" + _quote(entity_id), params)
    if source.operation == "queryEntity":
        if limit is not None:
            params.append(("limit", str(limit)))
        if count:
            params.append(("count", "true"))
        return Outbound("GET", "/entities", params)
    return _query_batch(params, limit, count)


def _query_batch(params: list[tuple[str, str]], limit: int | None, count: bool) -> Outbound:
    """The same selection as a Query (§5.2.23) for POST /entityOperations/query."""
    values = dict(params)
    selector: dict[str, Any] = {"type": values.get("type", "*")}
    if "id" in values:
        ids = values["id"].split(",")
        selector["id"] = ids[0] if len(ids) == 1 else ids
    elif "idPattern" in values:
        selector["idPattern"] = values["idPattern"]
    body: dict[str, Any] = {"type": "Query", "entities": [selector]}
    if "attrs" in values:
        body["attrs"] = values["attrs"].split(",")
    for key in ("q", "scopeQ", "datasetId"):
        if key in values:
            body[key] = values[key]
    if "georel" in values:
        body["geoQ"] = {
            k: values[k]
            for k in ("georel", "geometry", "coordinates", "geoproperty")
            if k in values
        }
    query = [("limit", str(limit))] if limit is not None else []
    if count:
        query.append(("count", "true"))
    if values.get("local") == "true":
        body["local"] = True
    return Outbound("POST", "/entityOperations/query", query, body)


def body_params(body: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """A Query body's selection as the query parameters of GET /entities (forwarded to
    sources that take ``queryEntity``; ``queryBatch`` sources get it back as a Query)."""
    out: list[tuple[str, str]] = []
    entities = body.get("entities")
    if isinstance(entities, list) and entities and isinstance(entities[0], dict):
        first = entities[0]
        if isinstance(first.get("type"), str):
            out.append(("type", first["type"]))
        ids = first.get("id")
        if isinstance(ids, str):
            out.append(("id", ids))
        elif isinstance(ids, list) and all(isinstance(i, str) for i in ids):
            out.append(("id", ",".join(ids)))
        if isinstance(first.get("idPattern"), str):
            out.append(("idPattern", first["idPattern"]))
    for key in ("q", "scopeQ"):
        if isinstance(body.get(key), str):
            out.append((key, body[key]))
    attrs = body.get("attrs")
    if isinstance(attrs, list) and all(isinstance(a, str) for a in attrs):
        out.append(("attrs", ",".join(attrs)))
    geo = body.get("geoQ")
    if isinstance(geo, dict):
        for key in ("georel", "geometry", "geoproperty"):
            if isinstance(geo.get(key), str):
                out.append((key, geo[key]))
        if "coordinates" in geo:
            coords = geo["coordinates"]
            out.append(("coordinates", coords if isinstance(coords, str) else _json(coords)))
    if body.get("local") is True:
        out.append(("local", "true"))
    return tuple(out)


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()


def local_only(reg: Registration) -> bool:
    """``management.localOnly`` (§5.2.34); also accepted as a top-level member (the ETSI
    suite's 436_04 writes it there), which the registration keeps as a property."""
    if reg.management.local_only:
        return True
    for iri, value in reg.properties.items():
        if iri.rsplit("/", 1)[-1].rsplit("#", 1)[-1] == "localOnly":
            raw = value.get("value") if isinstance(value, dict) else value
            return raw is True or raw == "true"
    return False


def _registered_ids(reg: Registration) -> list[str]:
    """The entity ids the registration names, when every entity item names one."""
    items = [e for i in reg.information for e in i.entities]
    if not items or any(e.id is None for e in items):
        return []
    return sorted({e.id for e in items if e.id is not None})


def _expand_types(ctx: RequestContext, selection: str) -> str:
    """A type selection (``A|B``, ``(A;B)``, ``A,B``) with every name expanded."""
    return _TYPE_NAME.sub(lambda m: ctx.terms.expand_type(m.group(0)), selection)


def _quote(entity_id: str) -> str:
    from urllib.parse import quote

    return quote(entity_id, safe=":")
