"""Subscription resources (§5.8, §6.10-6.11): /subscriptions and /subscriptions/{subscriptionId}.

Layer: api/. The data-type resource handlers of api/resources.py, served by SubscriptionService;
the page of a query carries ``NGSILD-Results-Count`` (``count=true``) and prev/next ``Link``
headers (§5.5.9) typed as the response.
"""

from __future__ import annotations

from aiohttp import web

from city_os.api.keys import SUBSCRIPTIONS
from city_os.api.resources import Found, Query, Resource, resource_routes
from city_os.core.entities import RequestContext
from city_os.core.query import Page
from city_os.core.subscriptions import SubscriptionService
from city_os.errors import InvalidRequest
from city_os.ngsild.versions import preferred_version

PREFIX = "/ngsi-ld/v1"


def paged(key: web.AppKey[SubscriptionService]) -> Query:
    """The query of a kind of subscription: a page of them (no selection)."""

    async def query(request: web.Request, ctx: RequestContext, page: Page) -> Found:
        return await request.app[key].query(ctx, page.limit, page.offset, page.count)

    return query


def _retrieve_headers(request: web.Request) -> dict[str, str]:
    version = preferred_version(request.headers.get("Prefer"))
    if version is None:
        return {}
    # A Subscription has no fallbacks between versions (§4.3.6.8): shown as it is.
    return {"Preference-Applied": f"ngsi-ld={version[0]}.{version[1]}"}


SUBSCRIPTION = Resource(
    path=PREFIX + "/subscriptions",
    id_name="subscriptionId",
    noun="subscription",
    nouns="subscriptions",
    service=lambda request: request.app[SUBSCRIPTIONS],
    query=paged(SUBSCRIPTIONS),
    payload_error=InvalidRequest,
    payload_name="a Subscription",
    fragment_name="a Subscription fragment",
    query_params=frozenset({"limit", "offset", "count", "options"}),
    retrieve_params=frozenset({"options"}),
    retrieve_headers=_retrieve_headers,
    check_write_params=False,
)
routes = resource_routes(SUBSCRIPTION, __name__)
