"""Context-source registration subscriptions (§5.11, §6.10-6.11 for csource): /csourceSubscriptions.

Layer: api/. The data-type resource handlers of api/resources.py for the other kind of
subscription: the same request parsing and responses as api/subscriptions.py, served by the
SubscriptionService of context-source subscriptions (``CSOURCE_SUBSCRIPTIONS``), rendered with
the csource adjustments, paged with links typed application/ld+json (§5.5.9, ETSI 041_03) and
retrieved without a Preference-Applied header.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
from aiohttp import web

from city_os.api.http import JSONLD, read_body
from city_os.api.keys import CSOURCE_SUBSCRIPTIONS
from city_os.api.resources import no_headers, resource_routes
from city_os.api.subscriptions import SUBSCRIPTION, paged
from city_os.core.entities import RequestContext
from city_os.errors import InvalidRequest
from city_os.federation.csource_subscriptions import adjust_rendering
from city_os.federation.model import Doc

PATH = "/ngsi-ld/v1/csourceSubscriptions"


def _render(request: web.Request, ctx: RequestContext, row: Any, sys: bool) -> Doc:
    rendered = request.app[CSOURCE_SUBSCRIPTIONS].render(ctx, row, sys)
    return adjust_rendering(row.doc, rendered)


async def _untyped_body(request: web.Request) -> None:
    """A body sent without any Content-Type that is not JSON at all is an InvalidRequest
    (the first thing wrong with it); a JSON one goes on to the media type check (415)."""
    if request.headers.get("Content-Type") is None and request.can_read_body:
        try:
            orjson.loads(await read_body(request))
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None


CSOURCE_SUBSCRIPTION = replace(
    SUBSCRIPTION,
    path=PATH,
    noun="csource_subscription",
    nouns="csource_subscriptions",
    service=lambda request: request.app[CSOURCE_SUBSCRIPTIONS],
    query=paged(CSOURCE_SUBSCRIPTIONS),
    render=_render,
    links_media=JSONLD,
    retrieve_headers=no_headers,
    before_update=_untyped_body,
)
routes = resource_routes(CSOURCE_SUBSCRIPTION, __name__)
