"""Temporal API resources (§6.18-6.22): /temporal/entities, /temporal/entities/{id}, its attrs
and instances, /temporal/entityOperations/query.

Layer: api/. Each handler parses the request, calls TemporalService and writes the result
(200, or 206 with Content-Range when instances were cut, §6.3.10). Query parameters shared
with the entity query (type, id, idPattern, attrs, q, geoQ, scopeQ) parse the same way.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiohttp import web

from city_os.api.federation import ENTITY_MAPS
from city_os.api.http import (
    JSON,
    JSONLD,
    body_context,
    check_params,
    int_param,
    negotiate,
    read_context,
    read_json,
    request_context,
    respond,
)
from city_os.api.keys import SETTINGS, TEMPORAL
from city_os.api.query import COUNT_HEADER, _body_query, _flag, _params_query, pagination_links
from city_os.api.temporal_params import filter_of, temporal_options
from city_os.core.query import Page, _link_depth
from city_os.errors import BadRequestData, InvalidRequest
from city_os.federation.distributed_request import body_params
from city_os.federation.entitymap import HEADER as MAP_HEADER
from city_os.federation.entitymap_temporal import MapAnswer, query_map, retrieve_map
from city_os.temporal.csv_output import to_csv
from city_os.temporal.distributed import Page as TPage
from city_os.temporal.distributed import TemporalResult
from city_os.temporal.render import TemporalOptions

routes = web.RouteTableDef()
PREFIX = "/ngsi-ld/v1/temporal"
_TEMPORAL = {
    "timerel", "timeAt", "endTimeAt", "timeproperty", "lastN", "aggrMethods",
    "aggrPeriodDuration", "options", "format", "attrs", "pick", "omit", "lang", "datasetId",
}  # fmt: skip
RETRIEVE_PARAMS = frozenset(
    {*_TEMPORAL, "type", "local", "csf", "via", "entityMap", "entityMapLifetime"}
)
QUERY_PARAMS = frozenset(
    {
        *_TEMPORAL, "id", "type", "idPattern", "q", "csf", "georel", "geometry", "coordinates",
        "geoproperty", "scopeQ", "local", "limit", "offset", "count", "expandValues", "via",
        "orderBy", "entityMap", "entityMapLifetime",
    }
)  # fmt: skip


CSV = "text/csv"
_FORWARDED = frozenset(
    {"timerel", "timeAt", "endTimeAt", "timeproperty", "lastN", "aggrMethods", "lang", "datasetId"}
)


def _respond(
    request: web.Request,
    ctx: Any,
    result: TemporalResult,
    body: Any,
    opts: TemporalOptions,
    **headers: str,
) -> web.Response:
    media = negotiate(request, (JSON, JSONLD, CSV))
    if result.content_range is not None:
        headers["Content-Range"] = result.content_range
    status = 206 if result.content_range is not None else 200
    if media == CSV:
        rows = to_csv(
            body if isinstance(body, list) else [body],
            timeproperty=opts.timeproperty,
            methods=opts.methods,
            sys_attrs=opts.sys_attrs,
        )
        return web.Response(text=rows, status=status, content_type=CSV, headers=headers)
    return respond(body, ctx, media, status=status, headers=headers)


@routes.get(PREFIX + "/entities/{entity_id}")
async def retrieve_temporal(request: web.Request) -> web.Response:
    check_params(request, RETRIEVE_PARAMS)
    ctx = await read_context(request)
    opts = temporal_options(request.query, ctx)
    f = filter_of(request.query, ctx, opts)
    local = request.query.get("local") == "true"
    entity_id = request.match_info["entity_id"]
    result = await request.app[TEMPORAL].retrieve(ctx, entity_id, f, opts, local=local)
    headers = {}
    maps = request.app.get(ENTITY_MAPS)
    if maps is not None and _flag(request.query.get("entityMap"), "entityMap"):
        lifetime = request.query.get("entityMapLifetime")
        headers[MAP_HEADER] = await retrieve_map(maps, ctx, entity_id, result, lifetime)
    return _respond(request, ctx, result, result.bodies[0], opts, **headers)


def _page(request: web.Request) -> Page:
    settings = request.app[SETTINGS]
    limit = int_param(request, "limit", settings.default_page_size, 0, settings.max_page_size)
    count = request.query.get("count") == "true"
    if limit == 0 and not count:
        raise BadRequestData("limit=0 is only allowed together with count=true")
    return Page(limit=limit, offset=int_param(request, "offset", 0, 0, 2**31 - 1), count=count)


def _descending(order_by: Any) -> bool:
    """orderBy of a temporal query: only the entity id (§5.7.4), ascending or descending."""
    if order_by in (None, "id", "id;asc"):
        return False
    if order_by == "id;desc":
        return True
    raise BadRequestData(f"orderBy: a temporal query orders by id only, not {order_by!r}")


async def _query(
    request: web.Request, ctx: Any, sel: Any, raw: Any, page: Page, local: bool | None
) -> web.Response:
    if sel.q is not None and _link_depth(sel.q) > 0:
        raise BadRequestData("q cannot follow relationships in a temporal query")
    opts = temporal_options(raw, ctx, query=True)
    f = filter_of(raw, ctx, opts, query=True)
    maps = request.app.get(ENTITY_MAPS)
    answer: MapAnswer | None = None
    used, make = request.headers.get(MAP_HEADER), _flag(raw.get("entityMap"), "entityMap")
    paging = TPage(
        page.limit, page.offset, page.count, _descending(raw.get("orderBy")), bool(local)
    )
    if maps is not None and (used is not None or make):
        answer = await query_map(
            maps, request.app[TEMPORAL], ctx, sel, f, opts, paging, used=used, make=bool(make),
            lifetime=raw.get("entityMapLifetime"),
        )  # fmt: skip
        result = answer.result
    else:
        result = await request.app[TEMPORAL].query(
            ctx, sel, f, opts, limit=page.limit, offset=page.offset, count=page.count,
            descending=paging.descending, local=paging.local,
        )  # fmt: skip
    headers = {COUNT_HEADER: str(result.total)} if result.total is not None else {}
    response = _respond(request, ctx, result, result.bodies, opts, **headers)
    for value in pagination_links(request, page, result.more, response.content_type):
        response.headers.add("Link", value)
    if answer is not None and answer.header is not None:
        response.headers[MAP_HEADER] = answer.header
        if answer.created:
            response.set_status(201)
    return response


@routes.get(PREFIX + "/entities")
async def query_temporal(request: web.Request) -> web.Response:
    check_params(request, QUERY_PARAMS)
    ctx = await read_context(request)
    query = _params_query(request, ctx)
    return await _query(request, ctx, query.selection, request.query, _page(request), query.local)


@routes.post(PREFIX + "/entityOperations/query")
async def query_temporal_post(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequestData("the body must be a Query object")
    ctx = await request_context(request, body_context(request, body))
    temporal_q = body.get("temporalQ")
    if temporal_q is not None and not isinstance(temporal_q, dict):
        raise BadRequestData("temporalQ must be an object")
    plain = {k: v for k, v in body.items() if k not in ("temporalQ", "aggrParams")}
    query = _body_query(ctx, plain)
    raw: dict[str, Any] = {**request.query, **(temporal_q or {})}
    for key in ("attrs", "lang", "datasetId", "pick", "omit"):
        if key in body:
            raw[key] = body[key]
    aggr = body.get("aggrParams")
    if aggr is not None:
        if not isinstance(aggr, dict):
            raise BadRequestData("aggrParams must be an object")
        raw.update({k: v for k, v in aggr.items() if k in ("aggrMethods", "aggrPeriodDuration")})
    if "aggrMethods" in raw and "options" not in raw and "format" not in raw:
        raw["options"] = "aggregatedValues"  # a Query asking for methods wants them (5.2.21)
    # what a distributed query forwards to context sources (federation/distributed_temporal.py)
    given = {k for k, _ in ctx.params}
    forwarded = tuple((k, str(v)) for k, v in raw.items() if k in _FORWARDED and k not in given)
    ctx = replace(ctx, params=body_params(plain) + forwarded + ctx.params)
    return await _query(request, ctx, query.selection, raw, _page(request), query.local)


async def _payload(request: web.Request) -> tuple[Any, dict[str, Any]]:
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise InvalidRequest("the payload must be a JSON object")
    return await request_context(request, body_context(request, payload)), payload


@routes.post(PREFIX + "/entities")
async def create_temporal(request: web.Request) -> web.Response:
    ctx, payload = await _payload(request)
    created = await request.app[TEMPORAL].create_or_update(ctx, payload)
    if not created:
        return web.Response(status=204)
    location = f"{PREFIX}/entities/{payload.get('id', payload.get('@id'))}"
    return web.Response(status=201, headers={"Location": location})


@routes.delete(PREFIX + "/entities/{entity_id}")
async def delete_temporal(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    await request.app[TEMPORAL].delete_entity(ctx, request.match_info["entity_id"])
    return web.Response(status=204)


@routes.post(PREFIX + "/entities/{entity_id}/attrs")
async def add_temporal_attrs(request: web.Request) -> web.Response:
    ctx, payload = await _payload(request)
    await request.app[TEMPORAL].add_attrs(ctx, request.match_info["entity_id"], payload)
    return web.Response(status=204)


@routes.delete(PREFIX + "/entities/{entity_id}/attrs/{attr}")
async def delete_temporal_attr(request: web.Request) -> web.Response:
    check_params(request, frozenset({"datasetId", "deleteAll"}))
    ctx = await read_context(request)
    every = request.query.get("deleteAll") == "true"
    dataset = request.query.get("datasetId")
    m = request.match_info
    await request.app[TEMPORAL].delete_attr(ctx, m["entity_id"], m["attr"], dataset, every)
    return web.Response(status=204)


@routes.patch(PREFIX + "/entities/{entity_id}/attrs/{attr}/{instance_id}")
async def modify_temporal_instance(request: web.Request) -> web.Response:
    ctx, payload = await _payload(request)
    m = request.match_info
    await request.app[TEMPORAL].modify_instance(
        ctx, m["entity_id"], m["attr"], m["instance_id"], payload
    )
    return web.Response(status=204)


@routes.delete(PREFIX + "/entities/{entity_id}/attrs/{attr}/{instance_id}")
async def delete_temporal_instance(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    m = request.match_info
    await request.app[TEMPORAL].delete_instance(ctx, m["entity_id"], m["attr"], m["instance_id"])
    return web.Response(status=204)
