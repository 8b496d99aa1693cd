"""HTTP plumbing shared by every NGSI-LD resource: bodies, @context, tenant, Accept, responses.

Layer: api/. Turns an aiohttp request into plain values (JSON payload, term map, tenant, output
media type) and domain results into responses; handlers stay thin and never see headers parsing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web

from city_os.api.federation import WARNINGS
from city_os.api.guard import principal_of
from city_os.api.keys import CONTEXTS, SETTINGS
from city_os.core.entities import RequestContext
from city_os.core.slices import Slicer, sliced
from city_os.errors import (
    BadRequestData,
    InvalidRequest,
    NotAcceptable,
    RequestTimeout,
    UnsupportedMediaType,
)
from city_os.ngsild.entity import now_iso
from city_os.ngsild.jsonld import CORE_CONTEXT_URL
from city_os.ngsild.limits import check_body, parse_int, parse_json, walk_document

# Bodies from this size on are parsed and checked in a worker thread (see core.cpu).
HEAVY_BODY = 256 * 1024

JSON = "application/json"
JSONLD = "application/ld+json"
GEOJSON = "application/geo+json"
MERGE_PATCH = "application/merge-patch+json"
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
TENANT_HEADER = "NGSILD-Tenant"
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")


def tenant_of(request: web.Request) -> str:
    return request.headers.get(TENANT_HEADER, "").strip()


def _media_type(request: web.Request) -> str:
    return request.content_type.lower() if request.headers.get("Content-Type") else ""


def link_context(request: web.Request) -> str | None:
    """The @context URL of the request's Link header (rel json-ld#context), if any."""
    values = request.headers.getall("Link", [])
    found: list[str] = []
    for header in values:
        for match in _LINK.finditer(header):
            url, params = match.group(1).strip(), match.group(2)
            if CONTEXT_REL in params or "rel=" not in params:
                found.append(url)
    if len(found) > 1:
        raise BadRequestData("more than one JSON-LD @context Link header was sent")
    if found and not found[0]:
        raise BadRequestData("the @context Link header has an empty URL")
    return found[0] if found else None


async def read_json(request: web.Request, *, allowed: Iterable[str] = (JSON, JSONLD)) -> Any:
    """The request body as JSON, after checking its media type."""
    media = _media_type(request)
    allowed = tuple(allowed)
    if request.method == "PATCH" and MERGE_PATCH not in allowed:
        allowed = (*allowed, MERGE_PATCH)  # every PATCH accepts merge-patch+json (§6.3.4)
    if media not in allowed:
        raise UnsupportedMediaType(
            f"Content-Type {media or '(none)'} is not supported here; use one of "
            + ", ".join(allowed)
        )
    raw = await read_body(request)
    if not raw:
        raise InvalidRequest("the request body is empty")
    limits = request.app[SETTINGS].limits
    nul = check_body(raw, limits)  # container count: before parsing, which costs per container
    try:
        payload = parse_json(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from exc
    if len(raw) >= HEAVY_BODY:
        await asyncio.sleep(0)  # parsing was one slice; the walk is the next ones
    slicer = Slicer()
    for _ in walk_document(payload, limits, nul=nul):  # depth and U+0000, in slices
        await slicer.tick()
    return payload


async def read_body(request: web.Request) -> bytes:
    """The raw body, within ``body_read_timeout``: a client that announces more than it sends
    (or trickles it) gets 408 and the connection is closed, instead of holding it forever."""
    timeout = request.app[SETTINGS].body_read_timeout
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except TimeoutError:
        raise RequestTimeout(
            f"the request body did not arrive within {timeout:g} s"
            f" ({request.content_length} bytes announced by Content-Length)"
        ) from None


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter in ``[low, high]`` (ASCII digits only), else ``default``."""
    raw = request.query.get(name)
    return default if raw is None else parse_int(raw, name, low, high)


async def read_object(request: web.Request, members: Iterable[str]) -> dict[str, Any]:
    """A JSON object body of city-os resources: InvalidRequest for anything else, and
    BadRequestData naming members outside ``members``."""
    payload = await read_json(request)
    if not isinstance(payload, dict):
        raise InvalidRequest("the payload must be a JSON object")
    unknown = set(payload).difference(members)
    if unknown:
        raise BadRequestData(f"unknown members: {', '.join(sorted(unknown))}")
    return payload


def body_context(request: web.Request, payload: Any) -> Any:
    """The @context that applies to a payload: inline for JSON-LD, else the Link header."""
    media = _media_type(request)
    if media == JSONLD:
        if link_context(request) is not None:
            raise BadRequestData(
                "application/ld+json requests carry @context in the body, not Link"
            )
        items = payload if isinstance(payload, list) else [payload]
        contexts = [p.get("@context") for p in items if isinstance(p, dict)]
        if not contexts or any(c is None for c in contexts):
            raise BadRequestData("application/ld+json payloads must contain an @context")
        return contexts[0]
    items = payload if isinstance(payload, list) else [payload]
    if any(isinstance(p, dict) and "@context" in p for p in items):
        raise BadRequestData(
            "@context in the body needs Content-Type application/ld+json; with application/json "
            "send it in a Link header"
        )
    return link_context(request)


async def request_context(request: web.Request, context: Any) -> RequestContext:
    terms = await request.app[CONTEXTS].term_map(context)
    ctx = RequestContext(
        tenant=tenant_of(request),
        terms=terms,
        now=now_iso(),
        context=context,
        limits=request.app[SETTINGS].limits,
        heavy=(request.content_length or 0) >= HEAVY_BODY,
        actor=principal_of(request).actor,
        principal=principal_of(request),
        via=request.headers.get("Via"),
        params=tuple(request.query.items()),
        headers=tuple(request.headers.items()),
    )
    request[WARNINGS] = ctx.warnings  # NGSILD-Warning values, sent by api/federation.py
    return ctx


async def read_context(request: web.Request) -> RequestContext:
    """For requests without a body: the Link header's context."""
    return await request_context(request, link_context(request))


def _accept_ranges(header: str) -> list[tuple[str, float]]:
    ranges = []
    for part in header.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        if not media:
            continue
        q = 1.0
        for param in params:
            if param.replace(" ", "").startswith("q="):
                try:
                    q = float(param.split("=", 1)[1])
                except ValueError:
                    q = 1.0  # a malformed weight does not decide the outcome
        ranges.append((media.lower(), q))
    return ranges


def negotiate(request: web.Request, offered: tuple[str, ...] = (JSON, JSONLD)) -> str:
    """The media type to answer with (§6.3.4 with RFC 9110 §12.5.1; 406 when none fits).

    Each offered type takes the weight of the most specific range matching it; the highest
    weight wins and ties go to the order of ``offered`` (application/json first).
    """
    header = request.headers.get("Accept", "").strip()
    if not header:
        return offered[0]
    ranges = _accept_ranges(header)
    best: tuple[float, int] | None = None
    chosen = ""
    for rank, candidate in enumerate(offered):
        main = candidate.split("/")[0] + "/*"
        weight: float | None = None
        specificity = -1
        for media, q in ranges:
            level = 2 if media == candidate else 1 if media == main else 0 if media == "*/*" else -1
            if level > specificity:
                specificity, weight = level, q
        if weight is None or weight <= 0:
            continue
        key = (weight, -rank)
        if best is None or key > best:
            best, chosen = key, candidate
    if not chosen:
        raise NotAcceptable(f"cannot produce any of {header!r}; offered: {', '.join(offered)}")
    return chosen


def response_context(ctx: RequestContext) -> Any:
    """The @context of a response: the request's own, else the core context."""
    return ctx.context if ctx.context is not None else CORE_CONTEXT_URL


def context_link(ctx: RequestContext) -> str:
    value = ctx.context
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    url = value if isinstance(value, str) else CORE_CONTEXT_URL
    return f'<{url}>; rel="{CONTEXT_REL}"; type="{JSONLD}"'


def respond(
    body: Any,
    ctx: RequestContext,
    media: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    content_type: str | None = None,
    embed_context: bool = True,
) -> web.Response:
    """Serialise a compacted result with its @context (inline for JSON-LD, else Link)."""
    out_headers = dict(headers or {})
    body = _with_context(body, ctx, media, out_headers, content_type, embed_context)
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type=content_type or media,
        headers=out_headers,
    )


