"""Subscription resources (§5.8, §6.10-6.11): /subscriptions and /subscriptions/{subscriptionId}.

Layer: api/. Handlers parse the request, call SubscriptionService and serialise; the page of a
query carries ``NGSILD-Results-Count`` (``count=true``) and prev/next ``Link`` headers (§5.5.9).
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from city_os.api.http import (
    JSON,
    JSONLD,
    body_context,
    check_params,
    negotiate,
    option_set,
    read_context,
    read_json,
    request_context,
    respond,
)
from city_os.api.keys import SUBSCRIPTIONS
from city_os.api.query import COUNT_HEADER, page_params, pagination_links
from city_os.errors import InvalidRequest
from city_os.ngsild.versions import preferred_version

routes = web.RouteTableDef()
PREFIX = "/ngsi-ld/v1"
_QUERY_PARAMS = frozenset({"limit", "offset", "count", "options"})


def _sys_attrs(request: web.Request) -> bool:
    options = option_set(request)
    unknown = options - {"sysAttrs"}
    if unknown:
        raise InvalidRequest(f"unknown options: {', '.join(sorted(unknown))}")
    return bool(options)


@routes.post(PREFIX + "/subscriptions")
async def create_subscription(request: web.Request) -> web.Response:
    check_params(request, frozenset())
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise InvalidRequest("the payload must be a JSON object (a Subscription)")
    ctx = await request_context(request, body_context(request, payload))
    sid = await request.app[SUBSCRIPTIONS].create(ctx, payload)
    location = f"{PREFIX}/subscriptions/{quote(sid, safe=':/')}"
    return web.Response(status=201, headers={"Location": location})


@routes.get(PREFIX + "/subscriptions")
async def query_subscriptions(request: web.Request) -> web.Response:
    check_params(request, _QUERY_PARAMS)
    media = negotiate(request, (JSON, JSONLD))
    sys_attrs = _sys_attrs(request)
    ctx = await read_context(request)
    page = page_params(request)
    service = request.app[SUBSCRIPTIONS]
    rows, total, more = await service.query(ctx, page.limit, page.offset, page.count)
    body = [service.render(ctx, row, sys_attrs) for row in rows]
    headers = {COUNT_HEADER: str(total)} if total is not None else {}
    response = respond(body, ctx, media, headers=headers)
    for link in pagination_links(request, page, more, media):
        response.headers.add("Link", link)
    return response


@routes.get(PREFIX + "/subscriptions/{subscriptionId}")
async def retrieve_subscription(request: web.Request) -> web.Response:
    check_params(request, frozenset({"options"}))
    media = negotiate(request, (JSON, JSONLD))  # 406 before any lookup
    sys_attrs = _sys_attrs(request)
    ctx = await read_context(request)
    service = request.app[SUBSCRIPTIONS]
    row = await service.get(ctx, request.match_info["subscriptionId"])
    headers = {}
    version = preferred_version(request.headers.get("Prefer"))
    if version is not None:
        # A Subscription has no fallbacks between versions (§4.3.6.8): shown as it is.
        headers["Preference-Applied"] = f"ngsi-ld={version[0]}.{version[1]}"
    return respond(service.render(ctx, row, sys_attrs), ctx, media, headers=headers)


@routes.patch(PREFIX + "/subscriptions/{subscriptionId}")
async def update_subscription(request: web.Request) -> web.Response:
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise InvalidRequest("the payload must be a JSON object (a Subscription fragment)")
    ctx = await request_context(request, body_context(request, payload))
    await request.app[SUBSCRIPTIONS].update(ctx, request.match_info["subscriptionId"], payload)
    return web.Response(status=204)


@routes.delete(PREFIX + "/subscriptions/{subscriptionId}")
async def delete_subscription(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    await request.app[SUBSCRIPTIONS].delete(ctx, request.match_info["subscriptionId"])
    return web.Response(status=204)
