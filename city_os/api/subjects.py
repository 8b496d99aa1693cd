"""Data subjects of personal entities (city-os): /cityos/v1/dataSubjects/{entityId}.

Layer: api/. Staff who may write an entity name the citizen it is about (``iss`` and ``sub`` at a
citizens' IdP); from then on the entity is personal data (docs/access-control.md).

    PUT    /cityos/v1/dataSubjects/{entityId}   {issuer, subject}: 204
    GET    /cityos/v1/dataSubjects/{entityId}   {issuer, subject}
    DELETE /cityos/v1/dataSubjects/{entityId}   the entity is no longer personal data
"""

from __future__ import annotations

from aiohttp import web

from city_os.api.guard import principal_of
from city_os.api.http import json_response, read_object, tenant_of
from city_os.api.keys import CONSENTS

routes = web.RouteTableDef()
ONE = "/cityos/v1/dataSubjects/{entityId}"


@routes.put(ONE)
async def put_subject(request: web.Request) -> web.Response:
    body = await read_object(request, {"issuer", "subject"})
    await request.app[CONSENTS].set_subject(
        principal_of(request), tenant_of(request), request.match_info["entityId"], body
    )
    return web.Response(status=204)


@routes.get(ONE)
async def get_subject(request: web.Request) -> web.Response:
    issuer, subject = await request.app[CONSENTS].get_subject(
        principal_of(request), tenant_of(request), request.match_info["entityId"]
    )
    return json_response({"issuer": issuer, "subject": subject})


@routes.delete(ONE)
async def delete_subject(request: web.Request) -> web.Response:
    await request.app[CONSENTS].delete_subject(
        principal_of(request), tenant_of(request), request.match_info["entityId"]
    )
    return web.Response(status=204)
