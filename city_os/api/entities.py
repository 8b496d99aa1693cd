"""NGSI-LD entity resources (§5.6, §6.4-6.7): /entities, /entities/{id}, /entities/{id}/attrs.

Layer: api/. Each handler parses the request, calls EntityService and serialises the result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from city_os.api.federation import ENTITY_MAPS, federated_write, written
from city_os.api.http import (
    GEOJSON,
    JSON,
    JSONLD,
    MERGE_PATCH,
    body_context,
    json_response,
    negotiate,
    option_set,
    read_context,
    read_json,
    request_context,
)
from city_os.api.keys import ENTITIES
from city_os.api.output import entity_response, render_options
from city_os.core.entities import RequestContext
from city_os.core.linked import linked_entities
from city_os.errors import BadRequestData, InvalidRequest
from city_os.federation.entitymap import HEADER as MAP_HEADER
from city_os.federation.entitymap import map_of_retrieve
from city_os.ngsild.entity import expand_attr_name
from city_os.ngsild.linked import check_projection, parse_join
from city_os.ngsild.merge import Outcome

routes = web.RouteTableDef()
PREFIX = "/ngsi-ld/v1"
Local = Callable[[Any], Awaitable[Any]]  # the local write of a (possibly stripped) payload


async def _payload(
    request: web.Request, *, merge_patch: bool = False
) -> tuple[RequestContext, Any]:
    allowed = (JSON, JSONLD, MERGE_PATCH) if merge_patch else (JSON, JSONLD)
    payload = await read_json(request, allowed=allowed)
    if not isinstance(payload, dict):
        raise InvalidRequest("the payload must be a JSON object")
    ctx = await request_context(request, body_context(request, payload))
    return ctx, payload


def _outcome_response(ctx: RequestContext, outcome: Outcome) -> web.Response:
    if not outcome.not_updated:
        return web.Response(status=204)
    return json_response(
        {
            "updated": [ctx.terms.compact_attr(i) for i in outcome.updated],
            "notUpdated": [
                {"attributeName": ctx.terms.compact_attr(i), "reason": reason}
                for i, reason in outcome.not_updated
            ],
        },
        status=207,
    )


# The three kinds of write below an entity: each is offered to the matching context sources
# (federated_write) with the request's own method, and answers 207 when a source failed.
async def _entity_write(
    request: web.Request, ctx: RequestContext, operation: str, body: Any, local: Local
) -> web.Response:
    """A write of the whole entity (/entities/{entityId}): 204."""
    entity_id = request.match_info["entityId"]
    _, fw = await federated_write(request, ctx, operation, request.method, entity_id, body, local)
    return written(fw, web.Response(status=204))


async def _attrs_write(
    request: web.Request, ctx: RequestContext, operation: str, body: Any, local: Local
) -> web.Response:
    """A write of several attributes (/entities/{entityId}/attrs): 204, or 207 naming the
    attributes not updated."""
    entity_id = request.match_info["entityId"]
    outcome, fw = await federated_write(
        request, ctx, operation, request.method, entity_id, body, local, path="/attrs"
    )
    return written(fw, _outcome_response(ctx, outcome or Outcome()))


async def _attr_write(
    request: web.Request, ctx: RequestContext, operation: str, body: Any, local: Local
) -> web.Response:
    """A write of one attribute (/entities/{entityId}/attrs/{attrId}): 204."""
    info = request.match_info
    _, fw = await federated_write(
        request,
        ctx,
        operation,
        request.method,
        info["entityId"],
        body,
        local,
        path="/attrs/" + quote(info["attrId"], safe=":"),
        attr=expand_attr_name(ctx.terms, info["attrId"]),
    )
    return written(fw, web.Response(status=204))


@routes.post(PREFIX + "/entities")
async def create_entity(request: web.Request) -> web.Response:
    ctx, payload = await _payload(request)
    raw_id = payload.get("id", payload.get("@id"))
    entity_id = raw_id if isinstance(raw_id, str) else ""
    service = request.app[ENTITIES]
    _, fw = await federated_write(
        request, ctx, "createEntity", "POST", entity_id, payload, lambda b: service.create(ctx, b)
    )
    location = f"{PREFIX}/entities/{quote(entity_id, safe=':/')}"
    return written(fw, web.Response(status=201, headers={"Location": location}))


@routes.put(PREFIX + "/entities")
@routes.patch(PREFIX + "/entities")
async def entity_id_missing(request: web.Request) -> web.Response:
    raise BadRequestData(f"{request.method} needs an entity id: {PREFIX}/entities/{{entityId}}")


@routes.get(PREFIX + "/entities/{entityId}")
async def retrieve_entity(request: web.Request) -> web.Response:
    negotiate(request, (JSON, JSONLD, GEOJSON))  # 406 before any lookup
    ctx = await read_context(request)
    opts = render_options(request, ctx)
    join = parse_join(
        request.query.get("join"), request.query.get("joinLevel"), ctx.limits.join_level
    )
    check_projection(opts, join)
    service = request.app[ENTITIES]
    record = await service.retrieve(
        ctx,
        request.match_info["entityId"],
        type_filter=request.query.get("type"),
        attrs=opts.attrs,
        local=request.query.get("local") == "true" or None,
    )
    linked = await linked_entities(service, ctx, [record], opts, join) if join else None
    response = entity_response(request, ctx, record, opts, join, linked)
    maps = request.app.get(ENTITY_MAPS)
    flag = request.query.get("entityMap")
    if flag not in (None, "true", "false"):
        raise BadRequestData("entityMap must be true or false")
    if maps is not None:
        location = await map_of_retrieve(
            maps, ctx, record.id, used=request.headers.get(MAP_HEADER), make=flag == "true",
            lifetime=request.query.get("entityMapLifetime"),
        )  # fmt: skip
        if location is not None:
            response.headers[MAP_HEADER] = location
    return response


@routes.put(PREFIX + "/entities/{entityId}")
async def replace_entity(request: web.Request) -> web.Response:
    ctx, payload = await _payload(request)
    entity_id, service = request.match_info["entityId"], request.app[ENTITIES]
    return await _entity_write(
        request, ctx, "replaceEntity", payload, lambda b: service.replace(ctx, entity_id, b)
    )


@routes.patch(PREFIX + "/entities/{entityId}")
async def merge_entity(request: web.Request) -> web.Response:
    ctx, payload = await _payload(request, merge_patch=True)
    entity_id, service = request.match_info["entityId"], request.app[ENTITIES]
    return await _entity_write(
        request, ctx, "mergeEntity", payload, lambda b: service.merge(ctx, entity_id, b)
    )


@routes.delete(PREFIX + "/entities/{entityId}")
async def delete_entity(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    entity_id, service = request.match_info["entityId"], request.app[ENTITIES]
    type_filter = request.query.get("type")
    return await _entity_write(
        request,
        ctx,
        "deleteEntity",
        None,
        lambda _: service.delete(ctx, entity_id, type_filter=type_filter),
    )


@routes.post(PREFIX + "/entities/{entityId}/attrs")
async def append_attrs(request: web.Request) -> web.Response:
    ctx, payload = await _payload(request)
    overwrite = "noOverwrite" not in option_set(request)
    entity_id, service = request.match_info["entityId"], request.app[ENTITIES]
    type_filter = request.query.get("type")
    return await _attrs_write(
        request,
        ctx,
        "appendAttrs",
        payload,
        lambda b: service.append_attrs(
            ctx, entity_id, b, overwrite=overwrite, type_filter=type_filter
        ),
    )


@routes.patch(PREFIX + "/entities/{entityId}/attrs")
async def update_attrs(request: web.Request) -> web.Response:
    ctx, payload = await _payload(request)
    entity_id, service = request.match_info["entityId"], request.app[ENTITIES]
    type_filter = request.query.get("type")
    return await _attrs_write(
        request,
        ctx,
        "updateAttrs",
        payload,
        lambda b: service.update_attrs(ctx, entity_id, b, type_filter=type_filter),
    )


@routes.patch(PREFIX + "/entities/{entityId}/attrs/{attrId}")
async def partial_update(request: web.Request) -> web.Response:
    ctx, payload = await _payload(request)
    info, service = request.match_info, request.app[ENTITIES]
    type_filter = request.query.get("type")
    return await _attr_write(
        request,
        ctx,
        "updateAttrs",
        payload,
        lambda b: service.partial_update(
            ctx, info["entityId"], info["attrId"], b, type_filter=type_filter
        ),
    )


@routes.put(PREFIX + "/entities/{entityId}/attrs/{attrId}")
async def replace_attr(request: web.Request) -> web.Response:
    ctx, payload = await _payload(request)
    info, service = request.match_info, request.app[ENTITIES]
    return await _attr_write(
        request,
        ctx,
        "replaceAttrs",
        payload,
        lambda b: service.replace_attr(ctx, info["entityId"], info["attrId"], b),
    )


@routes.delete(PREFIX + "/entities/{entityId}/attrs/{attrId}")
async def delete_attr(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    info = request.match_info
    delete_all = request.query.get("deleteAll", "false").lower()
    if delete_all not in ("true", "false"):
        raise BadRequestData("deleteAll must be true or false")
    service = request.app[ENTITIES]
    return await _attr_write(
        request,
        ctx,
        "deleteAttrs",
        None,
        lambda _: service.delete_attr(
            ctx,
            info["entityId"],
            info["attrId"],
            request.query.get("datasetId"),
            delete_all == "true",
            type_filter=request.query.get("type"),
        ),
    )
