"""Discovery resources (§5.7.5-5.7.10, §6.25-6.28): /types, /types/{type}, /attributes,
/attributes/{attrId}.

Layer: api/. Only the query parameters the spec defines for each resource are accepted
(§6.3.20: anything else is 400 InvalidRequest).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from city_os.api.http import check_params, negotiate, read_context, respond
from city_os.api.keys import DISCOVERY
from city_os.core.discovery import DiscoveryService
from city_os.core.entities import RequestContext
from city_os.errors import BadRequestData

routes = web.RouteTableDef()
PREFIX = "/ngsi-ld/v1"
_LIST_PARAMS = frozenset({"details", "local", "count"})
_ITEM_PARAMS = frozenset({"local"})
# (service, request context, details) -> the response body
Lookup = Callable[[DiscoveryService, RequestContext, bool], Awaitable[Any]]


def _details(request: web.Request, allowed: frozenset[str]) -> bool:
    check_params(request, allowed)
    raw = request.query.get("details", "false")
    if raw not in ("true", "false"):
        raise BadRequestData("details must be true or false")
    return raw == "true"


async def _discover(request: web.Request, params: frozenset[str], call: Lookup) -> web.Response:
    ctx = await read_context(request)
    details = _details(request, params)
    body = await call(request.app[DISCOVERY], ctx, details)
    return respond(body, ctx, negotiate(request))


@routes.get(PREFIX + "/types")
async def entity_types(request: web.Request) -> web.Response:
    return await _discover(request, _LIST_PARAMS, lambda d, c, det: d.types(c, details=det))


@routes.get(PREFIX + "/types/{type}")
async def entity_type(request: web.Request) -> web.Response:
    name = request.match_info["type"]
    return await _discover(request, _ITEM_PARAMS, lambda d, c, _: d.type_info(c, name))


@routes.get(PREFIX + "/attributes")
async def attributes(request: web.Request) -> web.Response:
    return await _discover(request, _LIST_PARAMS, lambda d, c, det: d.attributes(c, details=det))


@routes.get(PREFIX + "/attributes/{attrId}")
async def attribute(request: web.Request) -> web.Response:
    name = request.match_info["attrId"]
    return await _discover(request, _ITEM_PARAMS, lambda d, c, _: d.attribute(c, name))
