"""Schema registry resources (city-os, not NGSI-LD): /cityos/v1/schemas.

Layer: api/. A type in a path is a term of the Link header's @context or its IRI (URL-encoded);
the tenant is the NGSILD-Tenant header. Versions are immutable (no PUT/PATCH on them).

    POST   /cityos/v1/schemas                                  register {type, schema, activate?}
    POST   /cityos/v1/schemas/dryRun                           dry run of an unregistered schema
    GET    /cityos/v1/schemas                                  types with their versions
    GET    /cityos/v1/schemas/{type}                           one type
    DELETE /cityos/v1/schemas/{type}                           every version of it
    GET    /cityos/v1/schemas/{type}/versions/{version}        one version (schema, @context)
    DELETE /cityos/v1/schemas/{type}/versions/{version}        (409 while active)
    POST   /cityos/v1/schemas/{type}/versions/{version}/dryRun stored entities it would refuse
    GET    /cityos/v1/schemas/{type}/active                    the active version
    PUT    /cityos/v1/schemas/{type}/active                    {"version": n}: activate
    DELETE /cityos/v1/schemas/{type}/active                    deactivate: writes not validated
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from city_os.api.http import (
    body_context,
    int_param,
    json_response,
    read_context,
    read_json,
    read_object,
    request_context,
)
from city_os.api.keys import SCHEMAS
from city_os.core.entities import RequestContext
from city_os.errors import BadRequestData
from city_os.ngsild.limits import parse_int
from city_os.registry.projection import violation_list
from city_os.registry.service import DryRun, TypeSummary
from city_os.store.postgres.schemas import SchemaVersion, VersionInfo

routes = web.RouteTableDef()
PREFIX = "/cityos/v1/schemas"
TYPE = PREFIX + "/{type}"
VERSION = TYPE + "/versions/{version}"
_REGISTER_MEMBERS = {"type", "schema", "activate", "@context"}
_MAX_EXAMPLES = 100


async def _body(request: web.Request) -> tuple[RequestContext, dict[str, Any]]:
    payload = await read_object(request, _REGISTER_MEMBERS)
    return await request_context(request, body_context(request, payload)), payload


MAX_VERSION = 2**31 - 1  # stored as a PostgreSQL integer


def _version(request: web.Request) -> int:
    return parse_int(request.match_info["version"], "the schema version", 1, MAX_VERSION)


def _examples(request: web.Request) -> int:
    return int_param(request, "examples", 10, 0, _MAX_EXAMPLES)


def _location(info: VersionInfo) -> str:
    return f"{PREFIX}/{quote(info.type_iri, safe='')}/versions/{info.version}"


def _info(info: VersionInfo) -> dict[str, Any]:
    return {
        "type": info.term,
        "typeIri": info.type_iri,
        "version": info.version,
        "active": info.active,
        "createdAt": info.created_at,
    }


def _summary(summary: TypeSummary) -> dict[str, Any]:
    return {
        "type": summary.term,
        "typeIri": summary.type_iri,
        "activeVersion": summary.active_version,
        "versions": [
            {"version": v.version, "active": v.active, "createdAt": v.created_at}
            for v in summary.versions
        ],
    }


def _full(version: SchemaVersion) -> dict[str, Any]:
    body = {**_info(version.info), "schema": version.schema}
    if version.context is not None:
        body["@context"] = version.context
    return body


def _report(report: DryRun) -> dict[str, Any]:
    return {
        "typeIri": report.type_iri,
        "version": report.version,
        "checked": report.checked,
        "invalid": report.invalid,
        "examples": [
            {"id": entity_id, "violations": violation_list(violations)}
            for entity_id, violations in report.examples
        ],
    }


@routes.post(PREFIX)
async def register_schema(request: web.Request) -> web.Response:
    ctx, payload = await _body(request)
    activate = payload.get("activate", False)
    if not isinstance(activate, bool):
        raise BadRequestData("activate must be true or false")
    info, created = await request.app[SCHEMAS].register(
        ctx, payload.get("type"), payload.get("schema"), activate=activate
    )
    return json_response(
        _info(info), status=201 if created else 200, headers={"Location": _location(info)}
    )


@routes.post(PREFIX + "/dryRun")
async def dry_run_candidate(request: web.Request) -> web.Response:
    ctx, payload = await _body(request)
    report = await request.app[SCHEMAS].dry_run_candidate(
        ctx, payload.get("type"), payload.get("schema"), _examples(request)
    )
    return json_response(_report(report))


@routes.get(PREFIX)
async def list_schemas(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    return json_response([_summary(s) for s in await request.app[SCHEMAS].types(ctx)])


@routes.get(TYPE)
async def retrieve_type(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    return json_response(_summary(await request.app[SCHEMAS].type(ctx, request.match_info["type"])))


@routes.delete(TYPE)
async def delete_type(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    await request.app[SCHEMAS].delete_type(ctx, request.match_info["type"])
    return web.Response(status=204)


@routes.get(VERSION)
async def retrieve_version(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    found = await request.app[SCHEMAS].version(ctx, request.match_info["type"], _version(request))
    return json_response(_full(found))


@routes.delete(VERSION)
async def delete_version(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    await request.app[SCHEMAS].delete_version(ctx, request.match_info["type"], _version(request))
    return web.Response(status=204)


@routes.post(VERSION + "/dryRun")
async def dry_run(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    report = await request.app[SCHEMAS].dry_run(
        ctx, request.match_info["type"], _version(request), _examples(request)
    )
    return json_response(_report(report))


@routes.get(TYPE + "/active")
async def retrieve_active(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    return json_response(
        _full(await request.app[SCHEMAS].active_version(ctx, request.match_info["type"]))
    )


@routes.put(TYPE + "/active")
async def activate(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    payload = await read_json(request)
    if not isinstance(payload, dict) or not isinstance(payload.get("version"), int):
        raise BadRequestData('the payload must be {"version": <a positive integer>}')
    version = parse_int(payload["version"], "version", 1, MAX_VERSION)
    await request.app[SCHEMAS].activate(ctx, request.match_info["type"], version)
    return web.Response(status=204)


@routes.delete(TYPE + "/active")
async def deactivate(request: web.Request) -> web.Response:
    ctx = await read_context(request)
    await request.app[SCHEMAS].deactivate(ctx, request.match_info["type"])
    return web.Response(status=204)
