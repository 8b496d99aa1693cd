"""The handlers of a data-type resource: create, query, retrieve, update and delete (§6.8-6.11).

Layer: api/. Subscriptions, context source registrations and context source subscriptions are
served the same way: a JSON object is POSTed to the collection (201 with Location), the
collection is paged (``NGSILD-Results-Count`` with ``count=true``, prev/next ``Link``), one is
retrieved, merge-PATCHed (204) or deleted (204). A ``Resource`` names the differences each kind
keeps on purpose: the error of a payload that is not an object (BadRequestData for
registrations, InvalidRequest for subscriptions, as the ETSI suite reads §6.3.4), the
parameters, the selection of a query, the rendering, the media type of the paging links and
the extra headers of a retrieve. ``resource_routes`` makes the five handlers of one kind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
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
from city_os.api.query import COUNT_HEADER, page_params, pagination_links
from city_os.core.entities import RequestContext
from city_os.core.query import Page
from city_os.errors import InvalidRequest, NgsiLdError

Doc = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.Response]]


class ResourceService(Protocol):
    """What the handlers ask of a kind's service (the query is the kind's own)."""

    async def create(self, ctx: RequestContext, body: object) -> str: ...
    async def get(self, ctx: RequestContext, rid: str) -> Any: ...
    async def update(self, ctx: RequestContext, rid: str, body: object) -> None: ...
    async def delete(self, ctx: RequestContext, rid: str) -> None: ...
    def render(self, ctx: RequestContext, row: Any, sys_attrs: bool) -> Doc: ...


# One page of a query: (found, total with count=true, whether more follow).
Found = tuple[Sequence[Any], int | None, bool]
Query = Callable[[web.Request, RequestContext, Page], Awaitable[Found]]
Render = Callable[[web.Request, RequestContext, Any, bool], Doc]
Links = Callable[[web.Request, Page, bool, str], list[str]]


def sys_attrs(request: web.Request) -> bool:
    """``options=sysAttrs``, the only option of a data-type resource."""
    options = option_set(request)
    unknown = options - {"sysAttrs"}
    if unknown:
        raise InvalidRequest(f"unknown options: {', '.join(sorted(unknown))}")
    return bool(options)


def no_headers(request: web.Request) -> dict[str, str]:
    return {}


async def no_check(request: web.Request) -> None:
    return None


@dataclass(frozen=True)
class Resource:
    path: str  # the collection, e.g. /ngsi-ld/v1/subscriptions
    id_name: str  # the match_info name of one, e.g. subscriptionId
    noun: str  # one, in the handlers' names, e.g. subscription
    nouns: str  # many, e.g. subscriptions
    service: Callable[[web.Request], ResourceService]
    query: Query
    payload_error: type[NgsiLdError]  # a payload that is not a JSON object
    payload_name: str  # what the payload should be, e.g. "a Subscription"
    fragment_name: str  # what an update's payload should be
    query_params: frozenset[str]
    retrieve_params: frozenset[str]
    render: Render | None = None  # None: the service's own
    links: Links = pagination_links  # (request, page, more, media) -> Link values
    links_media: str | None = None  # the media type of the links; None: the response's
    retrieve_headers: Callable[[web.Request], dict[str, str]] = no_headers
    before_update: Callable[[web.Request], Awaitable[None]] = no_check
    # Whether update and delete refuse query parameters (registrations do; subscriptions
    # never checked them and are left as they were).
    check_write_params: bool = True

    def rendered(self, request: web.Request, ctx: RequestContext, row: Any, sys: bool) -> Doc:
        if self.render is not None:
            return self.render(request, ctx, row, sys)
        return self.service(request).render(ctx, row, sys)

    async def payload(self, request: web.Request, name: str) -> tuple[Doc, RequestContext]:
        payload = await read_json(request)
        if not isinstance(payload, dict):
            raise self.payload_error(f"the payload must be a JSON object ({name})")
        return payload, await request_context(request, body_context(request, payload))


def _named(handler: Handler, name: str, module: str) -> Handler:
    """The handler under a name of its own (the OpenAPI route check reports it)."""
    handler.__name__ = handler.__qualname__ = name
    handler.__module__ = module
    return handler


def resource_routes(kind: Resource, module: str) -> web.RouteTableDef:
    """The five routes of ``kind``, their handlers named as if written in ``module``."""
    routes = web.RouteTableDef()
    one = kind.path + "/{" + kind.id_name + "}"

    async def create(request: web.Request) -> web.Response:
        check_params(request, frozenset())
        payload, ctx = await kind.payload(request, kind.payload_name)
        rid = await kind.service(request).create(ctx, payload)
        location = f"{kind.path}/{quote(rid, safe=':/')}"
        return web.Response(status=201, headers={"Location": location})

    async def query(request: web.Request) -> web.Response:
        check_params(request, kind.query_params)
        media = negotiate(request, (JSON, JSONLD))
        sys = sys_attrs(request)
        ctx = await read_context(request)
        page = page_params(request)
        found, total, more = await kind.query(request, ctx, page)
        body = [kind.rendered(request, ctx, row, sys) for row in found]
        headers = {COUNT_HEADER: str(total)} if total is not None else {}
        response = respond(body, ctx, media, headers=headers)
        for link in kind.links(request, page, more, kind.links_media or media):
            response.headers.add("Link", link)
        return response

    async def retrieve(request: web.Request) -> web.Response:
        check_params(request, kind.retrieve_params)
        media = negotiate(request, (JSON, JSONLD))  # 406 before any lookup
        sys = sys_attrs(request)
        ctx = await read_context(request)
        row = await kind.service(request).get(ctx, request.match_info[kind.id_name])
        body = kind.rendered(request, ctx, row, sys)
        return respond(body, ctx, media, headers=kind.retrieve_headers(request))

    async def update(request: web.Request) -> web.Response:
        if kind.check_write_params:
            check_params(request, frozenset())
        await kind.before_update(request)
        payload, ctx = await kind.payload(request, kind.fragment_name)
        await kind.service(request).update(ctx, request.match_info[kind.id_name], payload)
        return web.Response(status=204)

    async def delete(request: web.Request) -> web.Response:
        if kind.check_write_params:
            check_params(request, frozenset())
        ctx = await read_context(request)
        await kind.service(request).delete(ctx, request.match_info[kind.id_name])
        return web.Response(status=204)

    routes.post(kind.path)(_named(create, f"create_{kind.noun}", module))
    routes.get(kind.path)(_named(query, f"query_{kind.nouns}", module))
    routes.get(one)(_named(retrieve, f"retrieve_{kind.noun}", module))
    routes.patch(one)(_named(update, f"update_{kind.noun}", module))
    routes.delete(one)(_named(delete, f"delete_{kind.noun}", module))
    return routes
