"""Distributed discovery (§5.7.5-5.7.10 with §4.3.6): /types and /attributes over the sources too.

Layer: federation/. ``DiscoveryService`` computes its local answer, then, with federation
installed and sources registered for the operation, this hook asks each of them the same
question (same path, the client's @context in ``Link``) in parallel and joins the answers:
lists are unions (in first-seen order), counts are sums, attribute and type names are
unions. Sources that fail are reported in ``NGSILD-Warning`` like the other distributed reads;
a name that only a source knows is found (a 404 here is not final when a source knows it).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from city_os.core.request import RequestContext
from city_os.federation.client import SourceAnswer
from city_os.federation.distributed import Federation, target


async def _ask(
    federation: Federation, ctx: RequestContext, operation: str, path: str, **selection: Any
) -> list[Any]:
    sources = await federation.sources(ctx, operation, **selection)
    if not sources:
        return []
    params = [(k, v) for k, v in ctx.params if k == "details"]
    answers: list[SourceAnswer] = await asyncio.gather(
        *(
            federation.client.call(
                target(s.registration),
                "GET",
                path,
                operation=operation,
                params=params,
                context=ctx.context,
                via=federation.via(ctx),
                incoming=ctx.headers,
            )
            for s in sources
        )
    )
    out = []
    for answer in answers:
        if answer.ok:
            out.append(answer.body)
        elif answer.status != 404:
            ctx.warnings.append(answer.warning())
    return out


def _union(items: list[Any]) -> list[Any]:
    return list(dict.fromkeys(i for i in items if isinstance(i, str)))


async def join_list(
    federation: Federation, ctx: RequestContext, kind: str, local: Any, *, details: bool
) -> Any:
    """``kind``: "types" or "attributes"; ``local``: this broker's answer."""
    operation = {
        ("types", False): "retrieveEntityTypes",
        ("types", True): "retrieveEntityTypeDetails",
        ("attributes", False): "retrieveAttrTypes",
        ("attributes", True): "retrieveAttrTypeDetails",
    }[kind, details]
    remote = await _ask(federation, ctx, operation, "/" + kind)
    if not remote:
        return local
    if not details:
        member = "typeList" if kind == "types" else "attributeList"
        names = list(local[member])
        for body in remote:
            if isinstance(body, dict) and isinstance(body.get(member), list):
                names.extend(body[member])
        return {**local, member: _union(names)}
    names_member = "attributeNames" if kind == "types" else "typeNames"
    joined: dict[str, dict[str, Any]] = {item["id"]: dict(item) for item in local}
    for body in remote:
        for item in body if isinstance(body, list) else ():
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            mine = joined.setdefault(item["id"], dict(item))
            mine[names_member] = _union([*mine.get(names_member, []), *item.get(names_member, [])])
    return list(joined.values())


async def join_one(
    federation: Federation,
    ctx: RequestContext,
    kind: str,
    name: str,
    iri: str,
    local: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """/types/{type} or /attributes/{attr}: counts summed, details joined (None: nowhere)."""
    if kind == "types":
        operation, selection = "retrieveEntityTypeInfo", {"types": [iri]}
        count, details, names = "entityCount", "attributeDetails", None
    else:
        operation, selection = "retrieveAttrTypeInfo", {"attrs": [iri]}
        count, details, names = "attributeCount", None, "typeNames"
    remote = await _ask(federation, ctx, operation, f"/{kind}/{quote(name, safe=':')}", **selection)
    found = [b for b in remote if isinstance(b, dict)]
    if not found:
        return local
    out = dict(local) if local is not None else dict(found[0])
    if local is None:
        found = found[1:]
    for body in found:
        if isinstance(body.get(count), int):
            out[count] = int(out.get(count, 0)) + body[count]
        if details is not None:
            seen = {d.get("id") for d in out.get(details, [])}
            extra = [d for d in body.get(details, []) if d.get("id") not in seen]
            out[details] = [*out.get(details, []), *extra]
        if names is not None:
            out[names] = _union([*out.get(names, []), *body.get(names, [])])
        if kind == "attributes":
            out["attributeTypes"] = _union(
                [*out.get("attributeTypes", []), *body.get("attributeTypes", [])]
            )
    return out
