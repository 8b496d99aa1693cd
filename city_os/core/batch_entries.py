"""Batch entity operations, the entries' side: each entry with its own request context, parsed
(entities or fragments) with its error kept, the per-entity result, the noOverwrite report.

Layer: core/. Pure (no I/O): ``batch.BatchOperations`` runs the parsing off the event loop for a
heavy request and writes what it admits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from city_os.core.fragments import parse_fragment
from city_os.core.request import RequestContext
from city_os.errors import BadRequestData, NgsiLdError, ServiceUnavailable
from city_os.ngsild import merge
from city_os.ngsild.attributes import parse_entity
from city_os.ngsild.entity import ParsedEntity

EntryContexts = list[RequestContext | NgsiLdError] | None


@dataclass
class BatchResult:
    """Per-entity outcome of a batch operation (§5.6.7-5.6.10)."""

    success: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    errors: list[tuple[str, NgsiLdError]] = field(default_factory=list)


def entries(
    ctx: RequestContext, bodies: list[Any], contexts: EntryContexts
) -> list[tuple[Any, RequestContext | NgsiLdError]]:
    """Each batch entry with its own request context (JSON-LD entries carry their own)."""
    if contexts is None:
        return [(body, ctx) for body in bodies]
    return list(zip(bodies, contexts, strict=True))


Parsed = list[tuple[Any, ParsedEntity | NgsiLdError]]


def parse_entries(
    ctx: RequestContext,
    bodies: list[Any],
    contexts: EntryContexts,
    parse: Callable[[Any, RequestContext], ParsedEntity],
) -> Parsed:
    """Every entry parsed (pure: run off the event loop for a heavy request), or its error."""
    out: Parsed = []
    for body, ectx in entries(ctx, bodies, contexts):
        try:
            if isinstance(ectx, NgsiLdError):
                raise ectx
            out.append((body, parse(body, ectx)))
        except NgsiLdError as err:
            out.append((body, err))
    return out


def parse_entities(ctx: RequestContext, bodies: list[Any], contexts: EntryContexts) -> Parsed:
    def parse(body: Any, ectx: RequestContext) -> ParsedEntity:
        return parse_entity(body, ectx.terms, ctx.now, limits=ctx.limits)

    return parse_entries(ctx, bodies, contexts, parse)


def fragment_parser(allow_null: bool) -> Callable[[Any, RequestContext], ParsedEntity]:
    def parse(body: Any, ectx: RequestContext) -> ParsedEntity:
        return parse_fragment(body, ectx, allow_null=allow_null, id_required=True)

    return parse


def not_overwritten(ctx: RequestContext, outcome: merge.Outcome) -> BadRequestData:
    """The error of an entity that noOverwrite wrote in part or not at all: its detail names both
    lists, and it carries them as the UpdateResult members (§5.2.18) ``updated``/``notUpdated``."""
    updated = [ctx.terms.compact_attr(i) for i in outcome.updated]
    skipped = [ctx.terms.compact_attr(i) for i, _ in outcome.not_updated]
    written = ", ".join(updated) if updated else "none"
    return BadRequestData(
        f"attributes not updated (noOverwrite): {', '.join(skipped)}; written: {written}",
        updated=updated,
        notUpdated=[
            {"attributeName": ctx.terms.compact_attr(i), "reason": reason}
            for i, reason in outcome.not_updated
        ],
    )


def busy(entity_id: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"entity {entity_id} is changing too often to write it; try again")
