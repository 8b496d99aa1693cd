"""Query and purge entities (§5.7.2, §5.6.21, §6.4.3.2, §6.23): GET and DELETE /entities,
POST /entityOperations/query.

Layer: api/. Reads the selection from query parameters (or the Query body), calls QueryService
and writes the page with the shared output options, ``NGSILD-Results-Count`` and prev/next
``Link`` headers (§5.5.9).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web

from city_os.api.federation import ENTITY_MAPS, FEDERATION, written
from city_os.api.http import (
    GEOJSON,
    JSON,
    JSONLD,
    body_context,
    check_params,
    csv_param,
    int_param,
    negotiate,
    prefers_plain_json,
    read_context,
    read_json,
    request_context,
    respond,
    respond_page,
)
from city_os.api.keys import QUERIES, SETTINGS
from city_os.api.output import projection_list, render_options, render_page, with_projection
from city_os.core.entities import RequestContext
from city_os.core.linked import linked_entities
from city_os.core.query import (
    EntityQuery,
    Page,
    QueryResult,
    attribute_names,
    entity_query,
    expand_values,
    selection_of,
    selector,
)
from city_os.errors import BadRequestData
from city_os.federation.distributed_request import body_params
from city_os.federation.entitymap import HEADER as MAP_HEADER
from city_os.federation.entitymap import map_id_of
from city_os.federation.forward import forward_purge
from city_os.ngsild.entity import expand_attr_name
from city_os.ngsild.limits import check_count
from city_os.ngsild.linked import Join, check_projection, parse_join, parse_level
from city_os.ngsild.query.ast import QExpr
from city_os.ngsild.query.geo import geoq_from_json, parse_geoq, reference_geometry
from city_os.ngsild.query.q import parse_q
from city_os.ngsild.query.scope import parse_scopeq
from city_os.ngsild.query.type_selection import parse_type_selection
from city_os.ngsild.representation import RenderOptions, to_feature

routes = web.RouteTableDef()
PREFIX = "/ngsi-ld/v1"
COUNT_HEADER = "NGSILD-Results-Count"
_LINK_SAFE = ":/.*-_~!$'()+;=@[]"


def _flag(value: Any, name: str) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise BadRequestData(f"{name} must be true or false")


MAX_OFFSET = 2**31 - 1  # PostgreSQL takes a bigint; nobody pages two billion entities deep


def _ordering(request: web.Request, body: dict[str, Any] | None) -> dict[str, Any]:
    """orderBy, collation and the distance reference: query parameters, or the ``ordering``
    member of a Query (§5.2.43), which takes precedence."""
    query = request.query
    order_by, collation = query.get("orderBy"), query.get("collation")
    geometry: Any = query.get("orderGeometry", "Point")
    coordinates: Any = query.get("orderFrom")
    ordering = body.get("ordering") if body is not None else None
    if ordering is not None:
        if not isinstance(ordering, dict):
            raise BadRequestData("ordering must be an object")
        if "orderBy" in ordering:
            order_by = ",".join(_strings(ordering["orderBy"], "orderBy") or ())
        collation = ordering.get("collation", collation)
        if collation is not None and not isinstance(collation, str):
            raise BadRequestData("ordering: collation must be a string")
        geometry = ordering.get("geometry", geometry)
        coordinates = ordering.get("coordinates", coordinates)
        if "geometry" in ordering and not isinstance(geometry, str):
            raise BadRequestData("ordering: geometry must be a string")
    near = None
    if coordinates is not None:
        near = orjson.dumps(reference_geometry(geometry, coordinates)).decode()
    return {"order_by": order_by, "collation": collation, "order_from": near}


def page_params(request: web.Request, body: dict[str, Any] | None = None) -> Page:
    settings = request.app[SETTINGS]
    limit = int_param(request, "limit", settings.default_page_size, 0, settings.max_page_size)
    count = bool(_flag(request.query.get("count"), "count"))
    if limit == 0 and not count:
        raise BadRequestData("limit=0 is only allowed together with count=true")
    return Page(
        limit=limit,
        offset=int_param(request, "offset", 0, 0, MAX_OFFSET),
        count=count,
        **_ordering(request, body),
    )


def _type_param(raw: str | None) -> tuple[Any, bool]:
    if raw is None:
        return None, False
    if raw.strip() == "*":
        return None, True
    return parse_type_selection(raw), False


def _join_level(join: Any, level: Any, max_level: int) -> int:
    """How deep q may follow Relationships: joinLevel once ``join`` is given (even @none)."""
    parsed = parse_join(join, level, max_level)
    if parsed is not None:
        return parsed.level
    if join is None:
        return 0
    return parse_level(level, max_level) if level is not None else 1


def _q(ctx: RequestContext, q: str | None, expand: list[str] | None) -> QExpr | None:
    if q is None:
        return None
    expr = parse_q(q)
    if not expand:
        return expr
    attrs = frozenset(expand_attr_name(ctx.terms, a) for a in expand)
    return expand_values(
        expr, attrs, ctx.terms.expand_vocab_value, lambda t: expand_attr_name(ctx.terms, t)
    )


def _params_query(request: web.Request, ctx: RequestContext) -> EntityQuery:
    """The selection of GET/DELETE /entities from its query parameters."""
    query = request.query
    csf = query.get("csf")
    if csf is not None:
        parse_q(csf)  # context source filter: only its syntax matters to a local broker
    types, all_types = _type_param(query.get("type"))
    attrs = projection_list(request, "attrs")
    q = query.get("q")
    scope = query.get("scopeQ")
    return entity_query(
        selectors=(selector(types, csv_param(request, "id"), query.get("idPattern")),),
        attrs=attribute_names(ctx, attrs) if attrs else (),
        q=_q(ctx, q, csv_param(request, "expandValues")),
        geo=parse_geoq(
            query.get("georel"),
            query.get("geometry"),
            query.get("coordinates"),
            query.get("geoproperty"),
        ),
        scope=parse_scopeq(scope) if scope is not None else None,
        local=_flag(query.get("local"), "local"),
        datasets=csv_param(request, "datasetId"),
        all_types=all_types,
        join_level=_join_level(query.get("join"), query.get("joinLevel"), ctx.limits.join_level),
    )


def _strings(value: Any, name: str) -> list[str] | None:
    """A body member holding names: an array of strings or a comma-separated string."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
        raise BadRequestData(f"{name} must be a non-empty array of strings")
    if not items:
        raise BadRequestData(f"{name} must not be empty")
    return [i.strip() for i in items]


