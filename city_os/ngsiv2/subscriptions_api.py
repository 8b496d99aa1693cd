"""NGSIv2 subscription resources: /v2/subscriptions and /v2/subscriptions/{id}.

Layer: ngsiv2/ (HTTP). Subscriptions are the NGSI-LD subscriptions of ``SubscriptionService``
with a v2 face document (ngsiv2/subscriptions.py); their notifications are rendered by
ngsiv2/notify.py. Subscriptions made through NGSI-LD are listed too, in a v2 rendering of their
NGSI-LD members, and notify in NGSI-LD format. v2 ids are the NGSI-LD ids without the
``urn:ngsi-ld:Subscription:`` prefix.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from city_os.api.http import int_param
from city_os.api.keys import SETTINGS, SUBSCRIPTIONS
from city_os.core.subscriptions import FACE
from city_os.errors import BadRequestData, NonexistentTenant, ResourceNotFound
from city_os.ngsild.entity import parse_datetime
from city_os.ngsild.subscription import status as ld_status
from city_os.ngsiv2.http import TOTAL_COUNT, options, read_v2_json, v2_context, v2_json
from city_os.ngsiv2.ids import v2_id
from city_os.ngsiv2.subscriptions import (
    ID_PREFIX,
    expired,
    ld_subscription_id,
    to_ngsild,
    v2_subscription_id,
)
from city_os.ngsiv2.translate import utc_datetime
from city_os.store.postgres.subscriptions import SubscriptionRow

routes = web.RouteTableDef()
V2 = "/v2/subscriptions"
NOT_FOUND = "The requested subscription has not been found. Check id"


def _render(row: SubscriptionRow, now: str) -> dict[str, Any]:
    doc = row.doc
    face = doc.get(FACE)
    state = ld_status(doc, parse_datetime(now))
    if isinstance(face, dict) and "v2" in face:
        body: dict[str, Any] = dict(face["v2"])
        body["notification"] = dict(body["notification"])
    else:  # made through NGSI-LD: its members in v2 terms
        entities = [
            {
                **(
                    {"id": v2_id(s["id"])} if "id" in s else {"idPattern": s.get("idPattern", ".*")}
                ),
                "type": s["type"][0][0] if s.get("type") else None,
            }
            for s in doc.get("entities", [])
        ]
        body = {
            "subject": {
                "entities": entities,
                "condition": {"attrs": doc.get("watchedAttributes", [])},
            },
            "notification": {"http": {"url": doc["notification"]["endpoint"]["uri"]}},
        }
    out: dict[str, Any] = {"id": v2_subscription_id(row.id), **body}
    out["status"] = {"active": "active", "paused": "inactive", "expired": "expired"}.get(
        state, state
    )
    if isinstance(out.get("expires"), str) and expired(utc_datetime(out["expires"], "expires")):
        out["status"] = "expired"
    delivery = row.delivery
    if delivery is not None:
        note = out["notification"]
        note["timesSent"] = delivery.times_sent
        for key, value in (
            ("lastNotification", delivery.last_notification),
            ("lastSuccess", delivery.last_success),
            ("lastFailure", delivery.last_failure),
            ("lastFailureReason", delivery.last_failure_reason),
        ):
            if value is not None:
                note[key] = value
    return out


@routes.post(V2)
async def create_subscription(request: web.Request) -> web.Response:
    ctx = await v2_context(request)
    body, face = to_ngsild(await read_v2_json(request))
    body["id"] = ID_PREFIX + uuid.uuid4().hex[:24]
    sid = await request.app[SUBSCRIPTIONS].create(ctx, body, face=face)
    return web.Response(status=201, headers={"Location": f"{V2}/{v2_subscription_id(sid)}"})


@routes.get(V2)
async def list_subscriptions(request: web.Request) -> web.Response:
    ctx = await v2_context(request)
    limit = int_param(request, "limit", 20, 1, request.app[SETTINGS].max_page_size)
    offset = int_param(request, "offset", 0, 0, 2**31 - 1)
    count = "count" in options(request)
    try:
        rows, total, _ = await request.app[SUBSCRIPTIONS].query(ctx, limit, offset, count)
    except NonexistentTenant:
        rows, total = [], 0
    headers = {TOTAL_COUNT: str(total or 0)} if count else None
    return v2_json([_render(r, ctx.now) for r in rows], headers=headers)


async def _row(request: web.Request) -> tuple[Any, SubscriptionRow]:
    ctx = await v2_context(request)
    sid = ld_subscription_id(request.match_info["subscriptionId"])
    try:
        return ctx, await request.app[SUBSCRIPTIONS].get(ctx, sid)
    except (ResourceNotFound, NonexistentTenant):
        raise ResourceNotFound(NOT_FOUND) from None


@routes.get(V2 + "/{subscriptionId}")
async def retrieve_subscription(request: web.Request) -> web.Response:
    ctx, row = await _row(request)
    return v2_json(_render(row, ctx.now))


@routes.patch(V2 + "/{subscriptionId}")
async def update_subscription(request: web.Request) -> web.Response:
    """The members sent replace the stored ones; the result is checked as a whole."""
    ctx, row = await _row(request)
    fragment = await read_v2_json(request)
    face = row.doc.get(FACE)
    current = dict(face["v2"]) if isinstance(face, dict) and "v2" in face else None
    if current is None:
        raise BadRequestData("this subscription was made through NGSI-LD: update it there")
    if not isinstance(fragment, dict):
        raise BadRequestData("the payload must be a JSON object")
    merged = {**current, **fragment}
    body, new_face = to_ngsild(merged)
    # members the v2 fragment removes must be removed from the NGSI-LD document too
    for member in (
        "entities",
        "q",
        "geoQ",
        "watchedAttributes",
        "expiresAt",
        "throttling",
        "description",
    ):
        body.setdefault(member, None)
    body["isActive"] = merged.get("status", "active") != "inactive"
    body.pop("type", None)
    await request.app[SUBSCRIPTIONS].update(ctx, row.id, body, face=new_face)
    return web.Response(status=204)


@routes.delete(V2 + "/{subscriptionId}")
async def delete_subscription(request: web.Request) -> web.Response:
    ctx, row = await _row(request)
    await request.app[SUBSCRIPTIONS].delete(ctx, row.id)
    return web.Response(status=204)
