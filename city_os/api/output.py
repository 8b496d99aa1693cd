"""Output options shared by retrieve and query: representation, projections, language, GeoJSON.

Layer: api/. Reads the query parameters once into a ``RenderOptions`` and writes entities back in
the negotiated media type.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from city_os.api.http import (
    GEOJSON,
    JSON,
    JSONLD,
    negotiate,
    prefers_plain_json,
    respond,
)
from city_os.core.entities import RequestContext
from city_os.core.slices import sliced
from city_os.errors import BadRequestData, InvalidRequest, ResourceNotFound
from city_os.ngsild.entity import expand_attr_name
from city_os.ngsild.linked import Join, render_flat, render_inline
from city_os.ngsild.query.projection import PROJECTED_MEMBERS, project
from city_os.ngsild.representation import EntityRecord, Format, RenderOptions, render, to_feature
from city_os.ngsild.versions import for_version, preferred_version

_FORMATS: dict[str, Format] = {
    "keyValues": "keyValues",
    "simplified": "keyValues",
    "concise": "concise",
    "normalized": "normalized",
}
_SPECIAL = PROJECTED_MEMBERS


def _names(ctx: RequestContext, names: list[str] | None) -> frozenset[str] | None:
    if names is None:
        return None
    return frozenset(n if n in _SPECIAL else expand_attr_name(ctx.terms, n) for n in names)


_OTHER_OPTIONS = {"sysAttrs", "noOverwrite", "replace", "update"}


def projection_list(request: web.Request, name: str) -> list[str] | None:
    """A projection list (attrs, pick, omit): ',' or '|' separated, no empty items."""
    raw = request.query.get(name)
    if raw is None:
        return None
    items = [item.strip() for item in raw.replace("|", ",").split(",")]
    if not raw.strip() or "" in items:
        raise BadRequestData(f"{name} has an empty item: {raw!r}")
    return items


def render_options(request: web.Request, ctx: RequestContext) -> RenderOptions:
    """Output options of retrieve and query (§6.3.7, §6.3.20); bad values → InvalidRequest."""
    options: set[str] = set()
    for raw in request.query.getall("options", []):
        options.update(o.strip() for o in raw.split(","))
    unknown = options - set(_FORMATS) - _OTHER_OPTIONS
    if unknown:
        raise InvalidRequest(f"unknown options: {', '.join(sorted(unknown))}")
    chosen = {_FORMATS[o] for o in options if o in _FORMATS}
    fmt_param = request.query.get("format")
    if fmt_param is not None:
        if fmt_param not in _FORMATS:
            raise InvalidRequest(f"unknown format {fmt_param!r}")
        chosen = {_FORMATS[fmt_param]}  # format takes precedence over options (§6.3.7)
    if len(chosen) > 1:
        raise BadRequestData(f"options {', '.join(sorted(chosen))} cannot be combined")
    fmt: Format = chosen.pop() if chosen else "normalized"
    pick, omit = request.query.get("pick"), request.query.get("omit")
    attrs = projection_list(request, "attrs")
    if attrs is not None and (pick is not None or omit is not None):
        raise BadRequestData("attrs cannot be combined with pick or omit")
    geometry = request.query.get("geometryProperty")
    opts = RenderOptions(
        format=fmt,
        sys_attrs="sysAttrs" in options,
        attrs=_names(ctx, [a for a in attrs if a not in _SPECIAL]) if attrs else None,
        lang=request.query.get("lang"),
        geometry_property=expand_attr_name(ctx.terms, geometry or "location"),
    )
    return with_projection(ctx, opts, pick, omit)


def with_projection(
    ctx: RequestContext, opts: RenderOptions, pick: str | None, omit: str | None
) -> RenderOptions:
    """``opts`` with the ``pick``/``omit`` lists (§4.21), nested ones for linked entities."""
    if pick is not None and omit is not None:
        raise BadRequestData("pick and omit cannot be used together")
    return project(opts, pick, omit, lambda term: expand_attr_name(ctx.terms, term))


def render_all(
    records: list[EntityRecord],
    ctx: RequestContext,
    opts: RenderOptions,
    join: Join | None = None,
    linked: dict[str, EntityRecord] | None = None,
) -> list[dict[str, Any]]:
    """Render entities, with their linked entities inline or after them (flat) on ``join``."""
    if join is None or linked is None:
        return [render(r, ctx.terms, opts) for r in records]
    if join.mode == "flat":
        return render_flat(records, linked, ctx.terms, opts, join.level)
    return [render_inline(r, linked, ctx.terms, opts, join.level) for r in records]


async def render_page(
    records: list[EntityRecord],
    ctx: RequestContext,
    opts: RenderOptions,
    join: Join | None = None,
    linked: dict[str, EntityRecord] | None = None,
) -> list[dict[str, Any]]:
    """``render_all`` for a query page, yielding to the event loop between time slices: a page
    of 1,000 entities costs tens of milliseconds of pure Python."""
    if join is not None and linked is not None:
        return render_all(records, ctx, opts, join, linked)
    return await sliced(lambda record: render(record, ctx.terms, opts), records)


def entity_response(
    request: web.Request,
    ctx: RequestContext,
    record: EntityRecord,
    opts: RenderOptions,
    join: Join | None = None,
    linked: dict[str, EntityRecord] | None = None,
) -> web.Response:
    media = negotiate(request, (JSON, JSONLD, GEOJSON))
    if media != GEOJSON and "geometryProperty" in request.query:
        raise BadRequestData("geometryProperty needs Accept: application/geo+json")
    if opts.attrs is not None and not opts.attrs & set(record.attrs):
        raise ResourceNotFound(f"entity {record.id} has none of the attributes requested")
    if media == GEOJSON:
        join = None
    bodies = render_all([record], ctx, opts, join, linked)
    # flat: the entity followed by those it links to; alone, it stays a single object
    body: Any = bodies if len(bodies) > 1 else bodies[0]
    if not body:
        raise ResourceNotFound(f"nothing of entity {record.id} is left after pick/omit")
    status, headers = 200, {}  # 203: reformatted for an earlier version (§4.3.6.8)
    version = preferred_version(request.headers.get("Prefer"))
    if version is not None and isinstance(body, dict):
        body, altered = for_version(body, version)
        status = 203 if altered else 200
        headers["Preference-Applied"] = f"ngsi-ld={version[0]}.{version[1]}"
    if media == GEOJSON:
        assert opts.geometry_property is not None
        body = to_feature(record, body, opts.geometry_property, ctx.terms)
        return respond(
            body,
            ctx,
            JSON,
            status=status,
            headers=headers,
            content_type=GEOJSON,
            embed_context=not prefers_plain_json(request),
        )
    return respond(body, ctx, media, status=status, headers=headers)
