"""NGSIv2 registrations: /v2/registrations, as far as city-os's context-source model allows.

Layer: ngsiv2/ (HTTP). city-os has no context-source registrations yet (the NGSI-LD
federation room is still to come: DESIGN.md, ``federation/``), so there is nothing to register
with or forward to: the list is empty, a single registration is not found, and creating one is
refused with Orion's 501 ``NotImplemented`` naming why, rather than storing a registration that
would never forward a request.
"""

from __future__ import annotations

from aiohttp import web

from city_os.errors import NgsiLdError, ResourceNotFound
from city_os.ngsiv2.http import TOTAL_COUNT, options, v2_json

routes = web.RouteTableDef()
V2 = "/v2/registrations"
WHY = (
    "context-source registrations are not available in city-os yet (no federation): "
    "registrations cannot be stored or forwarded to"
)


class NotImplementedYet(NgsiLdError):
    type_uri = "https://uri.etsi.org/ngsi-ld/errors/OperationNotSupported"
    status = 501
    title = "Not implemented"


@routes.get(V2)
async def list_registrations(request: web.Request) -> web.Response:
    headers = {TOTAL_COUNT: "0"} if "count" in options(request) else None
    return v2_json([], headers=headers)


@routes.post(V2)
async def create_registration(request: web.Request) -> web.Response:
    raise NotImplementedYet(WHY)


@routes.get(V2 + "/{registrationId}")
@routes.delete(V2 + "/{registrationId}")
async def one_registration(request: web.Request) -> web.Response:
    raise ResourceNotFound("The requested registration has not been found. Check id")


@routes.patch(V2 + "/{registrationId}")
async def update_registration(request: web.Request) -> web.Response:
    raise ResourceNotFound("The requested registration has not been found. Check id")
