"""HTTP side of distributed operations: forwarded writes and ``NGSILD-Warning``.

Layer: api/. ``federated_write`` wraps an entity write of a handler: it asks the federation
(when installed) which sources the write goes to, runs the local part (what no exclusive or
redirect source took), then forwards; ``written`` answers 207 naming each source when one
failed. A distributed retrieve or query collects one warning per source that failed, timed
out or answered an error status (``RequestContext.warnings``, kept under ``WARNINGS``);
``add_warnings`` (an ``on_response_prepare`` signal) writes them as ``NGSILD-Warning``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from aiohttp import web

from city_os.core.request import RequestContext
from city_os.errors import AlreadyExists, ResourceNotFound
from city_os.federation.distributed import Federation
from city_os.federation.entitymap import EntityMapService
from city_os.federation.forward import Forwarded, plan_write, send_write

WARNING_HEADER = "NGSILD-Warning"
WARNINGS = web.RequestKey("warnings", list[str])
FEDERATION = web.AppKey("federation", Federation)
ENTITY_MAPS = web.AppKey("entity_maps", EntityMapService)
T = TypeVar("T")


async def add_warnings(request: web.Request, response: web.StreamResponse) -> None:
    for warning in request.get(WARNINGS) or ():
        response.headers.add(WARNING_HEADER, warning)


async def federated_write(
    request: web.Request,
    ctx: RequestContext,
    operation: str,
    method: str,
    entity_id: str,
    body: Any,
    local: Callable[[Any], Awaitable[T]],
    *,
    path: str = "",
    attr: str | None = None,
) -> tuple[T | None, Forwarded | None]:
    """The local write's result (None when nothing was written here) and what the sources
    answered (None: no source matched)."""
    federation = request.app.get(FEDERATION)
    if federation is None or ("local", "true") in ctx.params:
        return await local(body), None
    types = body.get("type") if isinstance(body, dict) else request.query.get("type")
    if isinstance(types, str):
        types = types.split(",")
    expanded = [ctx.terms.expand_type(t) for t in types] if isinstance(types, list) else None
    plan = await plan_write(
        federation, ctx, operation, entity_id, body=body, types=expanded, attr=attr
    )
    fw = plan.result
    if not plan.sources and not fw.blocked:
        return await local(body), None
    result: T | None = None
    if plan.local_part:
        try:
            result = await local(fw.strip(ctx, body))
        except (ResourceNotFound, AlreadyExists) as exc:
            if not plan.sources:
                raise
            fw.local_error = exc  # the sources may still take it: reported in the 207
    fw = await send_write(federation, ctx, plan, operation, method, entity_id, path=path, body=body)
    return result, fw


def written(fw: Forwarded | None, response: web.Response) -> web.Response:
    """``response``, or 207 with what each source answered when one of them failed."""
    if fw is None or not fw.partial:
        return response
    return web.Response(status=207, body=orjson.dumps(fw.report()), content_type="application/json")
