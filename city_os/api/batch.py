"""Batch entity operations (§5.6.7-5.6.10, §5.6.20): /entityOperations/create|upsert|update|
delete|merge, answering 201/204 when every entity succeeded and 207 with per-entity errors.

Layer: api/.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from city_os.api.federation import FEDERATION
from city_os.api.http import (
    JSON,
    JSONLD,
    json_response,
    link_context,
    option_set,
    read_json,
    request_context,
)
from city_os.api.keys import ENTITIES, SETTINGS
from city_os.core.batch import BatchResult, EntryContexts
from city_os.core.request import RequestContext
from city_os.core.slices import release
from city_os.errors import BadRequestData, NgsiLdError
from city_os.federation.forward_batch import federated_batch

routes = web.RouteTableDef()
PREFIX = "/ngsi-ld/v1/entityOperations"


async def _batch(
    request: web.Request, *, ids_only: bool = False
) -> tuple[RequestContext, list[Any], EntryContexts]:
    """The batch payload, the request context, and each entry's own context (or its error)."""
    payload = await read_json(request, allowed=(JSON, JSONLD))
    if not isinstance(payload, list):
        raise BadRequestData("a batch operation needs a JSON array")
    if not payload:
        raise BadRequestData("the batch is empty")
    if any(item is None for item in payload):
        raise BadRequestData("a batch cannot contain null items")
    limit = request.app[SETTINGS].max_batch_entities
    if len(payload) > limit:
        raise BadRequestData(f"a batch may hold at most {limit} entities, got {len(payload)}")
    base = await request_context(request, link_context(request))
    if ids_only:
        return base, payload, None
    jsonld = request.content_type.lower() == JSONLD
    if jsonld and link_context(request) is not None:
        raise BadRequestData("application/ld+json requests carry @context in the body, not Link")
    contexts: list[RequestContext | NgsiLdError] = []
    for item in payload:
        has_context = isinstance(item, dict) and "@context" in item
        if jsonld and not has_context:
            contexts.append(BadRequestData("this JSON-LD entity has no @context"))
        elif not jsonld and has_context:
            contexts.append(
                BadRequestData("@context in an entity needs Content-Type application/ld+json")
            )
        elif jsonld:
            try:
                contexts.append(await request_context(request, item["@context"]))
            except NgsiLdError as err:
                contexts.append(err)
        else:
            contexts.append(base)
    return base, payload, contexts


def _result(result: BatchResult, *, created_status: bool = False) -> web.Response:
    if result.errors:
        body = {
            "success": result.success,
            "errors": [
                {"entityId": entity_id, "error": err.problem()} for entity_id, err in result.errors
            ],
        }
        return json_response(body, status=207)
    if created_status and result.created:
        return json_response(result.created, status=201)
    return web.Response(status=204)


async def _federated(
    request: web.Request,
    ctx: RequestContext,
    operation: str,
    bodies: list[Any],
    contexts: EntryContexts,
    local: Callable[[list[Any], EntryContexts], Awaitable[BatchResult]],
) -> BatchResult:
    """The batch split per context source when federation matches (federation/forward_batch.py),
    else the local batch."""
    federation = request.app.get(FEDERATION)
    result = None
    if federation is not None:
        path = "/" + request.path.rstrip("/").rsplit("/", 1)[1]
        outcome = await federated_batch(federation, ctx, operation, path, bodies, contexts, local)
        result = None if outcome is None else outcome.result
    if result is None:
        result = await local(bodies, contexts)
    await release(bodies)  # 1,000 parsed bodies freed in slices, not in one go on return
    return result


@routes.post(PREFIX + "/create")
async def batch_create(request: web.Request) -> web.Response:
    ctx, bodies, contexts = await _batch(request)
    service = request.app[ENTITIES].batch
    result = await _federated(request, ctx, "createBatch", bodies, contexts,
                              lambda b, c: service.create(ctx, b, c))  # fmt: skip
    if result.errors:
        return _result(result)
    return json_response(result.success, status=201)


@routes.post(PREFIX + "/upsert")
async def batch_upsert(request: web.Request) -> web.Response:
    ctx, bodies, contexts = await _batch(request)
    options = option_set(request)
    if {"update", "replace"} <= options:
        raise BadRequestData("options update and replace cannot be combined")
    service = request.app[ENTITIES].batch
    result = await _federated(
        request,
        ctx,
        "upsertBatch",
        bodies,
        contexts,
        lambda b, c: service.upsert(ctx, b, replace="update" not in options, contexts=c),
    )
    return _result(result, created_status=True)


@routes.post(PREFIX + "/update")
async def batch_update(request: web.Request) -> web.Response:
    ctx, bodies, contexts = await _batch(request)
    service = request.app[ENTITIES].batch
    overwrite = "noOverwrite" not in option_set(request)
    partial: dict[str, NgsiLdError] = {}
    result = await _federated(
        request,
        ctx,
        "updateBatch",
        bodies,
        contexts,
        lambda b, c: service.modify(
            ctx, b, service.update_change(ctx, overwrite, partial), contexts=c, partial=partial
        ),
    )
    return _result(result)


@routes.post(PREFIX + "/merge")
async def batch_merge(request: web.Request) -> web.Response:
    ctx, bodies, contexts = await _batch(request)
    service = request.app[ENTITIES].batch
    result = await _federated(
        request,
        ctx,
        "mergeBatch",
        bodies,
        contexts,
        lambda b, c: service.modify(ctx, b, service.merge_change(ctx), allow_null=True, contexts=c),
    )
    return _result(result)


@routes.post(PREFIX + "/delete")
async def batch_delete(request: web.Request) -> web.Response:
    ctx, ids, _ = await _batch(request, ids_only=True)
    service = request.app[ENTITIES].batch
    result = await _federated(
        request, ctx, "deleteBatch", ids, None, lambda b, _: service.delete(ctx, b)
    )
    return _result(result)