def _body_query(ctx: RequestContext, body: dict[str, Any]) -> EntityQuery:
    """The selection of a Query data type (§5.2.23) sent to /entityOperations/query."""
    if body.get("type") != "Query":
        raise BadRequestData('the body must be a Query: "type": "Query"')
    if "temporalQ" in body:
        raise BadRequestData("temporalQ only applies to temporal queries")
    selectors = []
    entities = body.get("entities")
    if entities is not None:
        if not isinstance(entities, list) or not entities:
            raise BadRequestData("entities must be a non-empty array of EntitySelectors")
        check_count(ctx.limits, "query_selectors", len(entities), "EntitySelectors of the Query")
        for item in entities:
            if not isinstance(item, dict) or not isinstance(item.get("type"), str):
                raise BadRequestData("every EntitySelector needs a type")
            ids = item.get("id")
            if ids is not None and not isinstance(ids, list):
                ids = [ids]
            pattern = item.get("idPattern")
            if pattern is not None and not isinstance(pattern, str):
                raise BadRequestData("idPattern must be a string")
            selectors.append(selector(parse_type_selection(item["type"]), ids, pattern))
    attrs = _strings(body.get("attrs"), "attrs")
    q, scope = body.get("q"), body.get("scopeQ")
    if q is not None and not isinstance(q, str):
        raise BadRequestData("q must be a string")
    if scope is not None and not isinstance(scope, str):
        raise BadRequestData("scopeQ must be a string")
    return entity_query(
        selectors=tuple(selectors),
        attrs=attribute_names(ctx, attrs) if attrs else (),
        q=_q(ctx, q, _strings(body.get("expandValues"), "expandValues")),
        geo=geoq_from_json(body["geoQ"]) if body.get("geoQ") is not None else None,
        scope=parse_scopeq(scope) if scope is not None else None,
        local=_flag(body.get("local"), "local"),
        datasets=_strings(body.get("datasetId"), "datasetId"),
        join_level=_join_level(body.get("join"), body.get("joinLevel"), ctx.limits.join_level),
    )


