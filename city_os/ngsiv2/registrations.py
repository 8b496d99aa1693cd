"""NGSIv2 registrations: /v2/registrations and /v2/registrations/{id}.

Layer: ngsiv2/ (HTTP). Registrations are the NGSI-LD context source registrations of
``RegistrationService`` (federation/), mapped by ngsiv2/registrations_map.py: a v2 registration
is visible in NGSI-LD and the reverse, and the distributed operations consult both alike. v2
ids are the NGSI-LD ids without the ``urn:ngsi-ld:ContextSourceRegistration:`` prefix; a new
v2 registration gets a 24-hex-digit id, as Orion gives.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiohttp import web

from city_os.api.http import int_param
from city_os.api.keys import REGISTRATIONS
from city_os.errors import NonexistentTenant, ResourceNotFound
from city_os.federation.model import Registration
from city_os.ngsiv2.http import TOTAL_COUNT, options, read_v2_json, v2_context, v2_json, write_scope
from city_os.ngsiv2.registrations_map import (
    ld_registration_id,
    to_ngsild,
    to_v2,
    v2_registration_id,
)

routes = web.RouteTableDef()
V2 = "/v2/registrations"
NOT_FOUND = "The requested registration has not been found. Check id"


async def _one(request: web.Request) -> Registration:
    ctx = await v2_context(request)
    rid = ld_registration_id(request.match_info["registrationId"])
    try:
        row = await request.app[REGISTRATIONS].get(ctx, rid)
    except (ResourceNotFound, NonexistentTenant):
        raise ResourceNotFound(NOT_FOUND) from None
    return Registration.from_doc(row.doc)


@routes.get(V2)
async def list_registrations(request: web.Request) -> web.Response:
    opts = options(request)
    ctx = await v2_context(request)
    limit = int_param(request, "limit", 20, 1, 1000)
    offset = int_param(request, "offset", 0, 0, 2**31 - 1)
    regs = await request.app[REGISTRATIONS].registrations(ctx.tenant)
    now = datetime.now(UTC)
    terms = ctx.terms
    body = [to_v2(r, terms.compact_type, terms.compact_attr, now) for r in regs]
    headers = {TOTAL_COUNT: str(len(body))} if "count" in opts else None
    return v2_json(body[offset : offset + limit], headers=headers)


@routes.post(V2)
async def create_registration(request: web.Request) -> web.Response:
    body = await read_v2_json(request)
    ctx = await v2_context(request)
    ld = to_ngsild(body, write_scope(request))
    ld.setdefault("id", ld_registration_id(uuid.uuid4().hex[:24]))
    rid = await request.app[REGISTRATIONS].create(ctx, ld)
    return web.Response(status=201, headers={"Location": f"{V2}/{v2_registration_id(rid)}"})


@routes.get(V2 + "/{registrationId}")
async def retrieve_registration(request: web.Request) -> web.Response:
    reg = await _one(request)
    terms = (await v2_context(request)).terms
    return v2_json(to_v2(reg, terms.compact_type, terms.compact_attr, datetime.now(UTC)))


@routes.patch(V2 + "/{registrationId}")
async def update_registration(request: web.Request) -> web.Response:
    body = await read_v2_json(request)
    reg = await _one(request)
    ctx = await v2_context(request)
    await request.app[REGISTRATIONS].update(ctx, reg.id, to_ngsild(body, None, update=True))
    return web.Response(status=204)


@routes.delete(V2 + "/{registrationId}")
async def delete_registration(request: web.Request) -> web.Response:
    reg = await _one(request)
    await request.app[REGISTRATIONS].delete(await v2_context(request), reg.id)
    return web.Response(status=204)
