"""NGSIv2 batch operations and broker resources: /v2/op/update, /v2/op/query, /v2/types,
/version, /statistics, and the /v2 entry point.

Layer: ngsiv2/ (HTTP). ``op/update`` checks every entity of the request (v2 syntax and
translation) before it writes anything; ``append`` is one NGSI-LD batch upsert (one
transaction), the other actions apply entity by entity as in Orion, stopping at the first that
cannot apply (404/422).
"""

from __future__ import annotations

import time
from importlib import metadata
from typing import Any

from aiohttp import web

from city_os.api.http import int_param
from city_os.api.keys import DISCOVERY, ENTITIES, SETTINGS, STARTED
from city_os.errors import AlreadyExists, BadRequestData, NonexistentTenant, ResourceNotFound
from city_os.ngsiv2.entities import NOT_FOUND
from city_os.ngsiv2.http import (
    TOTAL_COUNT,
    Unprocessable,
    options,
    read_v2_json,
    v2_context,
    v2_json,
    write_scope,
)
from city_os.ngsiv2.listing import list_response
from city_os.ngsiv2.translate import entity_to_ld, with_kept_metadata

routes = web.RouteTableDef()
V2 = "/v2"
ACTIONS = frozenset({"append", "appendStrict", "update", "replace", "delete"})


def _batch(body: Any, key_values: bool) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """(action, NGSI-LD entities, the v2 entities as sent) of an op/update body."""
    if not isinstance(body, dict) or set(body) - {"actionType", "entities"}:
        raise BadRequestData("the payload must be {actionType, entities}")
    action = body.get("actionType")
    if action not in ACTIONS:
        raise BadRequestData(
            f"invalid actionType {action!r}: use one of {', '.join(sorted(ACTIONS))}"
        )
    entities = body.get("entities")
    if not isinstance(entities, list) or not entities:
        raise BadRequestData("entities must be a non-empty array")
    if not all(isinstance(e, dict) for e in entities):
        raise BadRequestData("each item of entities must be a JSON object")
    originals = [dict(e) for e in entities]
    if action == "delete":
        # delete takes attribute names only: their values do not matter
        for e in entities:
            if isinstance(e, dict):
                e.update({k: {"value": 0} for k in list(e) if k not in ("id", "type")})
    return action, [entity_to_ld(e, key_values=key_values) for e in entities], originals


@routes.post(V2 + "/op/update")
async def op_update(request: web.Request) -> web.Response:
    ctx = await v2_context(request)
    opts = options(request)
    action, entities, raw = _batch(await read_v2_json(request), "keyValues" in opts)
    service = request.app[ENTITIES]
    scope = write_scope(request)
    if action == "append":
        if scope is not None:
            entities = [{**e, "scope": scope} for e in entities]
        result = await service.batch_upsert(ctx, entities, replace=False)
        if result.errors:
            raise result.errors[0][1]
        return web.Response(status=204)
    for entity, original in zip(entities, raw, strict=True):
        attrs = {k: v for k, v in entity.items() if k not in ("id", "type")}
        explicit_type = "type" in original
        type_filter = entity["type"] if explicit_type else None
        if action == "appendStrict":
            try:
                await service.create(ctx, {**entity, **({"scope": scope} if scope else {})})
                continue
            except AlreadyExists:
                stored = await service.retrieve(ctx, entity["id"])
                names = {ctx.terms.compact_attr(i) for i in stored.attrs}
                clash = sorted(names & set(attrs))
                fresh = {k: v for k, v in attrs.items() if k not in names}
                if fresh:
                    await service.append_attrs(ctx, entity["id"], fresh, overwrite=False)
                if clash:  # Orion appends the new ones and reports the others
                    raise Unprocessable(
                        f"one or more of the attributes in the request already exist: "
                        f"{original['id']} - [ {', '.join(clash)} ]"
                    ) from None
                continue
        try:
            stored = await service.retrieve(ctx, entity["id"], type_filter=type_filter)
        except (ResourceNotFound, NonexistentTenant):
            raise ResourceNotFound(NOT_FOUND) from None
        if action == "delete":
            if not attrs:
                await service.delete(ctx, entity["id"])
            for name in attrs:
                await service.delete_attr(ctx, entity["id"], name, None, False)
        elif action == "update":
            names = {ctx.terms.compact_attr(i) for i in stored.attrs}
            missing = [n for n in attrs if n not in names]
            if missing:
                raise Unprocessable(f"do not exist: {original['id']} - [ {', '.join(missing)} ]")
            if "overrideMetadata" not in opts:
                body_attrs = {k: v for k, v in original.items() if k not in ("id", "type")}
                attrs = with_kept_metadata(
                    stored, ctx.terms, body_attrs, key_values="keyValues" in opts
                )
            await service.update_attrs(ctx, entity["id"], attrs)
        else:  # replace
            payload = {**entity, "type": ctx.terms.compact_type(stored.types[0])}
            if stored.scopes:
                payload["scope"] = stored.scopes
            await service.replace(ctx, entity["id"], payload)
    return web.Response(status=204)


