"""The caller's own resources (city-os): /cityos/v1/me and, for citizens, their data and consents.

Layer: api/.

    GET /cityos/v1/me     who the broker takes the caller for (subject, issuer, client, roles
                          in the NGSILD-Tenant, groups, API key, anonymous)
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from city_os.api.guard import principal_of
from city_os.api.http import json_response, tenant_of
from city_os.auth.principal import Principal

routes = web.RouteTableDef()
PREFIX = "/cityos/v1/me"


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


@routes.get(PREFIX)
async def who_am_i(request: web.Request) -> web.Response:
    return json_response(principal_body(principal_of(request), tenant_of(request)))
