"""Distributed temporal retrieve and query (§4.3.6, §5.7.3.4, §5.7.4.4): local plus sources.

Layer: federation/. ``TemporalFederation`` is the hook ``TemporalService.retrieve`` and
``TemporalService.query`` call when it is installed. Registrations that serve
``retrieveTemporal`` (GET /temporal/entities/{id}) or ``queryTemporal`` (GET /temporal/entities)
and cover the entity, its types and the attributes asked for are the sources. With none (or
``local=true``, or a loop) the local operation runs exactly as without federation. Otherwise the
local operation and one request per source run in parallel (the source client bounds them; each
source has its own timeout); every source is asked with the client's temporal parameters
(timerel, timeAt, endTimeAt, timeproperty, lastN, q, options, lang, datasetId…), the entity
selection cut to what it registered, Via, the @context in Link, its tenant and
contextSourceInfo (federation/client.py). A source that fails or hangs never fails the request:
it is reported in ``NGSILD-Warning`` exactly like the entity query (a 404 is not abnormal).

The answers are merged per entity id in their compacted JSON form (federation/temporal_merge.py):
inclusive sources add instances (de-duplicated by instanceId), exclusive and redirect sources own
their registered attributes, auxiliary sources only fill attributes nobody else has; instances of
each attribute are kept in time order and ``lastN`` is applied after the merge.

Choices: aggregated temporal representation (aggrMethods) is refused with 400 when a source
matches — averages, and the periods of different places, cannot be merged exactly (local=true
gives the local aggregation). A query pages over the merged list ordered by entity id, each
place being asked for the first ``offset + limit + 1`` entities. Content-Range (§6.3.10) is the
local one: a source that cut its instances (206) is merged with what it sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from city_os.core.request import RequestContext
from city_os.errors import BadRequestData, ResourceNotFound
from city_os.federation.client import INVALID_PAYLOAD, SourceAnswer
from city_os.federation.distributed import MAX_SOURCE_PAGE, Federation, target
from city_os.federation.distributed_request import Source, outbound
from city_os.federation.temporal_merge import Part, merge_temporal

RETRIEVE_OPERATIONS = ("retrieveTemporal", "queryTemporal")
QUERY_OPERATIONS = ("queryTemporal",)
# Temporal parameters the entity request drops but a temporal source needs as the client sent them.
PASSED_ON = ("options", "format", "lang")
Body = dict[str, Any]


@dataclass(frozen=True)
class TemporalPage:
    bodies: list[Body]
    content_range: str | None
    total: int | None
    more: bool
    places: dict[str, list[str]] | None = None  # entity id → "@none" and/or registration ids


class TemporalFederation:
    def __init__(self, federation: Federation) -> None:
        self.federation = federation

    async def retrieve(
        self,
        ctx: RequestContext,
        entity_id: str,
        local: Callable[[], Awaitable[tuple[Body, str | None]]],
        *,
        attrs: Iterable[str] = (),
        local_only: bool | None = None,
        aggregated: bool = False,
        last_n: int | None = None,
        timeproperty: str = "observedAt",
    ) -> tuple[Body, str | None, list[str]] | None:
        """The merged temporal entity, the local Content-Range and the places that held it;
        None when no source matches (the caller retrieves locally)."""
        sources = await self.federation.sources(
            ctx, RETRIEVE_OPERATIONS, local=local_only, attrs=attrs, entity_id=entity_id
        )
        if not sources:
            return None
        _refuse_aggregated(aggregated)
        mine = asyncio.ensure_future(_local_or_none(local()))
        answers = await asyncio.gather(*(self.ask(ctx, s, entity_id=entity_id) for s in sources))
        found = await mine
        parts: list[Part] = []
        content_range = None
        if found is not None:
            parts.append(Part(found[0], "local"))
            content_range = found[1]
        for source, answer in zip(sources, answers, strict=True):
            parts.extend(p for p in self.parts(ctx, source, answer) if p.body["id"] == entity_id)
        if not parts:
            raise ResourceNotFound(f"temporal entity {entity_id} not found")
        merged = merge_temporal(parts, last_n=last_n, timeproperty=timeproperty)
        return merged, content_range, _places(parts)

    async def query(
        self,
        ctx: RequestContext,
        selection: dict[str, Any],
        local: Callable[[int], Awaitable[TemporalPage]],
        *,
        limit: int,
        offset: int,
        count: bool,
        attrs: Iterable[str] = (),
        local_only: bool | None = None,
        descending: bool = False,
        aggregated: bool = False,
        last_n: int | None = None,
        timeproperty: str = "observedAt",
    ) -> TemporalPage | None:
        """One page of the merged temporal entities, ordered by id; None when no source
        matches (the caller queries locally). ``local(window)``: the first ``window``
        local entities."""
        sources = await self.federation.sources(
            ctx, QUERY_OPERATIONS, local=local_only, attrs=attrs, **selection
        )
        if not sources:
            return None
        _refuse_aggregated(aggregated)
        window = offset + limit
        asked = min(window + 1, MAX_SOURCE_PAGE)
        mine = asyncio.ensure_future(local(window))
        calls = [self.ask(ctx, s, limit=asked, count=count) for s in sources]
        answers: list[SourceAnswer] = await asyncio.gather(*calls)
        page = await mine
        parts = [Part(b, "local") for b in page.bodies]
        total, more = page.total or 0, page.more
        for source, answer in zip(sources, answers, strict=True):
            found = self.parts(ctx, source, answer)
            parts.extend(found)
            more = more or len(found) > window
            total += _remote_count(answer, len(found))
        groups: dict[str, list[Part]] = {}
        for part in parts:
            groups.setdefault(str(part.body.get("id")), []).append(part)
        ordered = sorted(groups.items(), reverse=descending)
        merged = [merge_temporal(g, last_n=last_n, timeproperty=timeproperty) for _, g in ordered]
        overlap = len(parts) - len(merged)
        return TemporalPage(
            merged[offset:window],
            page.content_range,
            max(total - overlap, len(merged)) if count else None,
            more or len(merged) > window,
            {entity_id: _places(group) for entity_id, group in ordered[offset:window]},
        )

    # ---------------------------------------------------------------- helpers

    async def ask(
        self,
        ctx: RequestContext,
        source: Source,
        *,
        entity_id: str | None = None,
        limit: int | None = None,
        count: bool = False,
    ) -> SourceAnswer:
        """The source's temporal answer: the entity request's selection (ids, types, attrs cut
        to the registration, local for localOnly) on the temporal paths, with the temporal
        parameters of the client."""
        retrieve = entity_id is not None and source.operation == "retrieveTemporal"
        like = replace(source, operation="retrieveEntity" if retrieve else "queryEntity")
        out = outbound(ctx, like, entity_id=entity_id, limit=limit, count=count)
        params = [(k, v) for k, v in out.params if k != "entityMapLifetime"]
        params += [(k, v) for k, v in ctx.params if k in PASSED_ON]
        return await self.federation.client.call(
            target(source.registration),
            "GET",
            "/temporal" + out.path,
            operation=source.operation,
            params=params,
            context=ctx.context,
            via=self.federation.via(ctx),
            incoming=ctx.headers,
        )

    def parts(self, ctx: RequestContext, source: Source, answer: SourceAnswer) -> list[Part]:
        if not answer.ok:
            if answer.status != 404:
                ctx.warnings.append(answer.warning())
            return []
        bodies = answer.body if isinstance(answer.body, list) else [answer.body]
        good = [b for b in bodies if isinstance(b, dict) and isinstance(b.get("id"), str)]
        if len(good) != len(bodies):
            why = "the answer is not a temporal entity or an array of them"
            ctx.warnings.append(replace(answer, error=why, code=INVALID_PAYLOAD).warning())
        owned, reg_id = None, source.registration.id
        owner = source.origin in ("exclusive", "redirect")
        if source.owned is not None:
            owned = frozenset(ctx.terms.compact_attr(a) for a in source.owned)
        return [Part(_compacted(ctx, b), source.origin, owned, owner, reg_id) for b in good]


_HEAD = frozenset({"id", "type", "scope", "@context", "createdAt", "modifiedAt", "deletedAt"})


def _compacted(ctx: RequestContext, body: Body) -> Body:
    """A source's entity with attribute names as the client's @context writes them (a source
    that could not be sent the @context answers full IRIs)."""
    out: Body = {}
    for key, value in body.items():
        if key == "@context":
            continue
        if key in _HEAD:
            out[key] = value
        else:
            name = ctx.terms.compact_attr(ctx.terms.expand_attr(key) or key)
            if name in out and isinstance(out[name], list) and isinstance(value, list):
                out[name] = out[name] + value
            else:
                out[name] = value
    types = out.get("type")
    if isinstance(types, str):
        out["type"] = ctx.terms.compact_type(ctx.terms.expand_type(types))
    elif isinstance(types, list):
        out["type"] = [ctx.terms.compact_type(ctx.terms.expand_type(str(t))) for t in types]
    return out


def _places(parts: list[Part]) -> list[str]:
    out: list[str] = []
    for part in parts:
        place = part.source or "@none"
        if place not in out:
            out.append(place)
    return out


def _refuse_aggregated(aggregated: bool) -> None:
    if aggregated:
        raise BadRequestData(
            "aggrMethods cannot be used when context sources match: aggregations computed by "
            "several places cannot be merged exactly; add local=true to aggregate the local "
            "instances only"
        )


def _remote_count(answer: SourceAnswer, found: int) -> int:
    raw = answer.headers.get("NGSILD-Results-Count")
    if raw is not None and raw.isdigit():
        return int(raw)
    return found


async def _local_or_none(
    local: Awaitable[tuple[Body, str | None]],
) -> tuple[Body, str | None] | None:
    try:
        return await local
    except ResourceNotFound:
        return None
