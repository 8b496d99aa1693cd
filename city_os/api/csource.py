"""Context source registrations (§5.9, §5.10, §6.8-6.9): /csourceRegistrations[/{id}].

Layer: api/. The data-type resource handlers of api/resources.py, served by RegistrationService
(a payload that is not an object is BadRequestData here). The query
(§5.10.2) reads its selection from the parameters (``type``, ``id``, ``idPattern``, ``attrs``,
``q``, ``csf``, ``georel``/``geometry``/``coordinates``/``geoproperty``, ``timerel``/``timeAt``/
``endTimeAt``/``timeproperty``, ``scopeQ``) into a RegistrationFilter; its page carries
``NGSILD-Results-Count`` (``count=true``) and prev/next ``Link`` headers (§5.5.9).
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from city_os.api.http import JSONLD, csv_param
from city_os.api.keys import REGISTRATIONS
from city_os.api.resources import Found, Resource, resource_routes
from city_os.core.entities import RequestContext
from city_os.core.query import Page
from city_os.errors import BadRequestData
from city_os.federation.registrations_query import RegistrationFilter, TimeFilter
from city_os.ngsild.entity import check_entity_id, expand_attr_name, expand_type_name
from city_os.ngsild.query.entity_selection import Names, Selection
from city_os.ngsild.query.geo import parse_geoq
from city_os.ngsild.query.q import parse_q
from city_os.ngsild.query.scope import parse_scopeq
from city_os.temporal.params import parse_temporal

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


def _links(request: web.Request, page: Page, more: bool, media: str) -> list[str]:
    """prev/next links: the query's other parameters in their order, then limit and offset;
    typed ``media`` (application/ld+json, as the examples of §5.5.9 and the ETSI suite, 037_11,
    have them whatever the response's own media type)."""

    def link(offset: int, rel: str) -> str:
        params = [(k, v) for k, v in request.query.items() if k not in ("offset", "limit")]
        params += [("limit", str(page.limit)), ("offset", str(offset))]
        text = "&".join(
            f"{quote(k, safe=_LINK_SAFE)}={quote(v, safe=_LINK_SAFE)}" for k, v in params
        )
        return f'<{request.path.rstrip("/")}?{text}>; rel="{rel}"; type="{media}"'

    links = []
    if page.limit and page.offset > 0:
        links.append(link(max(page.offset - page.limit, 0), "prev"))
    if page.limit and more:
        links.append(link(page.offset + page.limit, "next"))
    return links


async def _query(request: web.Request, ctx: RequestContext, page: Page) -> Found:
    flt = registration_filter(request, ctx)
    service = request.app[REGISTRATIONS]
    return await service.query(ctx, flt, page.limit, page.offset, page.count)


REGISTRATION = Resource(
    path=PATH,
    id_name="registrationId",
    noun="registration",
    nouns="registrations",
    service=lambda request: request.app[REGISTRATIONS],
    query=_query,
    payload_error=BadRequestData,
    payload_name="a ContextSourceRegistration",
    fragment_name="a registration fragment",
    query_params=QUERY_PARAMS,
    retrieve_params=frozenset({"options", "lang", "local"}),
    links=_links,
    links_media=JSONLD,
)
routes = resource_routes(REGISTRATION, __name__)