def query_of_body(ctx: RequestContext, body: dict[str, Any]) -> EntityQuery:
    """The selection of a Query data type (also of each snapshotQueries item, snapshots/)."""
    return _body_query(ctx, body)


def _body_options(ctx: RequestContext, opts: RenderOptions, body: dict[str, Any]) -> RenderOptions:
    def projection(key: str) -> str | None:
        raw = body.get(key)
        if raw is None or isinstance(raw, str):
            return raw
        return ",".join(_strings(raw, key) or ())

    attrs = _strings(body.get("attrs"), "attrs")
    if attrs is not None:
        special = {"id", "type", "scope"}
        names = frozenset(n if n in special else expand_attr_name(ctx.terms, n) for n in attrs)
        opts = replace(opts, attrs=names)
    pick, omit = projection("pick"), projection("omit")
    if pick is not None or omit is not None:
        opts = with_projection(ctx, replace(opts, pick=None, omit=None, linked=()), pick, omit)
    return replace(opts, lang=body.get("lang", opts.lang))


def pagination_links(request: web.Request, page: Page, more: bool, media: str) -> list[str]:
    def link(offset: int, rel: str) -> str:
        params = {k: v for k, v in request.query.items() if k not in ("offset", "limit")}
        params.update(limit=str(page.limit), offset=str(offset))
        query = "&".join(
            f"{quote(k, safe=_LINK_SAFE)}={quote(v, safe=_LINK_SAFE)}"
            for k, v in sorted(params.items())
        )
        return f'<{request.path.rstrip("/")}?{query}>; rel="{rel}"; type="{media}"'

    if page.limit == 0:
        return []
    links = []
    if page.offset > 0:
        links.append(link(max(page.offset - page.limit, 0), "prev"))
    if more:
        links.append(link(page.offset + page.limit, "next"))
    return links


async def _respond(
    request: web.Request,
    ctx: RequestContext,
    result: QueryResult,
    opts: RenderOptions,
    page: Page,
    *,
    links: bool,
    join: Join | None,
) -> web.Response:
    media = negotiate(request, (JSON, JSONLD, GEOJSON))
    if media != GEOJSON and "geometryProperty" in request.query:
        raise BadRequestData("geometryProperty needs Accept: application/geo+json")
    headers = {COUNT_HEADER: str(result.total)} if result.total is not None else {}
    if media == GEOJSON:
        geometry = opts.geometry_property
        assert geometry is not None
        rendered = await render_page(result.records, ctx, opts)
        pairs = zip(result.records, rendered, strict=True)
        features = [to_feature(r, body, geometry, ctx.terms) for r, body in pairs]
        collection = {"type": "FeatureCollection", "features": features}
        response = respond(
            collection,
            ctx,
            JSON,
            headers=headers,
            content_type=GEOJSON,
            embed_context=not prefers_plain_json(request),
        )
    else:
        linked = None
        if join is not None and result.records:
            entities = request.app[QUERIES].entities
            linked = await linked_entities(entities, ctx, result.records, opts, join)
        # An entity that pick/omit leaves empty is not listed at all (§4.21).
        bodies = [b for b in await render_page(result.records, ctx, opts, join, linked) if b]
        response = await respond_page(bodies, ctx, media, headers=headers)
    if links:
        for value in pagination_links(request, page, result.more, media):
            response.headers.add("Link", value)
    return response


