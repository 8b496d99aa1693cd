"""API key resources (city-os): /cityos/v1/apikeys, for tenant admins.

Layer: api/. The tenant is the NGSILD-Tenant header; type names are terms of the body's
@context (or the Link header).

    POST   /cityos/v1/apikeys        {name, operations, types?, origin?, expiresAt?}: 201 with
                                     the key in ``key`` — shown this once, never again
    GET    /cityos/v1/apikeys        the tenant's keys (no secrets), with lastUsedAt
    GET    /cityos/v1/apikeys/{id}   one
    DELETE /cityos/v1/apikeys/{id}   revoke it (it stays listed, with revokedAt)
"""

from __future__ import annotations

from aiohttp import web

from city_os.api.guard import principal_of
from city_os.api.http import (
    body_context,
    json_response,
    read_context,
    read_json,
    request_context,
    tenant_of,
)
from city_os.api.keys import API_KEYS
from city_os.auth.apikeys import key_body
from city_os.errors import InvalidRequest

routes = web.RouteTableDef()
PREFIX = "/cityos/v1/apikeys"
ONE = PREFIX + "/{keyId}"


@routes.post(PREFIX)
async def create_key(request: web.Request) -> web.Response:
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise InvalidRequest("the payload must be a JSON object")
    ctx = await request_context(request, body_context(request, payload))
    stored, key = await request.app[API_KEYS].create(
        principal_of(request), tenant_of(request), payload, ctx.terms
    )
    return json_response(
        {**key_body(stored, ctx.terms), "key": key},
        status=201,
        headers={"Location": f"{PREFIX}/{stored.id}", "Cache-Control": "no-store"},
    )


@routes.get(PREFIX)
async def list_keys(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    found = await request.app[API_KEYS].find(principal_of(request), tenant_of(request))
    return json_response([key_body(k, ctx.terms) for k in found])


@routes.get(ONE)
async def retrieve_key(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    stored = await request.app[API_KEYS].get(
        principal_of(request), tenant_of(request), request.match_info["keyId"]
    )
    return json_response(key_body(stored, ctx.terms))


@routes.delete(ONE)
async def revoke_key(request: web.Request) -> web.Response:
    await request.app[API_KEYS].revoke(
        principal_of(request), tenant_of(request), request.match_info["keyId"]
    )
    return web.Response(status=204)
