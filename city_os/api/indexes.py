"""Value index resources (city-os, not NGSI-LD): /cityos/v1/indexes.

Layer: api/. An attribute in a path is a term of the Link header's @context or its IRI
(URL-encoded); the tenant is the NGSILD-Tenant header.

    POST   /cityos/v1/indexes               {"attribute": name, "kind": "number"}: 202, built
                                            in the background (status building → ready)
    GET    /cityos/v1/indexes               the tenant's value indexes
    GET    /cityos/v1/indexes/{attribute}   one
    DELETE /cityos/v1/indexes/{attribute}   drop it
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from city_os.api.http import body_context, json_response, read_context, read_object, request_context
from city_os.api.keys import INDEXES
from city_os.core.entities import RequestContext
from city_os.store.postgres.indexes import ValueIndex

routes = web.RouteTableDef()
PREFIX = "/cityos/v1/indexes"
ATTRIBUTE = PREFIX + "/{attribute}"
_MEMBERS = {"attribute", "kind", "@context"}


def _body(index: ValueIndex, ctx: RequestContext) -> dict[str, Any]:
    body = {
        "attribute": ctx.terms.compact_attr(index.attr),
        "attributeIri": index.attr,
        "kind": index.kind,
        "status": index.status,
        "createdAt": index.created_at,
    }
    if index.error is not None:
        body["error"] = index.error
    return body


@routes.post(PREFIX)
async def create_index(request: web.Request) -> web.Response:
    payload = await read_object(request, _MEMBERS)
    ctx = await request_context(request, body_context(request, payload))
    index, created = await request.app[INDEXES].create(
        ctx, payload.get("attribute"), payload.get("kind", "number")
    )
    return json_response(
        _body(index, ctx),
        status=202 if created else 200,  # 202: being built, GET its Location for the status
        headers={"Location": f"{PREFIX}/{quote(index.attr, safe='')}"},
    )


@routes.get(PREFIX)
async def list_indexes(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    return json_response([_body(i, ctx) for i in await request.app[INDEXES].list(ctx)])


@routes.get(ATTRIBUTE)
async def retrieve_index(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    index = await request.app[INDEXES].get(ctx, request.match_info["attribute"])
    return json_response(_body(index, ctx))


@routes.delete(ATTRIBUTE)
async def delete_index(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    await request.app[INDEXES].drop(ctx, request.match_info["attribute"])
    return web.Response(status=204)
