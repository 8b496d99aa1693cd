"""Context-source registration subscriptions (§5.11, §6.10-6.11 for csource): /csourceSubscriptions.

Layer: api/. The handlers of api/subscriptions.py for the other kind of subscription: the same
request parsing and responses, served by the SubscriptionService of context-source
subscriptions (``CSOURCE_SUBSCRIPTIONS``).
"""

from __future__ import annotations

from urllib.parse import quote

import orjson
from aiohttp import web

from city_os.api.http import (
    JSON,
    JSONLD,
    body_context,
    check_params,
    negotiate,
    read_body,
    read_context,
    read_json,
    request_context,
    respond,
)
from city_os.api.keys import CSOURCE_SUBSCRIPTIONS
from city_os.api.query import COUNT_HEADER, page_params, pagination_links
from city_os.api.subscriptions import _sys_attrs
from city_os.core.entities import RequestContext
from city_os.errors import InvalidRequest
from city_os.federation.csource_subscriptions import adjust_rendering
from city_os.federation.model import Doc
from city_os.store.postgres.subscriptions import SubscriptionRow

routes = web.RouteTableDef()
PATH = "/ngsi-ld/v1/csourceSubscriptions"
_QUERY_PARAMS = frozenset({"limit", "offset", "count", "options"})


def _render(request: web.Request, ctx: RequestContext, row: SubscriptionRow, sys: bool) -> Doc:
    rendered = request.app[CSOURCE_SUBSCRIPTIONS].render(ctx, row, sys)
    return adjust_rendering(row.doc, rendered)


@routes.post(PATH)
async def create_csource_subscription(request: web.Request) -> web.Response:
    check_params(request, frozenset())
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise InvalidRequest("the payload must be a JSON object (a Subscription)")
    ctx = await request_context(request, body_context(request, payload))
    sid = await request.app[CSOURCE_SUBSCRIPTIONS].create(ctx, payload)
    return web.Response(status=201, headers={"Location": f"{PATH}/{quote(sid, safe=':/')}"})


@routes.get(PATH)
async def query_csource_subscriptions(request: web.Request) -> web.Response:
    check_params(request, _QUERY_PARAMS)
    media = negotiate(request, (JSON, JSONLD))
    sys_attrs = _sys_attrs(request)
    ctx = await read_context(request)
    page = page_params(request)
    service = request.app[CSOURCE_SUBSCRIPTIONS]
    rows, total, more = await service.query(ctx, page.limit, page.offset, page.count)
    body = [_render(request, ctx, row, sys_attrs) for row in rows]
    headers = {COUNT_HEADER: str(total)} if total is not None else {}
    response = respond(body, ctx, media, headers=headers)
    for link in pagination_links(request, page, more, JSONLD):  # as in §5.5.9 (041_03)
        response.headers.add("Link", link)
    return response


@routes.get(PATH + "/{subscriptionId}")
async def retrieve_csource_subscription(request: web.Request) -> web.Response:
    check_params(request, frozenset({"options"}))
    media = negotiate(request, (JSON, JSONLD))
    sys_attrs = _sys_attrs(request)
    ctx = await read_context(request)
    row = await request.app[CSOURCE_SUBSCRIPTIONS].get(ctx, request.match_info["subscriptionId"])
    return respond(_render(request, ctx, row, sys_attrs), ctx, media)


async def _untyped_body(request: web.Request) -> None:
    """A body sent without any Content-Type that is not JSON at all is an InvalidRequest
    (the first thing wrong with it); a JSON one goes on to the media type check (415)."""
    if request.headers.get("Content-Type") is None and request.can_read_body:
        try:
            orjson.loads(await read_body(request))
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None


@routes.patch(PATH + "/{subscriptionId}")
async def update_csource_subscription(request: web.Request) -> web.Response:
    await _untyped_body(request)
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise InvalidRequest("the payload must be a JSON object (a Subscription fragment)")
    ctx = await request_context(request, body_context(request, payload))
    sid = request.match_info["subscriptionId"]
    await request.app[CSOURCE_SUBSCRIPTIONS].update(ctx, sid, payload)
    return web.Response(status=204)


@routes.delete(PATH + "/{subscriptionId}")
async def delete_csource_subscription(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    await request.app[CSOURCE_SUBSCRIPTIONS].delete(ctx, request.match_info["subscriptionId"])
    return web.Response(status=204)
