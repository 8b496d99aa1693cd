"""Snapshots over HTTP (§6.36-6.38): /snapshots (create, query, purge), /snapshots/{id}
(retrieve, update, delete), /snapshots/{id}/clone, and the NGSILD-Snapshot header (§6.3.22).

Layer: api/ (of the snapshots room). Handlers parse and call SnapshotService. The header is a
middleware, innermost of the app's: a read of the entity API (GET of /entities, /types,
/attributes, /temporal/entities, and the two POST …/entityOperations/query) that names a
Snapshot is handled as a read of the Snapshot's frozen copy (the request goes on with the
copy's tenant name, so every read handler works unchanged), the header is echoed, and an
unknown Snapshot is 404.
Snapshots are read-only: a write of the entity API with the header is BadRequestData.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from urllib.parse import quote

from aiohttp import web
from multidict import CIMultiDict

from city_os.api.guard import principal_of
from city_os.api.http import (
    JSON,
    JSONLD,
    TENANT_HEADER,
    body_context,
    check_params,
    json_response,
    option_set,
    read_context,
    read_json,
    request_context,
    tenant_of,
)
from city_os.api.keys import POOL, QUERIES, SETTINGS, TENANTS
from city_os.api.query import query_of_body
from city_os.auth.rules import WRITER, allowed
from city_os.errors import AccessDenied, BadRequestData
from city_os.federation.distributed_request import body_params
from city_os.snapshots.model import as_record, parse_create, purge_selection, render
from city_os.snapshots.service import SnapshotQuery, SnapshotService
from city_os.snapshots.store import SnapshotRepository

routes = web.RouteTableDef()
PREFIX = "/ngsi-ld/v1/snapshots"
HEADER = "NGSILD-Snapshot"
SNAPSHOTS = web.AppKey("snapshots", SnapshotService)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def snapshots_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: after the database and the query service."""
    service = SnapshotService(
        SnapshotRepository(app[POOL]),
        app[TENANTS],
        app[QUERIES],
        page_size=app[SETTINGS].max_page_size,
    )
    app[SNAPSHOTS] = service
    yield
    await service.close()


def _service(request: web.Request) -> SnapshotService:
    return request.app[SNAPSHOTS]


def _sid(request: web.Request) -> str:
    return request.match_info["snapshotId"]


def _location(sid: str) -> dict[str, str]:
    return {"Location": f"{PREFIX}/{quote(sid, safe=':/')}"}


@routes.post(PREFIX)
async def create_snapshot(request: web.Request) -> web.Response:
    payload = await read_json(request)
    body, queries = parse_create(payload)
    ctx = await request_context(request, body_context(request, payload))
    parsed = []
    for query in queries:
        # each Query as POST /entityOperations/query reads it, with the Snapshot's @context
        q_ctx = replace(ctx, params=body_params(query) + ctx.params)
        parsed.append(SnapshotQuery(query_of_body(ctx, query), q_ctx))
    sid = await _service(request).create(ctx, body, queries, parsed)
    return web.Response(status=201, headers=_location(sid))


@routes.get(PREFIX)
async def query_snapshots(request: web.Request) -> web.Response:
    check_params(request, frozenset({"options", "q"}))
    ctx = await read_context(request)
    docs = await _service(request).all(ctx.tenant)
    if "q" in request.query:
        selection = purge_selection(request.query["q"])
        docs = [d for d in docs if selection.matches(as_record(d))]
    sys_attrs = "sysAttrs" in option_set(request)
    return json_response([render(d, sys_attrs) for d in docs])


@routes.delete(PREFIX)
async def purge_snapshots(request: web.Request) -> web.Response:
    check_params(request, frozenset({"q"}))
    ctx = await read_context(request)
    await _service(request).purge(ctx.tenant, request.query.get("q"))
    return web.Response(status=204)


@routes.get(PREFIX + "/{snapshotId}")
async def retrieve_snapshot(request: web.Request) -> web.Response:
    check_params(request, frozenset({"options"}))
    ctx = await read_context(request)
    row = await _service(request).get(ctx.tenant, _sid(request))
    return json_response(render(row.doc, "sysAttrs" in option_set(request)))


@routes.patch(PREFIX + "/{snapshotId}")
async def update_snapshot(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    body = await read_json(request, allowed=(JSON, JSONLD))
    doc = await _service(request).update(ctx.tenant, _sid(request), body)
    return json_response(render(doc, False))


@routes.delete(PREFIX + "/{snapshotId}")
async def delete_snapshot(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    await _service(request).delete(ctx.tenant, _sid(request))
    return web.Response(status=204)


@routes.post(PREFIX + "/{snapshotId}/clone")
async def clone_snapshot(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    body = await read_json(request) if request.content_length else None
    sid = await _service(request).clone(ctx.tenant, _sid(request), body)
    return web.Response(status=201, headers=_location(sid))


# The reads a Snapshot scopes: the entity API's (the header means nothing elsewhere).
_SCOPED = tuple(
    "/ngsi-ld/v1/" + p
    for p in ("entities", "types", "attributes", "temporal/entities", "entityOperations/query",
              "temporal/entityOperations/query")
)  # fmt: skip
_QUERIES = ("/ngsi-ld/v1/entityOperations/query", "/ngsi-ld/v1/temporal/entityOperations/query")
_READS = frozenset({"GET", "HEAD"})


@web.middleware
async def snapshot_scope(request: web.Request, handler: Handler) -> web.StreamResponse:
    """§6.3.22: reads scoped to a Snapshot's frozen copy (see the module docstring)."""
    sid = request.headers.get(HEADER)
    if sid is None or not request.path.startswith(_SCOPED):
        return await handler(request)
    if request.method not in _READS and not request.path.rstrip("/").endswith(_QUERIES):
        raise BadRequestData(f"{HEADER}: a Snapshot is read-only ({request.method} refused)")
    owner = tenant_of(request)
    principal = principal_of(request)
    if not principal.unrestricted and not allowed(principal, owner, WRITER):
        # the copy holds what its creator could read and has no permissions of its own
        raise AccessDenied(f"{HEADER}: reading a Snapshot needs the tenant's write right")
    tenant = await _service(request).scope(owner, sid.strip())
    headers = CIMultiDict(request.headers)
    headers[TENANT_HEADER] = tenant
    response = await handler(request.clone(headers=headers))
    response.headers[HEADER] = sid
    return response
