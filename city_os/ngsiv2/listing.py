"""Entity lists of the NGSIv2 API (GET /v2/entities, POST /v2/op/query) on the core query engine.

Layer: ngsiv2/ (HTTP). v2 entity descriptors (``id``, ``idPattern``, ``type``, ``typePattern``)
become NGSI-LD entity selectors (a ``typePattern`` is matched against the tenant's types), ``q``
and ``mq`` the NGSI-LD q, ``georel``/``geometry``/``coords`` a geoquery and the service path a
scope filter. A v2 list selects every entity when nothing else is given (NGSI-LD ``local``).
``attrs`` only projects (v2 lists entities that lack them too); ``options=count`` sets
``Fiware-Total-Count``. An unknown tenant is an empty list, as in Orion.
"""

from __future__ import annotations

from typing import Any

import re2
from aiohttp import web

from city_os.api.keys import DISCOVERY, QUERIES
from city_os.core.entities import RequestContext
from city_os.core.query import Page, QueryResult, entity_query, selector
from city_os.errors import BadRequestData, NonexistentTenant
from city_os.ngsild.query.ast import TypeExpr, TypeName, TypeOr
from city_os.ngsild.query.entity_selection import EntitySelector
from city_os.ngsiv2.http import TOTAL_COUNT, options, output, read_scope, v2_json
from city_os.ngsiv2.ids import check_v2_name, id_pattern, ld_id
from city_os.ngsiv2.qlang import parse_v2_geo, parse_v2_q
from city_os.ngsiv2.translate import entity_to_v2, unique_rows

_BUILTIN_ORDER = {
    "id": "id",
    "type": "type",
    "dateCreated": "createdAt",
    "dateModified": "modifiedAt",
}


def order_by(raw: str | None) -> str | None:
    """v2 ``orderBy=a,!b`` (``!`` = descending) as NGSI-LD ``a;asc,b;desc``."""
    if raw is None:
        return None
    keys = []
    for item in raw.split(","):
        item = item.strip()
        desc = item.startswith("!")
        name = item[1:] if desc else item
        if not name:
            raise BadRequestData(f"orderBy: empty item in {raw!r}")
        if name == "geo:distance":
            raise BadRequestData("orderBy=geo:distance is not supported")
        keys.append(f"{_BUILTIN_ORDER.get(name, name)};{'desc' if desc else 'asc'}")
    return ",".join(keys)


def _types(names: list[str]) -> TypeExpr:
    items = tuple(TypeName(check_v2_name(n, "entity type")) for n in names)
    return items[0] if len(items) == 1 else TypeOr(items)


async def _matching_types(request: web.Request, ctx: RequestContext, pattern: str) -> list[str]:
    try:
        regex = re2.compile(pattern)
    except re2.error:
        raise BadRequestData(f"typePattern {pattern!r} is not a valid regular expression") from None
    listing = await request.app[DISCOVERY].types(ctx, details=False)
    return [t for t in listing["typeList"] if regex.search(t)]


async def selectors(
    request: web.Request, ctx: RequestContext, descriptors: list[dict[str, Any]]
) -> tuple[EntitySelector, ...] | None:
    """The NGSI-LD selectors of v2 entity descriptors; None when none can match."""
    out: list[EntitySelector] = []
    for d in descriptors:
        for key, value in d.items():
            if key not in ("id", "idPattern", "type", "typePattern", "isPattern"):
                raise BadRequestData(f"entities: unexpected member {key!r}")
            if not isinstance(value, str):
                raise BadRequestData(f"entities: {key} must be a string")
        ids = [i.strip() for i in d["id"].split(",")] if "id" in d else None
        pattern = d.get("idPattern")
        if d.get("isPattern") in ("true", True) and ids:  # NGSIv1-style pattern ids
            pattern, ids = ids[0], None
        if ids and pattern is not None:
            raise BadRequestData("id and idPattern cannot be used together")
        types: TypeExpr | None = None
        if "type" in d and "typePattern" in d:
            raise BadRequestData("type and typePattern cannot be used together")
        if "type" in d:
            types = _types([t.strip() for t in d["type"].split(",")])
        elif "typePattern" in d:
            found = await _matching_types(request, ctx, d["typePattern"])
            if not found:
                continue
            types = _types(found)
        checked = [ld_id(check_v2_name(i, "entity id")) for i in ids] if ids else None
        if types is None and not checked and pattern is None:
            return ()  # a descriptor without restriction: every entity
        out.append(selector(types, checked, id_pattern(pattern) if pattern else None))
    return tuple(out) if out else None


async def list_response(
    request: web.Request,
    ctx: RequestContext,
    descriptors: list[dict[str, Any]],
    expression: dict[str, Any],
    *,
    limit: int,
    offset: int,
    attrs: tuple[str, ...] | None = None,
    metadata: tuple[str, ...] | None = None,
) -> web.Response:
    opts = options(request)
    out = output(request, opts)
    if attrs is not None or metadata is not None:
        out = type(out)(attrs or out.attrs, metadata or out.metadata, out.format)
    for key, value in expression.items():
        if not isinstance(value, str):
            raise BadRequestData(f"expression: {key} must be a string")
    q = parse_v2_q(expression.get("q"), expression.get("mq"))
    geo = parse_v2_geo(
        expression.get("georel"), expression.get("geometry"), expression.get("coords")
    )
    count = "count" in opts
    page = Page(
        limit=limit, offset=offset, count=count, order_by=order_by(request.query.get("orderBy"))
    )
    try:
        found = await selectors(request, ctx, descriptors)
        if found is None:
            result = QueryResult([], 0)
        else:
            query = entity_query(
                selectors=found, q=q, geo=geo, scope=read_scope(request), local=True
            )
            result = await request.app[QUERIES].query(ctx, query, page)
    except NonexistentTenant:
        result = QueryResult([], 0)
    rows = [entity_to_v2(r, ctx.terms, out) for r in result.records]
    if out.format == "unique":
        rows = unique_rows(rows)
    headers = {TOTAL_COUNT: str(result.total or 0)} if count else None
    return v2_json(rows, headers=headers)
