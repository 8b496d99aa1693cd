"""Web Push set-up (city-os, not NGSI-LD): GET /cityos/v1/webpush/key.

Layer: api/. A browser subscribes with its push service using the platform's VAPID public key
(``applicationServerKey``, base64url), then creates an NGSI-LD subscription whose endpoint is
the push service URL with ``webpush.p256dh`` and ``webpush.auth`` in ``notifierInfo``
(docs/notifications.md). Every replica reads the same key (store/postgres/webpush.py).
"""

from __future__ import annotations

from aiohttp import web

from city_os.api.http import json_response
from city_os.api.keys import POOL
from city_os.notifier.channels.webpush import public_key_of
from city_os.store.postgres.webpush import vapid_private_key

routes = web.RouteTableDef()
KEY = "/cityos/v1/webpush/key"


@routes.get(KEY)
async def webpush_key(request: web.Request) -> web.Response:
    public = public_key_of(await vapid_private_key(request.app[POOL]))
    return json_response({"publicKey": public})
