"""HTTP plumbing of the NGSIv2 API: FIWARE headers, Orion-style errors, output parameters.

Layer: ngsiv2/ (HTTP, like api/). ``Fiware-Service`` names the tenant (lower-cased, as Orion
does; none = the default tenant); ``Fiware-ServicePath`` names the NGSI-LD ``scope`` of created
entities and the scope filter of reads (``/a/#`` = ``/a`` and below; a comma-separated list on
reads; ``/`` and ``/#`` = everything). Errors are ``{"error", "description"}`` with Orion's
status codes.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from aiohttp import web

from city_os.api.guard import principal_of
from city_os.api.http import JSON, read_json
from city_os.api.keys import CONTEXTS, SETTINGS
from city_os.core.request import RequestContext
from city_os.errors import AlreadyExists, BadRequestData, NgsiLdError
from city_os.ngsild.entity import now_iso
from city_os.ngsild.query.ast import ScopeExpr, ScopeMatch, ScopeOr
from city_os.ngsiv2.translate import Format, Output

SERVICE = "Fiware-Service"
SERVICE_PATH = "Fiware-ServicePath"
TOTAL_COUNT = "Fiware-Total-Count"
_SERVICE = re.compile(r"^[a-z0-9_-]{1,50}$")  # Orion: no "-"; kept for NGSI-LD tenants
_LEVEL = re.compile(r"^[A-Za-z0-9_-]{1,50}$")

# NGSI-LD error -> Orion's error name, by HTTP status.
_ORION_ERRORS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    408: "RequestTimeout",
    409: "TooManyResults",
    411: "ContentLengthRequired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Unprocessable",
    429: "TooManyRequests",
    503: "ServiceUnavailable",
    501: "NotImplemented",
    504: "GatewayTimeout",
}


class Unprocessable(NgsiLdError):
    """Orion's 422: the request is well formed but cannot apply (e.g. the attribute exists)."""

    type_uri = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    status = 422
    title = "Unprocessable"


def orion_error(err: NgsiLdError) -> web.Response:
    """The v2 body of an error: ``{"error": name, "description": text}``."""
    status, description = err.status, err.detail
    if isinstance(err, AlreadyExists):
        status, description = 422, "Already Exists"
    name = _ORION_ERRORS.get(status, "InternalServerError")
    headers = {k: v for k, v in err.headers.items() if k != "Content-Type"}
    response = web.Response(
        body=orjson.dumps({"error": name, "description": description}),
        status=status,
        content_type=JSON,
        headers=headers or None,
    )
    if err.closes_connection:
        response.force_close()
    return response


def tenant(request: web.Request) -> str:
    raw = request.headers.get(SERVICE, "").strip().lower()
    if raw and not _SERVICE.match(raw):
        raise BadRequestData(
            "bad character in tenant name: Fiware-Service allows letters, digits, '_' and '-' "
            "(at most 50)"
        )
    return raw


def _levels(path: str) -> tuple[tuple[str, ...], bool]:
    path = path.strip()
    if not path.startswith("/"):
        raise BadRequestData(
            "Only /absolute/ Service Paths allowed [a service path must begin with /]"
        )
    descendants = path == "/#" or path.endswith("/#")
    body = path[:-2] if path.endswith("/#") else path
    levels = tuple(p for p in body.split("/") if p)
    if len(levels) > 10 or not all(_LEVEL.match(p) for p in levels):
        raise BadRequestData(f"bad Fiware-ServicePath {path!r}")
    return levels, descendants


def write_scope(request: web.Request) -> str | None:
    """The scope of an entity created under ``Fiware-ServicePath`` (None for ``/``)."""
    raw = request.headers.get(SERVICE_PATH)
    if raw is None:
        return None
    if "," in raw:
        raise BadRequestData("a write takes a single Fiware-ServicePath")
    levels, descendants = _levels(raw)
    if descendants:
        raise BadRequestData("a write cannot use a Fiware-ServicePath with '#'")
    return "/" + "/".join(levels) if levels else None


def read_scope(request: web.Request) -> ScopeExpr | None:
    """The scope filter of a read (None: every entity)."""
    raw = request.headers.get(SERVICE_PATH)
    if raw is None:
        return None
    matches = []
    for item in raw.split(","):
        levels, descendants = _levels(item)
        if not levels:
            return None  # "/" or "/#": everything (entities without scope included)
        matches.append(ScopeMatch(levels, descendants))
    return matches[0] if len(matches) == 1 else ScopeOr(tuple(matches))


def in_scope(scopes: list[str] | None, expr: ScopeExpr | None) -> bool:
    if expr is None:
        return True
    terms = expr.terms if isinstance(expr, ScopeOr) else (expr,)
    for scope in scopes or []:
        levels = tuple(scope.strip("/").split("/"))
        for term in terms:
            assert isinstance(term, ScopeMatch)
            n = len(term.levels)
            if levels[:n] == term.levels and (len(levels) == n or term.descendants):
                return True
    return False


async def v2_context(request: web.Request) -> RequestContext:
    """The core request context; the caller's principal makes core/ decide access per entity
    (auth/enforce.py) exactly as for NGSI-LD, in the ``Fiware-Service`` tenant."""
    settings = request.app[SETTINGS]
    context = settings.ngsiv2_context or None
    principal = principal_of(request)
    return RequestContext(
        tenant=tenant(request),
        terms=await request.app[CONTEXTS].term_map(context),
        now=now_iso(),
        context=context,
        limits=settings.limits,
        actor=principal.actor,
        principal=principal,
    )


async def read_v2_json(request: web.Request) -> Any:
    return await read_json(request, allowed=(JSON,))


def options(request: web.Request) -> set[str]:
    out: set[str] = set()
    for raw in request.query.getall("options", []):
        out.update(o.strip() for o in raw.split(",") if o.strip())
    known = {
        "count", "keyValues", "values", "unique", "append", "upsert", "sysAttrs", "normalized",
        "dateCreated", "dateModified",
        "skipForwarding", "forcedUpdate", "flowControl", "overrideMetadata", "noAttrDetail",
    }  # fmt: skip
    unknown = out - known
    if unknown:
        raise BadRequestData(f"Invalid value for URI param /options/: {', '.join(sorted(unknown))}")
    return out


def names_param(request: web.Request, name: str) -> tuple[str, ...] | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    items = tuple(x.strip() for x in raw.split(",") if x.strip())
    if not items:
        raise BadRequestData(f"Empty right-hand-side for URI param /{name}/")
    return items


def output(request: web.Request, opts: set[str] | None = None) -> Output:
    opts = options(request) if opts is None else opts
    fmt: Format = "normalized"
    names: tuple[Format, ...] = ("keyValues", "values", "unique")
    for name in names:
        if name in opts:
            fmt = name
    return Output(names_param(request, "attrs"), names_param(request, "metadata"), fmt)


def v2_json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON, headers=headers)
