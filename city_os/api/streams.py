"""The live stream of a subscription (city-os, not NGSI-LD): Server-Sent Events for web pages.

Layer: api/. ``GET /cityos/v1/subscriptions/{subscriptionId}/stream`` answers
``text/event-stream``: one event per notification of a subscription whose endpoint URI is
``urn:city-os:stream``, ``id:`` its sequence number, ``event: notification``, ``data:`` the
Notification as JSON (in the subscription's format and @context). A page that reconnects sends
``Last-Event-ID`` (browsers' EventSource does it by itself; ``?lastEventId=`` works too) and
receives what it missed within ``CITYOS_STREAM_RETENTION``. The subscription is read like
``GET /ngsi-ld/v1/subscriptions/{id}`` (tenant, access); another endpoint is a 400.
"""

from __future__ import annotations

from aiohttp import web

from city_os.api.http import check_params, read_context
from city_os.api.keys import STREAMS, SUBSCRIPTIONS
from city_os.errors import BadRequestData
from city_os.ngsild.subscription import STREAM_URI

routes = web.RouteTableDef()
STREAM = "/cityos/v1/subscriptions/{subscriptionId}/stream"
RETRY_MS = 2000  # how soon EventSource reconnects after a drop


def _last_event_id(request: web.Request) -> int:
    raw = request.headers.get("Last-Event-ID") or request.query.get("lastEventId") or "0"
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise BadRequestData(f"Last-Event-ID {raw[:40]!r} is not an event id of this stream")
    return int(raw)


@routes.get(STREAM)
async def subscription_stream(request: web.Request) -> web.StreamResponse:
    check_params(request, frozenset({"lastEventId"}))
    ctx = await read_context(request)
    sid = request.match_info["subscriptionId"]
    row = await request.app[SUBSCRIPTIONS].get(ctx, sid)
    if row.doc["notification"]["endpoint"]["uri"] != STREAM_URI:
        raise BadRequestData(f"subscription {sid}: its endpoint is not {STREAM_URI}")
    last = _last_event_id(request)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx: pass events on at once
        }
    )
    async with request.app[STREAMS].open(ctx.tenant, row.id, last) as stream:
        await response.prepare(request)
        await response.write(f"retry: {RETRY_MS}\n\n".encode())
        while True:
            event = await stream.next()
            if event is None:
                await response.write(b": keep-alive\n\n")
                continue
            await response.write(
                b"id: %d\nevent: notification\ndata: %s\n\n" % (event.seq, event.body)
            )
