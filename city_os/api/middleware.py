"""Middlewares: every failure becomes an NGSI-LD ProblemDetails response (§5.5.2).

Layer: api/. NgsiLdError renders as itself; aiohttp's own HTTP errors (404 route, 405, 413) are
mapped onto the NGSI-LD types; a database that cannot be used right now (connection lost,
failover, pool exhausted: ``store.postgres.db.unavailable`` decides) is a 503 with Retry-After;
anything else is logged and answered as a 500 InternalError without internals. U+0000 in the
path or a query parameter is refused before any handler runs: no store can hold it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from city_os.api.keys import SETTINGS
from city_os.errors import (
    BadRequestData,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NgsiLdError,
    PayloadTooLarge,
    ResourceNotFound,
    ServiceUnavailable,
)
from city_os.observability.metrics import Metrics
from city_os.store.postgres.db import refused_data, transient, unavailable

log = logging.getLogger(__name__)
PROBLEM = "application/json"
ErrorRenderer = Callable[[NgsiLdError], web.Response]
# Path prefix -> renderer of errors for another API face (the NGSIv2 API's Orion-style bodies).
ERROR_RENDERERS = web.AppKey("error_renderers", dict[str, ErrorRenderer])


def problem_response(err: NgsiLdError) -> web.Response:
    response = web.Response(
        body=orjson.dumps(err.problem()),
        status=err.status,
        content_type=PROBLEM,
        headers=err.headers or None,
    )
    if err.closes_connection:
        response.force_close()
    return response


def render_error(request: web.Request, err: NgsiLdError) -> web.Response:
    """The error as ProblemDetails, or as the API face owning the path renders it."""
    for prefix, render in request.app.get(ERROR_RENDERERS, {}).items():
        if request.path.startswith(prefix):
            return render(err)
    return problem_response(err)


def _nul_in_url(request: web.Request) -> NgsiLdError | None:
    if "\x00" in request.path:
        return BadRequestData("the URL path contains U+0000, which no id or name may contain")
    if "%00" in request.raw_path:  # only then can a decoded parameter hold U+0000
        for name, value in request.query.items():
            if "\x00" in name or "\x00" in value:
                return BadRequestData(
                    f"query parameter {name!r} contains U+0000, which cannot be stored or matched"
                )
    return None


_TEMPORAL_NO_ATTR = re.compile(r"/temporal/entities/[^/]+/attrs//[^/]+$")


def _from_http(exc: web.HTTPException, request: web.Request) -> NgsiLdError:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge(f"the request body is larger than {exc.text or 'allowed'}")
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
    if isinstance(exc, web.HTTPNotFound):
        if request.method == "PATCH" and _TEMPORAL_NO_ATTR.search(request.path):
            # /attrs//{instanceId}: without an attribute name it reads as /attrs/{attrId},
            # which takes DELETE only (ETSI 016_02_06)
            return MethodNotAllowed(f"PATCH is not allowed on {request.path}")
        if "//" in request.path or request.path.endswith("/entities/attrs"):
            return BadRequestData(f"{request.path} lacks an id between two slashes")
        return ResourceNotFound(f"no resource at {request.path}")
    return InvalidRequest(exc.reason)


TENANT_HEADER = "NGSILD-Tenant"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@web.middleware
async def problem_details(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in _BODY_METHODS and "Content-Length" not in request.headers:
        # §6.3.4: a body without Content-Length (e.g. chunked) is refused with a bare 411.
        return web.Response(status=411)
    refused = _nul_in_url(request)
    response = render_error(request, refused) if refused else await _handle(request, handler)
    tenant = request.headers.get(TENANT_HEADER)
    if tenant:
        response.headers[TENANT_HEADER] = tenant
    return response


async def _handle(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except NgsiLdError as err:
        if err.status >= 500 and not isinstance(err, InternalError):
            log.warning("%s %s: %s", request.method, request.path, err.detail)
        return render_error(request, err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return render_error(request, _from_http(exc, request))
    except Exception as exc:
        reason = unavailable(exc) or transient(exc)
        if reason is not None:
            log.warning("%s %s: database unavailable: %s", request.method, request.path, reason)
            retry = request.app[SETTINGS].db_retry_after
            return render_error(
                request, ServiceUnavailable(f"{reason}; try again in {retry} s", retry_after=retry)
            )
        refused = refused_data(exc)
        if refused is not None:
            log.warning("%s %s: the database refused the data: %s", request.method, request.path,
                        refused)  # fmt: skip
            return render_error(request, BadRequestData(f"the data cannot be stored: {refused}"))
        log.exception("unhandled error in %s %s", request.method, request.path)
        return render_error(request, InternalError("internal error; see the broker log"))


def request_metrics(metrics: Metrics) -> Middleware:
    """Outermost middleware: one counter inc + one histogram observe per request, labelled with
    the route's canonical path (``/ngsi-ld/v1/entities/{entityId}``), never the raw URL."""
    labels: dict[object, str] = {}

    def route_label(request: web.Request) -> str:
        resource = request.match_info.route.resource
        label = labels.get(resource)
        if label is None:
            if resource is None:
                return "unmatched"
            label = labels[resource] = resource.canonical.replace("{_slash}", "") or "/"
        return label

    @web.middleware
    async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            metrics.observe_request(
                route_label(request), request.method, status, time.perf_counter() - started
            )

    return measure
