"""NGSIv2 entity resources: /v2/entities, /v2/entities/{id}, /attrs, /attrs/{attr}, /value.

Layer: ngsiv2/ (HTTP). Each handler translates the v2 request into an NGSI-LD operation of
``EntityService`` / ``QueryService`` (so validation, the outbox, history and access control
are the NGSI-LD ones) and the result back into v2.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from city_os.api.http import int_param
from city_os.api.keys import ENTITIES, SETTINGS
from city_os.core.entities import RequestContext
from city_os.errors import AlreadyExists, BadRequestData, ResourceNotFound
from city_os.ngsild.representation import EntityRecord
from city_os.ngsiv2.http import (
    Unprocessable,
    in_scope,
    options,
    output,
    read_scope,
    read_v2_json,
    v2_context,
    v2_json,
    write_scope,
)
from city_os.ngsiv2.ids import check_v2_name, ld_id
from city_os.ngsiv2.listing import list_response
from city_os.ngsiv2.translate import (
    attr_to_ld,
    attr_to_v2,
    attrs_body,
    attrs_to_ld,
    entity_to_ld,
    entity_to_v2,
    with_kept_metadata,
)
from city_os.ngsiv2.values import read_value, value_response

routes = web.RouteTableDef()
V2 = "/v2"
NOT_FOUND = "The requested entity has not been found. Check type and id"


async def fetch(request: web.Request, ctx: RequestContext, entity_id: str) -> EntityRecord:
    """The entity of a v2 URL (its ``type`` parameter and service path applied), else 404."""
    check_v2_name(entity_id, "entity id")
    try:
        record = await request.app[ENTITIES].retrieve(
            ctx, ld_id(entity_id), type_filter=request.query.get("type")
        )
    except ResourceNotFound:
        raise ResourceNotFound(NOT_FOUND) from None
    if not in_scope(record.scopes, read_scope(request)):
        raise ResourceNotFound(NOT_FOUND)
    return record


def _attr_payload(
    record: EntityRecord, ctx: RequestContext, attrs: dict[str, Any]
) -> dict[str, Any]:
    return {"type": ctx.terms.compact_type(record.types[0]), **attrs}


@routes.get(V2 + "/entities")
async def list_entities(request: web.Request) -> web.Response:
    ctx = await v2_context(request)
    q = request.query
    limit = int_param(request, "limit", 20, 1, request.app[SETTINGS].max_page_size)
    return await list_response(
        request,
        ctx,
        [{k: q[k] for k in ("id", "idPattern", "type", "typePattern") if k in q}],
        {k: q[k] for k in ("q", "mq", "georel", "geometry", "coords") if k in q},
        limit=limit,
        offset=int_param(request, "offset", 0, 0, 2**31 - 1),
    )


@routes.post(V2 + "/entities")
async def create_entity(request: web.Request) -> web.Response:
    ctx = await v2_context(request)
    opts = options(request)
    body = await read_v2_json(request)
    payload = entity_to_ld(body, key_values="keyValues" in opts)
    scope = write_scope(request)
    if scope is not None:
        payload["scope"] = scope
    service = request.app[ENTITIES]
    try:
        await service.create(ctx, payload)
    except AlreadyExists:
        if "upsert" not in opts:
            raise
        attrs = {k: v for k, v in payload.items() if k not in ("id", "type", "scope")}
        await service.append_attrs(ctx, payload["id"], attrs, overwrite=True)
        return web.Response(status=204)
    location = f"{V2}/entities/{quote(body['id'], safe=':')}?type={quote(payload['type'])}"
    return web.Response(status=201, headers={"Location": location})


@routes.get(V2 + "/entities/{entityId}")
async def retrieve_entity(request: web.Request) -> web.Response:
    ctx = await v2_context(request)
    out = output(request)
    record = await fetch(request, ctx, request.match_info["entityId"])
    return v2_json(entity_to_v2(record, ctx.terms, out))


@routes.delete(V2 + "/entities/{entityId}")
async def delete_entity(request: web.Request) -> web.Response:
    ctx = await v2_context(request)
    record = await fetch(request, ctx, request.match_info["entityId"])
    await request.app[ENTITIES].delete(ctx, record.id)
    return web.Response(status=204)


@routes.get(V2 + "/entities/{entityId}/attrs")
async def retrieve_attrs(request: web.Request) -> web.Response:
    ctx = await v2_context(request)
    out = output(request)
    record = await fetch(request, ctx, request.match_info["entityId"])
    return v2_json(attrs_body(record, ctx.terms, out))


@routes.post(V2 + "/entities/{entityId}/attrs")
async def append_attrs(request: web.Request) -> web.Response:
    """Append (or update) attributes. ``options=append`` (strict) appends the new ones and
    answers 422 naming those that exist already, which it leaves unchanged (as Orion does)."""
    ctx = await v2_context(request)
    opts = options(request)
    body = await read_v2_json(request)
    attrs = attrs_to_ld(body, key_values="keyValues" in opts)
    record = await fetch(request, ctx, request.match_info["entityId"])
    existing: list[str] = []
    if "append" in opts:
        names = {ctx.terms.compact_attr(i) for i in record.attrs}
        existing = sorted(names & set(attrs))
        attrs = {k: v for k, v in attrs.items() if k not in names}
    elif "overrideMetadata" not in opts:
        attrs = with_kept_metadata(record, ctx.terms, body, key_values="keyValues" in opts)
    if attrs:
        await request.app[ENTITIES].append_attrs(ctx, record.id, attrs, overwrite=True)
    if existing:
        raise Unprocessable(
            f"one or more of the attributes in the request already exist: "
            f"{request.match_info['entityId']} - [ {', '.join(existing)} ]"
        )
    return web.Response(status=204)


def _missing(record: EntityRecord, ctx: RequestContext, names: list[str], entity: str) -> None:
    present = {ctx.terms.compact_attr(i) for i in record.attrs}
    missing = [n for n in names if n not in present]
    if missing:
        raise Unprocessable(f"do not exist: {entity} - [ {', '.join(missing)} ]")


@routes.patch(V2 + "/entities/{entityId}/attrs")
async def update_attrs(request: web.Request) -> web.Response:
    """Update existing attributes: all must exist (else 422, nothing written)."""
    ctx = await v2_context(request)
    opts = options(request)
    body = await read_v2_json(request)
    attrs = attrs_to_ld(body, key_values="keyValues" in opts)
    entity = request.match_info["entityId"]
    record = await fetch(request, ctx, entity)
    _missing(record, ctx, list(attrs), entity)
    if "overrideMetadata" not in opts:
        attrs = with_kept_metadata(record, ctx.terms, body, key_values="keyValues" in opts)
    if attrs:
        await request.app[ENTITIES].update_attrs(ctx, record.id, attrs)
    return web.Response(status=204)


@routes.put(V2 + "/entities/{entityId}/attrs")
async def replace_attrs(request: web.Request) -> web.Response:
    """Replace every attribute (the entity keeps its id, type and service path)."""
    ctx = await v2_context(request)
    opts = options(request)
    attrs = attrs_to_ld(await read_v2_json(request), key_values="keyValues" in opts)
    record = await fetch(request, ctx, request.match_info["entityId"])
    payload = _attr_payload(record, ctx, attrs)
    if record.scopes:
        payload["scope"] = record.scopes
    await request.app[ENTITIES].replace(ctx, record.id, payload)
    return web.Response(status=204)


def _instances(record: EntityRecord, ctx: RequestContext, attr: str) -> list[dict[str, Any]]:
    check_v2_name(attr, "attribute name")
    for iri, instances in record.attrs.items():
        if ctx.terms.compact_attr(iri) == attr and instances:
            return instances
    raise ResourceNotFound("The entity does not have such an attribute")


@routes.get(V2 + "/entities/{entityId}/attrs/{attrName}")
async def retrieve_attr(request: web.Request) -> web.Response:
    ctx = await v2_context(request)
    out = output(request)
    record = await fetch(request, ctx, request.match_info["entityId"])
    instances = _instances(record, ctx, request.match_info["attrName"])
    return v2_json(attr_to_v2(instances, ctx.terms, out.metadata))


@routes.put(V2 + "/entities/{entityId}/attrs/{attrName}")
async def replace_attr(request: web.Request) -> web.Response:
    ctx = await v2_context(request)
    name = request.match_info["attrName"]
    inst = attr_to_ld(name, await read_v2_json(request))
    record = await fetch(request, ctx, request.match_info["entityId"])
    _instances(record, ctx, name)
    await request.app[ENTITIES].update_attrs(ctx, record.id, {name: inst})
    return web.Response(status=204)


@routes.delete(V2 + "/entities/{entityId}/attrs/{attrName}")
async def delete_attr(request: web.Request) -> web.Response:
    ctx = await v2_context(request)
    name = request.match_info["attrName"]
    record = await fetch(request, ctx, request.match_info["entityId"])
    _instances(record, ctx, name)
    await request.app[ENTITIES].delete_attr(ctx, record.id, name, None, False)
    return web.Response(status=204)


@routes.get(V2 + "/entities/{entityId}/attrs/{attrName}/value")
async def retrieve_value(request: web.Request) -> web.Response:
    ctx = await v2_context(request)
    record = await fetch(request, ctx, request.match_info["entityId"])
    instances = _instances(record, ctx, request.match_info["attrName"])
    return value_response(request, attr_to_v2(instances, ctx.terms)["value"])


@routes.put(V2 + "/entities/{entityId}/attrs/{attrName}/value")
async def replace_value(request: web.Request) -> web.Response:
    """A new value; the attribute keeps its type and metadata."""
    ctx = await v2_context(request)
    name = request.match_info["attrName"]
    value = await read_value(request)
    record = await fetch(request, ctx, request.match_info["entityId"])
    old = attr_to_v2(_instances(record, ctx, name), ctx.terms)
    kind = old["type"]
    if kind in ("Number", "Text", "Boolean", "StructuredValue"):
        kind = None  # implied by the value: the new value implies its own
    new = {"value": value, "metadata": old["metadata"], **({"type": kind} if kind else {})}
    await request.app[ENTITIES].update_attrs(ctx, record.id, {name: attr_to_ld(name, new)})
    return web.Response(status=204)


@routes.patch(V2 + "/entities")
@routes.put(V2 + "/entities")
async def entity_id_missing(request: web.Request) -> web.Response:
    raise BadRequestData(f"{request.method} needs an entity id: {V2}/entities/{{entityId}}")
