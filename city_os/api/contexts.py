"""The @context resources (§5.13, §6.30-6.31): /jsonldContexts and /jsonldContexts/{contextId}.

Layer: api/. Handlers parse the query parameters and the NGSILD-Tenant header, call the
ContextRegistry and serialise; ``contextId`` is a local id or a (URL-encoded) context URL.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from city_os.api.http import (
    JSON,
    JSONLD,
    TENANT_HEADER,
    json_response,
    negotiate,
    read_json,
    tenant_of,
)
from city_os.api.keys import CONTEXT_REGISTRY
from city_os.core.context_registry import HOSTED_PATH, KINDS
from city_os.errors import BadRequestData

routes = web.RouteTableDef()
PREFIX = "/ngsi-ld/v1"


def _flag(request: web.Request, name: str) -> bool:
    raw = request.query.get(name)
    if raw is None or raw == "false":
        return False
    if raw == "true":
        return True
    raise BadRequestData(f"parameter {name} must be true or false, not {raw!r}")


def _kind(request: web.Request) -> str | None:
    kind = request.query.get("kind")
    if kind is not None and kind not in KINDS:
        raise BadRequestData(f"parameter kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return kind


@routes.post(PREFIX + "/jsonldContexts")
async def add_context(request: web.Request) -> web.Response:
    payload = await read_json(request)
    local_id = await request.app[CONTEXT_REGISTRY].add(payload, tenant_of(request))
    return web.Response(status=201, headers={"Location": HOSTED_PATH + local_id})


@routes.get(PREFIX + "/jsonldContexts")
async def list_contexts(request: web.Request) -> web.Response:
    details, kind = _flag(request, "details"), _kind(request)
    found = await request.app[CONTEXT_REGISTRY].list(tenant_of(request), kind, details)
    return json_response(found)


@routes.get(PREFIX + "/jsonldContexts/{contextId}")
async def serve_context(request: web.Request) -> web.Response:
    details = _flag(request, "details")
    media = JSON if details else negotiate(request, (JSON, JSONLD))
    # Without NGSILD-Tenant the URL is being dereferenced: every context is public that way.
    tenant = tenant_of(request) if TENANT_HEADER in request.headers else None
    body = await request.app[CONTEXT_REGISTRY].serve(
        request.match_info["contextId"], tenant, details
    )
    return web.Response(body=orjson.dumps(body), content_type=media)


@routes.delete(PREFIX + "/jsonldContexts/{contextId}")
async def delete_context(request: web.Request) -> web.Response:
    reload = _flag(request, "reload")
    await request.app[CONTEXT_REGISTRY].delete(
        request.match_info["contextId"], tenant_of(request), reload
    )
    return web.Response(status=204)
