"""Permission resources (city-os): /cityos/v1/permissions.

Layer: api/. Type names in a body are terms of its @context (inline with application/ld+json,
or the Link header); the tenant is the NGSILD-Tenant header. Who may do what is decided in
auth/permissions.py (tenant admins; sharers of one entity for that entity).

    POST   /cityos/v1/permissions          {assignee, action, target, personal?}: 201
    GET    /cityos/v1/permissions          ?entity=…: the tenant's permissions
    GET    /cityos/v1/permissions/{id}     one
    DELETE /cityos/v1/permissions/{id}     withdraw it
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from city_os.api.guard import principal_of
from city_os.api.http import (
    body_context,
    check_params,
    json_response,
    read_context,
    read_json,
    request_context,
    tenant_of,
)
from city_os.api.keys import PERMISSIONS
from city_os.auth.permissions import permission_body
from city_os.errors import InvalidRequest

routes = web.RouteTableDef()
PREFIX = "/cityos/v1/permissions"
ONE = PREFIX + "/{permissionId}"


@routes.post(PREFIX)
async def create_permission(request: web.Request) -> web.Response:
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise InvalidRequest("the payload must be a JSON object")
    ctx = await request_context(request, body_context(request, payload))
    stored = await request.app[PERMISSIONS].create(
        principal_of(request), tenant_of(request), payload, ctx.terms
    )
    return json_response(
        permission_body(stored, ctx.terms),
        status=201,
        headers={"Location": f"{PREFIX}/{quote(stored.permission.id, safe='')}"},
    )


@routes.get(PREFIX)
async def list_permissions(request: web.Request) -> web.Response:
    check_params(request, frozenset({"entity"}))
    ctx = await read_context(request)
    found = await request.app[PERMISSIONS].find(
        principal_of(request), tenant_of(request), request.query.get("entity"), None
    )
    return json_response([permission_body(p, ctx.terms) for p in found])


@routes.get(ONE)
async def retrieve_permission(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    stored = await request.app[PERMISSIONS].get(
        principal_of(request), tenant_of(request), request.match_info["permissionId"]
    )
    return json_response(permission_body(stored, ctx.terms))


@routes.delete(ONE)
async def delete_permission(request: web.Request) -> web.Response:
    await request.app[PERMISSIONS].delete(
        principal_of(request), tenant_of(request), request.match_info["permissionId"]
    )
    return web.Response(status=204)