async def respond_page(
    bodies: list[Any], ctx: RequestContext, media: str, *, headers: dict[str, str] | None = None
) -> web.Response:
    """``respond`` for a page of entities, serialised entity by entity between event-loop
    slices: one ``orjson.dumps`` of a 1,000-entity page (~2 MB) held the loop ~10 ms."""
    out_headers = dict(headers or {})
    items = _with_context(bodies, ctx, media, out_headers, None, True)
    if len(items) < 100:  # one call: a small page is serialised within a slice
        body = orjson.dumps(items)
    else:
        body = b"[" + b",".join(await sliced(orjson.dumps, items)) + b"]"
    return web.Response(body=body, content_type=media, headers=out_headers)


def _with_context(
    body: Any,
    ctx: RequestContext,
    media: str,
    out_headers: dict[str, str],
    content_type: str | None,
    embed_context: bool,
) -> Any:
    """``body`` with its @context where the media type carries it, else a Link header."""
    if content_type == GEOJSON and isinstance(body, dict):
        # GeoJSON carries its @context in the body unless the client prefers plain JSON
        # (§6.3.15, Prefer: body=json); the Link header is sent either way.
        if embed_context:
            body = {**body, "@context": response_context(ctx)}
        out_headers["Link"] = context_link(ctx)
    elif media == JSONLD:
        context = response_context(ctx)
        if isinstance(body, list):
            body = [{**item, "@context": context} for item in body]
        elif isinstance(body, dict):
            body = {**body, "@context": context}
    else:
        out_headers["Link"] = context_link(ctx)
    return body


def prefers_plain_json(request: web.Request) -> bool:
    """``Prefer: body=json`` asks for GeoJSON without an embedded @context (§6.3.15)."""
    return "body=json" in request.headers.get("Prefer", "").replace(" ", "").lower()


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON, headers=headers)


def option_set(request: web.Request) -> set[str]:
    """The `options` (and v1.8+ `format`) query parameters as a set."""
    out: set[str] = set()
    for raw in request.query.getall("options", []):
        out.update(o.strip() for o in raw.split(",") if o.strip())
    fmt = request.query.get("format")
    if fmt:
        out.add(fmt.strip())
    return out


def check_params(request: web.Request, allowed: frozenset[str]) -> None:
    """Unknown query parameters are refused (§6.3.20: 400 InvalidRequest)."""
    unknown = {name.strip() for name in request.query} - allowed
    if unknown:
        raise InvalidRequest(
            f"unknown query parameters: {', '.join(sorted(unknown))}; "
            f"allowed here: {', '.join(sorted(allowed)) or 'none'}"
        )


def csv_param(request: web.Request, name: str) -> list[str] | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    items = [x.strip() for x in raw.split(",") if x.strip()]
    if not items:
        raise BadRequestData(f"parameter {name} must not be empty")
    return items