# Query parameters of GET /entities (§6.4.3.2) and of purge, DELETE /entities (§6.4.3.3).
QUERY_PARAMS = frozenset(
    {
        "id", "type", "idPattern", "attrs", "pick", "omit", "q", "csf", "georel", "geometry",
        "coordinates", "geoproperty", "geometryProperty", "lang", "scopeQ", "datasetId", "local",
        "options", "format", "limit", "offset", "count", "orderBy", "collation", "orderFrom",
        "orderGeometry", "join", "joinLevel", "containedBy", "expandValues", "entityMap",
        "contextSourceIdentity", "via", "splitEntities", "entityMapLifetime",
    }
)  # fmt: skip
PURGE_PARAMS = frozenset(
    {
        "id", "type", "idPattern", "attrs", "q", "csf", "georel", "geometry", "coordinates",
        "geoproperty", "scopeQ", "datasetId", "local", "keep", "drop", "expandValues",
    }
)  # fmt: skip


@routes.get(PREFIX + "/entities")
async def query_entities(request: web.Request) -> web.Response:
    check_params(request, QUERY_PARAMS)
    ctx = await read_context(request)
    opts = render_options(request, ctx)
    query, page = _params_query(request, ctx), page_params(request)
    join = parse_join(
        request.query.get("join"), request.query.get("joinLevel"), ctx.limits.join_level
    )
    check_projection(opts, join)
    maps = request.app.get(ENTITY_MAPS)
    used = request.headers.get(MAP_HEADER)
    if maps is not None and used is not None:  # the pages of an EntityMap (§5.5.14)
        result = await maps.page(ctx, query, page, map_id_of(used))
        response = await _respond(request, ctx, result, opts, page, links=True, join=join)
        response.headers[MAP_HEADER] = used
        return response
    result = await request.app[QUERIES].query(ctx, query, page)
    response = await _respond(request, ctx, result, opts, page, links=True, join=join)
    if maps is not None and _flag(request.query.get("entityMap"), "entityMap"):
        made = await maps.create(ctx, query, request.query.get("entityMapLifetime"))
        response.set_status(201)
        response.headers[MAP_HEADER] = maps.location(made["id"])
    return response


def query_of_params(request: web.Request, ctx: RequestContext) -> EntityQuery:
    """The selection of GET /entities (also of GET /entityMaps)."""
    return _params_query(request, ctx)


@routes.post(PREFIX + "/entityOperations/query")
async def query_entities_post(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequestData("the body must be a Query object")
    ctx = await request_context(request, body_context(request, body))
    opts = _body_options(ctx, render_options(request, ctx), body)
    query, page = _body_query(ctx, body), page_params(request, body)
    ctx = replace(ctx, params=body_params(body) + ctx.params)  # forwarded to context sources
    join = parse_join(body.get("join"), body.get("joinLevel"), ctx.limits.join_level)
    check_projection(opts, join)
    result = await request.app[QUERIES].query(ctx, query, page)
    return await _respond(request, ctx, result, opts, page, links=False, join=join)


@routes.delete(PREFIX + "/entities")
async def purge_entities(request: web.Request) -> web.Response:
    check_params(request, PURGE_PARAMS)
    ctx = await read_context(request)
    keep, drop = csv_param(request, "keep"), csv_param(request, "drop")
    if keep is not None and drop is not None:
        raise BadRequestData("keep and drop cannot be used together")
    query = _params_query(request, ctx)
    await request.app[QUERIES].purge(
        ctx,
        query,
        keep=frozenset(attribute_names(ctx, keep)) if keep else None,
        drop=frozenset(attribute_names(ctx, drop)) if drop else None,
    )
    federation = request.app.get(FEDERATION)
    if federation is not None:  # and at the sources of the selected entities (§5.6.21)
        fw = await forward_purge(federation, ctx, selection_of(ctx, query.selection)["types"])
        return written(fw, web.Response(status=204))
    return web.Response(status=204)
