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
    csv_param,
    negotiate,
    option_set,
    prefers_plain_json,
    respond,
)
from city_os.core.entities import RequestContext
from city_os.errors import BadRequestData
from city_os.ngsild.entity import expand_attr_name
from city_os.ngsild.representation import EntityRecord, Format, RenderOptions, render, to_feature

_FORMATS: dict[str, Format] = {
    "keyValues": "keyValues",
    "simplified": "keyValues",
    "concise": "concise",
    "normalized": "normalized",
}
_SPECIAL = {"id", "type", "scope", "expiresAt"}


def _names(ctx: RequestContext, names: list[str] | None) -> frozenset[str] | None:
    if names is None:
        return None
    return frozenset(n if n in _SPECIAL else expand_attr_name(ctx.terms, n) for n in names)


def render_options(request: web.Request, ctx: RequestContext) -> RenderOptions:
    options = option_set(request)
    fmt: Format = "normalized"
    chosen = [o for o in options if o in _FORMATS]
    if len({_FORMATS[o] for o in chosen}) > 1:
        raise BadRequestData(f"options {', '.join(sorted(chosen))} cannot be combined")
    if chosen:
        fmt = _FORMATS[chosen[0]]
    unknown = options - set(_FORMATS) - {"sysAttrs", "noOverwrite", "replace", "update"}
    if unknown:
        raise BadRequestData(f"unknown options: {', '.join(sorted(unknown))}")
    pick, omit = csv_param(request, "pick"), csv_param(request, "omit")
    if pick is not None and omit is not None:
        raise BadRequestData("pick and omit cannot be used together")
    attrs = csv_param(request, "attrs")
    geometry = request.query.get("geometryProperty")
    return RenderOptions(
        format=fmt,
        sys_attrs="sysAttrs" in options,
        attrs=_names(ctx, [a for a in attrs if a not in _SPECIAL]) if attrs else None,
        pick=_names(ctx, pick),
        omit=_names(ctx, omit),
        lang=request.query.get("lang"),
        geometry_property=expand_attr_name(ctx.terms, geometry or "location"),
    )


def entity_response(
    request: web.Request, ctx: RequestContext, record: EntityRecord, opts: RenderOptions
) -> web.Response:
    media = negotiate(request, (JSON, JSONLD, GEOJSON))
    body: Any = render(record, ctx.terms, opts)
    if media == GEOJSON:
        assert opts.geometry_property is not None
        body = to_feature(record, body, opts.geometry_property, ctx.terms)
        return respond(
            body,
            ctx,
            JSON,
            content_type=GEOJSON,
            embed_context=not prefers_plain_json(request),
        )
    return respond(body, ctx, media)
