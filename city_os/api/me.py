"""The caller's own resources (city-os): /cityos/v1/me and, for citizens, their data and consents.

Layer: api/. The tenant is the NGSILD-Tenant header. Everything below ``/me/`` needs a citizen
signed in at a citizens' IdP (401 without a token, 403 for other callers).

    GET    /cityos/v1/me                      who the broker takes the caller for
    GET    /cityos/v1/me/entities             the entities I am the data subject of (NGSI-LD
                                              representations; options, limit, offset)
    GET    /cityos/v1/me/consents             the consents I gave (revoked and expired too)
    POST   /cityos/v1/me/consents             grant {client, types, purpose, expiresAt}: 201
    GET    /cityos/v1/me/consents/{id}        one
    DELETE /cityos/v1/me/consents/{id}        revoke it, at once
    GET    /cityos/v1/me/accessLog            reads of my entities under a consent, newest first
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from city_os.api.guard import principal_of
from city_os.api.http import (
    JSON,
    JSONLD,
    body_context,
    json_response,
    negotiate,
    read_context,
    read_json,
    request_context,
    respond,
    tenant_of,
)
from city_os.api.keys import CONSENTS
from city_os.api.output import render_all, render_options
from city_os.auth.consent import consent_body, page
from city_os.auth.principal import Principal
from city_os.errors import InvalidRequest

routes = web.RouteTableDef()
PREFIX = "/cityos/v1/me"
CONSENT = PREFIX + "/consents/{consentId}"


def principal_body(principal: Principal, tenant: str) -> dict[str, Any]:
    key = principal.api_key
    return {
        "subject": principal.subject,
        "issuer": principal.issuer,
        "client": principal.client,
        "tenant": tenant,
        "roles": sorted(principal.roles_in(tenant)),
        "operator": principal.operator,
        "groups": sorted(principal.groups),
        "apiKey": key.key_id if key is not None else None,
        "citizen": principal.citizen,
        "anonymous": principal.anonymous,
        "authenticationOff": principal.unrestricted,
    }


def _page(request: web.Request) -> tuple[int, int]:
    return page(request.query.get("limit", "20"), request.query.get("offset", "0"))


@routes.get(PREFIX)
async def who_am_i(request: web.Request) -> web.Response:
    return json_response(principal_body(principal_of(request), tenant_of(request)))


@routes.get(PREFIX + "/entities")
async def my_entities(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    media = negotiate(request, (JSON, JSONLD))
    limit, offset = _page(request)
    records = await request.app[CONSENTS].my_entities(
        principal_of(request), ctx.tenant, limit, offset
    )
    return respond(render_all(records, ctx, render_options(request, ctx)), ctx, media)


@routes.get(PREFIX + "/consents")
async def my_consents(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    found = await request.app[CONSENTS].mine(principal_of(request), ctx.tenant)
    return json_response([consent_body(c, ctx.terms) for c in found])


@routes.post(PREFIX + "/consents")
async def grant_consent(request: web.Request) -> web.Response:
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise InvalidRequest("the payload must be a JSON object")
    ctx = await request_context(request, body_context(request, payload))
    stored = await request.app[CONSENTS].grant(
        principal_of(request), ctx.tenant, payload, ctx.terms
    )
    return json_response(
        consent_body(stored, ctx.terms),
        status=201,
        headers={"Location": f"{PREFIX}/consents/{stored.id}"},
    )


@routes.get(CONSENT)
async def my_consent(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    stored = await request.app[CONSENTS].one(
        principal_of(request), ctx.tenant, request.match_info["consentId"]
    )
    return json_response(consent_body(stored, ctx.terms))


@routes.delete(CONSENT)
async def revoke_consent(request: web.Request) -> web.Response:
    await request.app[CONSENTS].revoke(
        principal_of(request), tenant_of(request), request.match_info["consentId"]
    )
    return web.Response(status=204)


@routes.get(PREFIX + "/accessLog")
async def my_access_log(request: web.Request) -> web.Response:
    limit, offset = _page(request)
    entries = await request.app[CONSENTS].my_access_log(
        principal_of(request), tenant_of(request), limit, offset
    )
    return json_response(entries)
