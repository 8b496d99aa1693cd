"""Context source registrations (§5.9, §5.10, §6.8-6.9): /csourceRegistrations[/{id}].

Layer: api/. Handlers parse the request, call RegistrationService and serialise. The query
(§5.10.2) reads its selection from the parameters (``type``, ``id``, ``idPattern``, ``attrs``,
``q``, ``csf``, ``georel``/``geometry``/``coordinates``/``geoproperty``, ``timerel``/``timeAt``/
``endTimeAt``/``timeproperty``, ``scopeQ``) into a RegistrationFilter; its page carries
``NGSILD-Results-Count`` (``count=true``) and prev/next ``Link`` headers (§5.5.9).
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from city_os.api.http import (
    JSON,
    JSONLD,
    body_context,
    check_params,
    csv_param,
    negotiate,
    option_set,
    read_context,
    read_json,
    request_context,
    respond,
)
from city_os.api.keys import REGISTRATIONS
from city_os.api.query import COUNT_HEADER, page_params
from city_os.core.entities import RequestContext
from city_os.core.query import Page
from city_os.errors import BadRequestData, InvalidRequest
from city_os.federation.registrations_query import RegistrationFilter, TimeFilter
from city_os.ngsild.entity import check_entity_id, expand_attr_name, expand_type_name
from city_os.ngsild.query.entity_selection import Names, Selection
from city_os.ngsild.query.geo import parse_geoq
from city_os.ngsild.query.q import parse_q
from city_os.ngsild.query.scope import parse_scopeq
from city_os.temporal.params import parse_temporal

routes = web.RouteTableDef()
PREFIX = "/ngsi-ld/v1"
PATH = PREFIX + "/csourceRegistrations"
QUERY_PARAMS = frozenset(
    {
        "id", "type", "idPattern", "attrs", "q", "csf", "georel", "geometry", "coordinates",
        "geoproperty", "timerel", "timeAt", "endTimeAt", "timeproperty", "scopeQ", "limit",
        "offset", "count", "options", "lang", "local",
    }
)  # fmt: skip
_LINK_SAFE = ":/.*-_~!$'()+;=@[]"
# At least one of them (§5.10.2.3: "neither Entity types nor Attribute names" is a 400; ids,
# idPatterns and the filters also select).
_SELECTORS = ("type", "attrs", "id", "idPattern", "q", "csf", "georel", "scopeQ", "timerel")


def _sys_attrs(request: web.Request) -> bool:
    options = option_set(request)
    unknown = options - {"sysAttrs"}
    if unknown:
        raise InvalidRequest(f"unknown options: {', '.join(sorted(unknown))}")
    return bool(options)


def _types(ctx: RequestContext, raw: str | None) -> list[str] | None:
    """``type``: entity types, separated by ``,`` (or ``;``/``|``; the groups of a type
    selection only widen what a registration may hold, so any named type is enough)."""
    if raw is None:
        return None
    names = [n.strip(" ()") for n in raw.replace(";", ",").replace("|", ",").split(",")]
    if not all(names):
        raise BadRequestData(f"type: {raw!r} is not a list of entity types")
    return [expand_type_name(ctx.terms, n) for n in names]


def registration_filter(request: web.Request, ctx: RequestContext) -> RegistrationFilter:
    """The RegistrationFilter of a query's parameters (§5.10.2)."""
    query = request.query
    types = _types(ctx, query.get("type"))
    attrs = csv_param(request, "attrs")
    if not any(query.get(p) for p in _SELECTORS):
        raise BadRequestData(
            "a registration query needs a selection: one of " + ", ".join(_SELECTORS) + " (§5.10.2)"
        )
    ids = [check_entity_id(i, "id") for i in csv_param(request, "id") or ()]
    q, csf, scope = query.get("q"), query.get("csf"), query.get("scopeQ")
    geo = parse_geoq(
        query.get("georel"), query.get("geometry"), query.get("coordinates"),
        query.get("geoproperty"),
    )  # fmt: skip
    temporal = parse_temporal(query)
    time = None
    if temporal.timerel is not None and temporal.time_at is not None:
        time = TimeFilter(
            temporal.timerel, temporal.time_at, temporal.end_time_at, temporal.timeproperty
        )
    selection = None
    if q is not None or geo is not None or scope is not None:
        selection = Selection(
            q=parse_q(q) if q is not None else None,
            geo=geo,
            scope=parse_scopeq(scope) if scope is not None else None,
        )
    names = Names(
        type=lambda t: expand_type_name(ctx.terms, t),
        attr=lambda a: expand_attr_name(ctx.terms, a),
    )
    return RegistrationFilter.build(
        names,
        ids=ids,
        id_pattern=query.get("idPattern"),
        types=types,
        attrs=[expand_attr_name(ctx.terms, a) for a in attrs or ()],
        selection=selection,
        csf=Selection(q=parse_q(csf)) if csf is not None else None,
        time=time,
    )


