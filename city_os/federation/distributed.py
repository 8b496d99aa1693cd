"""Distributed retrieve and query of entities (§4.3.6, §5.7.1.4, §5.7.2.4): local data plus sources.

Layer: federation/. ``Federation`` is the hook ``EntityService.retrieve`` and
``QueryService.query`` call when it is installed. It asks the registration index which
registrations match the request; with none (or ``local=true``, or a request that came round
in a loop) the local operation runs exactly as without federation. Otherwise the local
operation and one request per matching source (federation/distributed_request.py) run in
parallel (bounded by the client), each source with its own timeout; the answers are parsed
with the request's @context into fragments and merged by registration mode
(federation/merge.py). A source that fails, hangs or answers an error status never fails the
request: what arrived is returned, and each missing source is reported in an
``NGSILD-Warning`` (ctx.warnings, written by the API layer; a 404 is not abnormal).

Pages of a query across sources are cut from the merged list: every place is asked for the
first ``offset + limit + 1`` matches, so an entity held in several places is counted once.
Ordering (orderBy) is refused for a distributed query: the sources' orders cannot be merged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Any

from city_os.core.request import RequestContext
from city_os.errors import BadRequestData, ResourceNotFound
from city_os.federation.client import INVALID_PAYLOAD, SourceAnswer, SourceClient, Target
from city_os.federation.distributed_request import (
    Source,
    outbound,
    split_entities,
)
from city_os.federation.index import RegistrationIndex
from city_os.federation.merge import Fragment, group_by_id, merge_entity
from city_os.federation.model import Registration
from city_os.federation.remote import Reader
from city_os.federation.via import Hops, LoopDetected
from city_os.ngsild.representation import EntityRecord

log = logging.getLogger(__name__)
MAX_SOURCE_PAGE = 1000
RETRIEVE_OPERATIONS = ("retrieveEntity", "queryEntity", "queryBatch")
QUERY_OPERATIONS = ("queryEntity", "queryBatch")
LocalPage = tuple[list[EntityRecord], int | None, bool]


def target(reg: Registration) -> Target:
    timeout = reg.management.timeout
    return Target(
        endpoint=reg.endpoint,
        registration=reg.id,
        tenant=reg.tenant,
        info=reg.context_source_info,
        timeout=timeout / 1000 if timeout else None,
    )


class Federation:
    def __init__(self, index: RegistrationIndex, client: SourceClient, me: str) -> None:
        self.index = index
        self.client = client
        self.me = me  # this broker's identity in Via (federation/via.py)

    # ---------------------------------------------------------------- sources

    async def sources(
        self,
        ctx: RequestContext,
        operations: str | tuple[str, ...],
        *,
        local: bool | None = None,
        attrs: Iterable[str] = (),
        **selection: Any,
    ) -> list[Source]:
        """The sources to consult, each with the first of ``operations`` it serves; raises
        LoopDetected when the request came round in a loop and only an exclusive or
        redirect source could serve it."""
        if local:
            return []
        ops = (operations,) if isinstance(operations, str) else operations
        wanted = frozenset(attrs)
        csf = dict(ctx.params).get("csf")
        found: dict[str, tuple[Registration, str]] = {}
        for operation in ops:
            for reg in self.index.matching(
                ctx.tenant,
                operation,
                attrs=sorted(wanted) or None,
                csf=csf,
                terms=ctx.terms,
                **selection,
            ):
                found.setdefault(reg.id, (reg, operation))
        if not found:
            return []
        hops = Hops(ctx.via, self.me)
        if hops.looped:
            if any(r.mode in ("exclusive", "redirect") for r, _ in found.values()):
                raise LoopDetected(
                    f"the request already went through this broker ({self.me}, Via: {ctx.via})"
                )
            return []
        out: list[Source] = []
        for reg, operation in found.values():
            if hops.visited(reg.endpoint):
                continue
            held = reg.registered_attrs(selection.get("entity_id"), selection.get("types"))
            if held is not None and wanted:
                held = held & wanted
                if not held:
                    continue
            elif held is None and wanted:
                held = wanted
            out.append(Source(reg, held, operation))
        return out

    def via(self, ctx: RequestContext) -> str:
        return Hops(ctx.via, self.me).outgoing()

    async def ask(self, ctx: RequestContext, source: Source, **request: Any) -> SourceAnswer:
        out = outbound(ctx, source, **request)
        return await self.client.call(
            target(source.registration),
            out.method,
            out.path,
            operation=source.operation,
            params=out.params,
            body=out.body,
            context=ctx.context,
            via=self.via(ctx),
            incoming=ctx.headers,
        )

    # --------------------------------------------------------------- retrieve

    async def retrieve(
        self,
        ctx: RequestContext,
        entity_id: str,
        local: Callable[[], Awaitable[EntityRecord]],
        *,
        attrs: Iterable[str] = (),
        types: list[str] | None = None,
        local_only: bool | None = None,
    ) -> EntityRecord:
        sources = await self.sources(
            ctx,
            RETRIEVE_OPERATIONS,
            local=local_only,
            attrs=attrs,
            entity_id=entity_id,
            types=types,
        )
        if not sources:
            return await local()
        mine = asyncio.ensure_future(_local_or_none(local()))
        calls = [self.ask(ctx, s, entity_id=entity_id, limit=1) for s in sources]
        answers: list[SourceAnswer] = await asyncio.gather(*calls)
        local_record = await mine
        fragments: list[Fragment] = []
        if local_record is not None:
            fragments.append(Fragment(local_record, "local"))
        for source, answer in zip(sources, answers, strict=True):
            if answer.status == 404:
                continue  # not abnormal (§6.3.17)
            found = self.fragments(ctx, source, answer)
            fragments.extend(f for f in found if f.record.id == entity_id)
        if not fragments:
            raise ResourceNotFound(f"entity {entity_id} not found")
        return merge_entity(fragments)

    # ------------------------------------------------------------------ query

    async def query(
        self,
        ctx: RequestContext,
        selection: dict[str, Any],
        window: int,
        local: Callable[[], Awaitable[LocalPage]],
        *,
        attrs: Iterable[str] = (),
        local_only: bool | None = None,
        count: bool = False,
        ordered: bool = False,
        aggregate: Callable[[EntityRecord], bool] | None = None,
    ) -> LocalPage | None:
        """The first ``window`` merged entities (or more), their total (with ``count``) and
        whether more exist; None when no source matches (the caller queries locally)."""
        sources = await self.sources(
            ctx, QUERY_OPERATIONS, local=local_only, attrs=attrs, **selection
        )
        if not sources:
            return None
        if ordered:
            raise BadRequestData(
                "orderBy cannot be used in a distributed query (context sources match); "
                "add local=true to order the local entities"
            )
        limit = min(window + 1, MAX_SOURCE_PAGE)
        mine = asyncio.ensure_future(local())
        # each answer is read as it arrives, while the slower sources are still answering
        calls = [self._read(ctx, s, limit=limit, count=count) for s in sources]
        answers: list[tuple[SourceAnswer, list[Fragment], list[str]]]
        answers = await asyncio.gather(*calls)
        records, local_total, more = await mine
        fragments = [Fragment(r, "local") for r in records]
        total = local_total or 0
        for answer, found, warnings in answers:
            ctx.warnings.extend(warnings)  # in the order of the sources
            fragments.extend(found)
            more = more or len(found) > window
            total += _remote_count(answer, len(found))
        merged = [merge_entity(group) for group in group_by_id(fragments)]
        overlap = len(fragments) - len(merged)
        if aggregate is not None and split_entities(ctx):
            merged = [r for r in merged if aggregate(r)]
            total = len(merged)
        return merged, (max(total - overlap, len(merged)) if count else None), more

    # ---------------------------------------------------------------- helpers

    async def _read(
        self, ctx: RequestContext, source: Source, **request: Any
    ) -> tuple[SourceAnswer, list[Fragment], list[str]]:
        """Ask one source and read its answer: (answer, fragments, warnings)."""
        answer = await self.ask(ctx, source, **request)
        warnings: list[str] = []
        return answer, self.fragments(ctx, source, answer, warnings), warnings

    def fragments(
        self,
        ctx: RequestContext,
        source: Source,
        answer: SourceAnswer,
        warnings: list[str] | None = None,
    ) -> list[Fragment]:
        """The entities of an answer; what is wrong with it goes to ``warnings`` (default:
        the request's)."""
        said = ctx.warnings if warnings is None else warnings
        if not answer.ok:
            if answer.status != 404:
                said.append(answer.warning())
            return []
        bodies = answer.body if isinstance(answer.body, list) else [answer.body]
        if not all(isinstance(b, dict) for b in bodies):
            said.append(_bad(answer, "the answer is not an entity or an entity array"))
            return []
        out: list[Fragment] = []
        reader = Reader(ctx)
        for body in bodies:
            record = reader.record(body)
            if record is None:
                said.append(_bad(answer, "an answered entity is not valid NGSI-LD"))
                continue
            out.append(Fragment(record, source.origin, source.owned, source.registration.id))
        return out


def _remote_count(answer: SourceAnswer, found: int) -> int:
    raw = answer.headers.get("NGSILD-Results-Count")
    if raw is not None and raw.isdigit():
        return int(raw)
    return found


def _bad(answer: SourceAnswer, why: str) -> str:
    return replace(answer, error=why, code=INVALID_PAYLOAD).warning()


async def _local_or_none(local: Awaitable[EntityRecord]) -> EntityRecord | None:
    try:
        return await local
    except ResourceNotFound:
        return None