@routes.post(V2 + "/op/query")
async def op_query(request: web.Request) -> web.Response:
    ctx = await v2_context(request)
    body = await read_v2_json(request)
    if not isinstance(body, dict) or set(body) - {"entities", "attrs", "expression", "metadata"}:
        raise BadRequestData("the payload must be {entities, attrs, expression, metadata}")
    entities = body.get("entities", [{}])
    expression = body.get("expression", {})
    if not isinstance(entities, list) or not all(isinstance(e, dict) for e in entities):
        raise BadRequestData("entities must be an array of objects")
    if not isinstance(expression, dict):
        raise BadRequestData("expression must be an object")

    def names(key: str) -> tuple[str, ...] | None:
        value = body.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise BadRequestData(f"{key} must be an array of strings")
        return tuple(value) or None

    limit = int_param(request, "limit", 20, 1, request.app[SETTINGS].max_page_size)
    return await list_response(
        request,
        ctx,
        entities or [{}],
        expression,
        limit=limit,
        offset=int_param(request, "offset", 0, 0, 2**31 - 1),
        attrs=names("attrs"),
        metadata=names("metadata"),
    )


async def _type_info(request: web.Request, name: str) -> dict[str, Any]:
    ctx = await v2_context(request)
    info = await request.app[DISCOVERY].type_info(ctx, name)
    attrs = {
        a["attributeName"]: {"types": sorted(set(a["attributeTypes"]))}
        for a in info["attributeDetails"]
    }
    return {"attrs": attrs, "count": info["entityCount"]}


@routes.get(V2 + "/types")
async def list_types(request: web.Request) -> web.Response:
    ctx = await v2_context(request)
    opts = options(request)
    try:
        names = (await request.app[DISCOVERY].types(ctx, details=False))["typeList"]
    except NonexistentTenant:
        names = []
    names = sorted(names)
    total = len(names)
    limit = int_param(request, "limit", 20, 1, request.app[SETTINGS].max_page_size)
    offset = int_param(request, "offset", 0, 0, 2**31 - 1)
    names = names[offset : offset + limit]
    headers = {TOTAL_COUNT: str(total)} if "count" in opts else None
    if "values" in opts:
        return v2_json(names, headers=headers)
    rows = [{"type": n, **await _type_info(request, n)} for n in names]
    if "noAttrDetail" in opts:
        for row in rows:
            row["attrs"] = {k: {} for k in row["attrs"]}
    return v2_json(rows, headers=headers)


@routes.get(V2 + "/types/{type}")
async def retrieve_type(request: web.Request) -> web.Response:
    try:
        return v2_json(await _type_info(request, request.match_info["type"]))
    except (ResourceNotFound, NonexistentTenant):
        raise ResourceNotFound("Entity type not found") from None


@routes.get(V2)
async def entry_point(request: web.Request) -> web.Response:
    return v2_json(
        {
            "entities_url": "/v2/entities",
            "types_url": "/v2/types",
            "subscriptions_url": "/v2/subscriptions",
            "registrations_url": "/v2/registrations",
        }
    )


def _version() -> str:
    try:
        return metadata.version("city-os")
    except metadata.PackageNotFoundError:
        return "0"


@routes.get("/version")
async def version(request: web.Request) -> web.Response:
    uptime = int(time.monotonic() - request.app[STARTED])
    days, rest = divmod(uptime, 86400)
    hours, rest = divmod(rest, 3600)
    return v2_json(
        {
            "orion": {
                "version": "3.10.1",
                "uptime": f"{days} d, {hours} h, {rest // 60} m, {rest % 60} s",
                "git_hash": "city-os",
                "compile_time": "",
                "compiled_by": "city-os",
                "compiled_in": "",
                "release_date": "",
                "doc": "https://github.com/telefonicaid/fiware-orion/blob/master/doc/manuals/orion-api.md",
                "libversions": {},
            },
            "city-os": {"version": _version(), "ngsi-ld": "1.9.1"},
        }
    )


@routes.get("/statistics")
async def statistics(request: web.Request) -> web.Response:
    uptime = int(time.monotonic() - request.app[STARTED])
    return v2_json({"uptime_in_secs": uptime, "measuring_interval_in_secs": uptime})
