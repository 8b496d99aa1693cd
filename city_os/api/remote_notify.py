"""Notifications context sources send this broker (§5.8.1.4): /ngsi-ld/ex/remote-notify.

Layer: api/. Two endpoints outside the NGSI-LD API, each the notification endpoint of something
this broker created elsewhere: ``remote-notify`` receives the notifications of the Subscription
copies at context sources (federation/subscription_relay.py relays them to the subscriber;
200 once stored), ``csource-notify`` those of the csourceSubscriptions that watch registrations
for a distributed Subscription (204; the Subscription is reconciled in the background).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from city_os.api.http import link_context, read_json, request_context, tenant_of
from city_os.errors import BadRequestData
from city_os.federation.distributed_subscriptions import (
    CSOURCE_NOTIFY,
    REMOTE_NOTIFY,
    DistributedSubscriptions,
)
from city_os.federation.subscription_relay import NotificationRelay

DISTRIBUTED_SUBSCRIPTIONS = web.AppKey("distributed_subscriptions", DistributedSubscriptions)
RELAY = web.AppKey("subscription_relay", NotificationRelay)
routes = web.RouteTableDef()


def _carried(payload: Any) -> Any:
    """The @context a JSON-LD notification's entities carry (the first one's)."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return data[0].get("@context")
    return None


@routes.post(REMOTE_NOTIFY)
async def remote_notification(request: web.Request) -> web.Response:
    payload = await read_json(request)
    ctx = await request_context(request, link_context(request) or _carried(payload))
    await request.app[RELAY].relay(ctx, payload)
    return web.Response(status=200)


@routes.post(CSOURCE_NOTIFY)
async def registrations_changed(request: web.Request) -> web.Response:
    subscription = request.query.get("subscription")
    if not subscription:
        raise BadRequestData("subscription: the query parameter naming the Subscription is missing")
    await request.app[DISTRIBUTED_SUBSCRIPTIONS].changed(tenant_of(request), subscription)
    return web.Response(status=204)
