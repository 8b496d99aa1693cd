"""Distributed retrieve and query of entities (§4.3.6, §5.7.1.4, §5.7.2.4): local data plus sources.

Layer: federation/. ``Federation`` is the hook ``EntityService.retrieve`` and
``QueryService.query`` call when it is installed. It asks the registration index which
registrations match the request; with none (or ``local=true``, or a request that came round
in a loop) the local operation runs exactly as without federation. Otherwise the local
operation and one request per matching source run in parallel (bounded by the client), each
source with its own timeout; the answers are parsed with the request's @context into
fragments and merged by registration mode (federation/merge.py). A source that fails, hangs
or answers an error status never fails the request: what arrived is returned, and each
missing source is reported in an ``NGSILD-Warning`` (ctx.warnings, written by the API layer).

Forwarded requests ask the source only for what it registered: the entity ids it names, and
``attrs`` cut to its registered attributes (a source with nothing the client asked for is not
called at all). Pages of a query across sources are cut from the merged list: every place
is asked for the first ``offset + limit + 1`` matches, so an entity held in several places is
counted once.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from city_os.core.request import RequestContext
from city_os.errors import NgsiLdError, ResourceNotFound
from city_os.federation.client import SourceAnswer, SourceClient, Target, link_header
from city_os.federation.index import RegistrationIndex
from city_os.federation.merge import Fragment, Origin, group_by_id, merge_entity
from city_os.federation.model import Registration
from city_os.federation.via import Hops, LoopDetected
from city_os.ngsild.entity import parse_entity
from city_os.ngsild.representation import EntityRecord

log = logging.getLogger(__name__)

# Query parameters that are the broker's own business and never forwarded as the client sent
# them (paging and output are redone here; local/csf chose the sources).
_NOT_FORWARDED = frozenset(
    {
        "limit", "offset", "count", "options", "format", "local", "csf", "entityMap", "pick",
        "omit", "join", "joinLevel", "geometryProperty", "lang", "via", "contextSourceIdentity",
    }
)  # fmt: skip
MAX_SOURCE_PAGE = 1000


@dataclass(frozen=True)
class Source:
    """A matching registration, seen by one request."""

    registration: Registration
    attrs: frozenset[str] | None  # what the source holds for the request (None: everything)

    @property
    def origin(self) -> Origin:
        return self.registration.mode

    def target(self) -> Target:
        reg = self.registration
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
        operation: str,
        *,
        local: bool | None = None,
        attrs: Iterable[str] = (),
        **selection: Any,
    ) -> list[Source]:
        """The sources to consult; raises LoopDetected when the request came round in a loop
        and only an exclusive or redirect source could serve it."""
        if local:
            return []
        wanted = frozenset(attrs)
        csf = dict(ctx.params).get("csf")
        found = self.index.matching(
            ctx.tenant,
            operation,
            attrs=sorted(wanted) or None,
            csf=csf,
            terms=ctx.terms,
            **selection,
        )
        registrations: Sequence[Registration] = found
        if not registrations:
            return []
        hops = Hops(ctx.via, self.me)
        if hops.looped:
            if any(r.mode in ("exclusive", "redirect") for r in registrations):
                raise LoopDetected(
                    f"the request already went through this broker ({self.me}, Via: {ctx.via})"
                )
            return []
        out: list[Source] = []
        for reg in registrations:
            if hops.visited(reg.endpoint):
                continue
            held = reg.registered_attrs(selection.get("entity_id"), selection.get("types"))
            if held is not None and wanted:
                held = held & wanted
                if not held:
                    continue
            elif held is None and wanted:
                held = wanted
            out.append(Source(reg, held))
        return out

    def via(self, ctx: RequestContext) -> str:
        return Hops(ctx.via, self.me).outgoing()

    # --------------------------------------------------------------- retrieve

    async def retrieve(
        self,
        ctx: RequestContext,
        entity_id: str,
        type_filter: str | None,
        local: Callable[[], Awaitable[EntityRecord]],
        *,
        attrs: Iterable[str] = (),
        types: list[str] | None = None,
        local_only: bool | None = None,
    ) -> EntityRecord:
        sources = await self.sources(
            ctx,
            "retrieveEntity",
            local=local_only,
            attrs=attrs,
            entity_id=entity_id,
            types=types,
        )
        if not sources:
            return await local()
        path = "/entities/" + quote(entity_id, safe=":")
        calls = [
            self.client.call(
                s.target(),
                "GET",
                path,
                operation="retrieveEntity",
                params=self._params(ctx, s, type_filter=type_filter),
                context=ctx.context,
                via=self.via(ctx),
            )
            for s in sources
        ]
        mine = asyncio.ensure_future(_local_or_none(local()))
        answers: list[SourceAnswer] = await asyncio.gather(*calls)
        local_record = await mine
        fragments: list[Fragment] = []
        if local_record is not None:
            fragments.append(Fragment(local_record, "local"))
        for source, answer in zip(sources, answers, strict=True):
            if answer.status == 404:
                continue
            fragments.extend(self._fragments(ctx, source, answer, single=True))
        if not fragments:
            raise ResourceNotFound(f"entity {entity_id} not found")
        return merge_entity(fragments)

    # ------------------------------------------------------------------ query

    async def query(
        self,
        ctx: RequestContext,
        selection: dict[str, Any],
        window: int,
        local: Callable[[int], Awaitable[tuple[list[EntityRecord], int | None, bool]]],
        *,
        attrs: Iterable[str] = (),
        local_only: bool | None = None,
        count: bool = False,
    ) -> tuple[list[EntityRecord], int | None, bool] | None:
        """The first ``window`` merged entities, their total (with ``count``) and whether more
        exist; None when no source matches (the caller runs its local query as usual)."""
        sources = await self.sources(ctx, "queryEntity", local=local_only, attrs=attrs, **selection)
        if not sources:
            return None
        limit = min(window + 1, MAX_SOURCE_PAGE)
        calls = [
            self.client.call(
                s.target(),
                "GET",
                "/entities",
                operation="queryEntity",
                params=[
                    *self._params(ctx, s, ids=True),
                    ("limit", str(limit)),
                    *([("count", "true")] if count else []),
                ],
                context=ctx.context,
                via=self.via(ctx),
            )
            for s in sources
        ]
        mine = asyncio.ensure_future(local(window + 1))
        answers: list[SourceAnswer] = await asyncio.gather(*calls)
        records, local_total, local_more = await mine
        fragments = [Fragment(r, "local") for r in records]
        more = local_more
        total = local_total or 0
        for source, answer in zip(sources, answers, strict=True):
            found = self._fragments(ctx, source, answer, single=False)
            fragments.extend(found)
            more = more or len(found) > window
            total += _remote_count(answer, len(found))
        merged = [merge_entity(group) for group in group_by_id(fragments)]
        overlap = len(fragments) - len(merged)
        return merged, (max(total - overlap, len(merged)) if count else None), more

    # ---------------------------------------------------------------- helpers

    def _params(
        self,
        ctx: RequestContext,
        source: Source,
        *,
        ids: bool = False,
        type_filter: str | None = None,
    ) -> list[tuple[str, str]]:
        params = [(k, v) for k, v in ctx.params if k not in _NOT_FORWARDED and k != "attrs"]
        names = {k for k, _ in params}
        if type_filter is not None and "type" not in names:
            params.append(("type", type_filter))
        registered = source.registration.entity_ids()
        all_named = all(
            e.id is not None for i in source.registration.information for e in i.entities
        ) and any(i.entities for i in source.registration.information)
        if ids and registered and all_named and "id" not in names:
            params.append(("id", ",".join(sorted(registered))))
        forwardable = link_header(ctx.context) is not None
        if source.attrs is not None:
            # sorted: the same request asks a source the same way every time
            shown = sorted(ctx.terms.compact_attr(a) if forwardable else a for a in source.attrs)
            params.append(("attrs", ",".join(shown)))
        if not forwardable:  # the source cannot know the client's terms: send full IRIs
            params = [(k, _expand_types(ctx, v) if k == "type" else v) for k, v in params]
        return params

    def _fragments(
        self, ctx: RequestContext, source: Source, answer: SourceAnswer, *, single: bool
    ) -> list[Fragment]:
        if not answer.ok:
            ctx.warnings.append(answer.warning())
            return []
        bodies = [answer.body] if single else answer.body
        if not isinstance(bodies, list):
            ctx.warnings.append(_bad(answer, "the answer is not an entity array"))
            return []
        out: list[Fragment] = []
        for body in bodies:
            record = remote_record(ctx, body)
            if record is None:
                ctx.warnings.append(_bad(answer, "an answered entity is not valid NGSI-LD"))
                continue
            owned = source.attrs if source.origin in ("exclusive", "redirect") else None
            out.append(Fragment(record, source.origin, owned, source.registration.id))
        return out


def remote_record(ctx: RequestContext, body: Any) -> EntityRecord | None:
    """An entity answered by a source (normalized or concise, compacted with the request's
    @context) as a stored-form record; system timestamps only where the source sent them."""
    if not isinstance(body, dict):
        return None
    try:
        parsed = parse_entity(body, ctx.terms, ctx.now, limits=ctx.limits)
    except NgsiLdError:
        return None
    attrs = {}
    for iri, instances in parsed.attrs.items():
        raw = body.get(ctx.terms.compact_attr(iri))
        raws = raw if isinstance(raw, list) else [raw]
        attrs[iri] = [_with_source_times(i, r) for i, r in zip(instances, raws, strict=False)]
    return EntityRecord(
        parsed.id,
        parsed.types,
        attrs,
        parsed.scopes,
        str(body.get("createdAt", "")),
        str(body.get("modifiedAt", "")),
        parsed.expires_at,
    )


def _with_source_times(instance: dict[str, Any], raw: Any) -> dict[str, Any]:
    kept = {k: v for k, v in instance.items() if k not in ("createdAt", "modifiedAt")}
    if isinstance(raw, dict):
        for member in ("createdAt", "modifiedAt"):
            if isinstance(raw.get(member), str):
                kept[member] = raw[member]
    return kept


_TYPE_NAME = re.compile(r"[^|;,()\s]+")


def _expand_types(ctx: RequestContext, selection: str) -> str:
    """A type selection (``A|B``, ``(A;B)``, ``A,B``) with every name expanded."""
    return _TYPE_NAME.sub(lambda m: ctx.terms.expand_type(m.group(0)), selection)


def _remote_count(answer: SourceAnswer, found: int) -> int:
    raw = answer.headers.get("NGSILD-Results-Count")
    if raw is not None and raw.isdigit():
        return int(raw)
    return found


def _bad(answer: SourceAnswer, why: str) -> str:
    return replace(answer, error=why).warning()


async def _local_or_none(local: Awaitable[EntityRecord]) -> EntityRecord | None:
    try:
        return await local
    except ResourceNotFound:
        return None