def _links(request: web.Request, page: Page, more: bool) -> list[str]:
    """prev/next links: the query's other parameters in their order, then limit and offset;
    typed application/ld+json, as the examples of §5.5.9 (and the ETSI suite, 037_11) have
    them whatever the response's own media type."""

    def link(offset: int, rel: str) -> str:
        params = [(k, v) for k, v in request.query.items() if k not in ("offset", "limit")]
        params += [("limit", str(page.limit)), ("offset", str(offset))]
        text = "&".join(
            f"{quote(k, safe=_LINK_SAFE)}={quote(v, safe=_LINK_SAFE)}" for k, v in params
        )
        return f'<{request.path.rstrip("/")}?{text}>; rel="{rel}"; type="{JSONLD}"'

    links = []
    if page.limit and page.offset > 0:
        links.append(link(max(page.offset - page.limit, 0), "prev"))
    if page.limit and more:
        links.append(link(page.offset + page.limit, "next"))
    return links


@routes.post(PATH)
async def create_registration(request: web.Request) -> web.Response:
    check_params(request, frozenset())
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise BadRequestData("the payload must be a JSON object (a ContextSourceRegistration)")
    ctx = await request_context(request, body_context(request, payload))
    rid = await request.app[REGISTRATIONS].create(ctx, payload)
    return web.Response(status=201, headers={"Location": f"{PATH}/{quote(rid, safe=':/')}"})


@routes.get(PATH)
async def query_registrations(request: web.Request) -> web.Response:
    check_params(request, QUERY_PARAMS)
    media = negotiate(request, (JSON, JSONLD))
    sys_attrs = _sys_attrs(request)
    ctx = await read_context(request)
    page = page_params(request)
    flt = registration_filter(request, ctx)
    service = request.app[REGISTRATIONS]
    found, total, more = await service.query(ctx, flt, page.limit, page.offset, page.count)
    body = [service.render(ctx, reg, sys_attrs) for reg in found]
    headers = {COUNT_HEADER: str(total)} if total is not None else {}
    response = respond(body, ctx, media, headers=headers)
    for link in _links(request, page, more):
        response.headers.add("Link", link)
    return response


@routes.get(PATH + "/{registrationId}")
async def retrieve_registration(request: web.Request) -> web.Response:
    check_params(request, frozenset({"options", "lang", "local"}))
    media = negotiate(request, (JSON, JSONLD))
    sys_attrs = _sys_attrs(request)
    ctx = await read_context(request)
    service = request.app[REGISTRATIONS]
    row = await service.get(ctx, request.match_info["registrationId"])
    return respond(service.render(ctx, row, sys_attrs), ctx, media)


@routes.patch(PATH + "/{registrationId}")
async def update_registration(request: web.Request) -> web.Response:
    check_params(request, frozenset())
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise BadRequestData("the payload must be a JSON object (a registration fragment)")
    ctx = await request_context(request, body_context(request, payload))
    await request.app[REGISTRATIONS].update(ctx, request.match_info["registrationId"], payload)
    return web.Response(status=204)


@routes.delete(PATH + "/{registrationId}")
async def delete_registration(request: web.Request) -> web.Response:
    check_params(request, frozenset())
    ctx = await read_context(request)
    await request.app[REGISTRATIONS].delete(ctx, request.match_info["registrationId"])
    return web.Response(status=204)
