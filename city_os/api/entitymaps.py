"""EntityMaps (§5.14, §6.32-6.34): GET /entityMaps (make one for a query) and
/entityMaps/{entityMapId} retrieve, update (expiresAt) and delete.

Layer: api/. Thin handlers over federation/entitymap.py; the query parameters are read as
GET /entities reads them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiohttp import web

from city_os.api.federation import ENTITY_MAPS
from city_os.api.http import JSON, check_params, json_response, read_context, read_json
from city_os.api.query import QUERY_PARAMS, query_of_params
from city_os.federation.entitymap import HEADER, EntityMapService, TimeWindow
from city_os.ngsild.entity import is_uri

routes = web.RouteTableDef()
PREFIX = "/ngsi-ld/v1/entityMaps"


def _service(request: web.Request) -> EntityMapService:
    return request.app[ENTITY_MAPS]


def _map_id(request: web.Request) -> str:
    return request.match_info["entityMapId"]


@routes.get(PREFIX)
async def create_entity_map(request: web.Request) -> web.Response:
    check_params(request, QUERY_PARAMS | {"entityMapLifetime"})
    ctx = await read_context(request)
    service = _service(request)
    doc = await service.create(
        ctx, query_of_params(request, ctx), request.query.get("entityMapLifetime")
    )
    return json_response(doc, status=201, headers={HEADER: service.location(doc["id"])})


@routes.get("/ngsi-ld/v1/temporal/entityMaps")
async def create_temporal_entity_map(request: web.Request) -> web.Response:
    temporal = {"timerel", "timeAt", "endTimeAt", "timeproperty", "entityMapLifetime"}
    check_params(request, QUERY_PARAMS | temporal)
    ctx = await read_context(request)
    q = request.query
    when = TimeWindow.parse(q.get("timerel"), q.get("timeAt"), q.get("endTimeAt"),
                            q.get("timeproperty"))  # fmt: skip
    service = _service(request)
    params = [(k, v) for k, v in ctx.params if k not in temporal]
    query = query_of_params(request, replace(ctx, params=tuple(params)))
    doc = await service.create_temporal(ctx, query, when, q.get("entityMapLifetime"))
    return json_response(doc, status=201, headers={HEADER: service.location(doc["id"])})


@routes.get(PREFIX + "/{entityMapId}")
async def retrieve_entity_map(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    service = _service(request)
    return json_response(service.render(await service.get(ctx.tenant, _map_id(request))))


@routes.patch(PREFIX + "/{entityMapId}")
async def update_entity_map(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    body: Any = await read_json(request, allowed=(JSON,))
    await _service(request).update(ctx.tenant, _map_id(request), body)
    return web.Response(status=204)


@routes.delete(PREFIX + "/{entityMapId}")
async def delete_entity_map(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    map_id = _map_id(request)
    if not is_uri(map_id):
        from city_os.errors import BadRequestData

        raise BadRequestData(f"EntityMap id {map_id!r} is not a URI")
    await _service(request).delete(ctx.tenant, map_id)
    return web.Response(status=204)
