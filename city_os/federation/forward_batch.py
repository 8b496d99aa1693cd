"""Batch writes split per context source (§5.6.7-5.6.10, §5.6.20 with §4.3.6 distribution).

Layer: federation/. Every entry of a batch is matched against the registrations like a single
write (federation/forward.py): its part for each serving source is set aside, what no
exclusive or redirect source owns stays for the local batch. Each source then gets ONE batch
request holding all its parts (POST {endpoint}/ngsi-ld/v1/entityOperations/{op}, the
client's options kept), in parallel with the local batch. The result joins them entity by
entity: an entity succeeded when every place that had a part of it took it; each failure is
listed with the registration (or the local broker) that refused it, so the 207 says what each
source answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from city_os.core.batch import BatchResult, EntryContexts
from city_os.core.request import RequestContext
from city_os.core.slices import Slicer
from city_os.errors import NgsiLdError, ResourceNotFound
from city_os.federation.client import SourceAnswer
from city_os.federation.distributed import Federation, target
from city_os.federation.distributed_request import Source
from city_os.federation.forward import Forwarded, _own, _part
from city_os.ngsild.entity import ENTITY_MEMBERS, expand_attr_name

LocalBatch = Callable[[list[Any], EntryContexts], Awaitable[BatchResult]]
_MEMBERS = frozenset({*ENTITY_MEMBERS, "@context"})


class SourceFailed(NgsiLdError):
    """A context source did not take its part of a batch (the detail says what it answered)."""

    type_uri = "https://uri.etsi.org/ngsi-ld/errors/BadGateway"
    status = 502
    title = "Context source failed"


@dataclass
class _SourceBatch:
    source: Source
    ids: list[str] = field(default_factory=list)
    parts: list[Any] = field(default_factory=list)


@dataclass
class BatchOutcome:
    result: BatchResult
    registrations: dict[str, str] = field(default_factory=dict)  # entity id → failing reg id


def _entry_id(body: Any) -> str | None:
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        raw = body.get("id", body.get("@id"))
        return raw if isinstance(raw, str) else None
    return None


def _entry_types(ctx: RequestContext, body: Any) -> list[str] | None:
    raw = body.get("type", body.get("@type")) if isinstance(body, dict) else None
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        return None
    return [ctx.terms.expand_type(t) for t in raw]


async def federated_batch(
    federation: Federation,
    ctx: RequestContext,
    operation: str,
    path: str,
    bodies: list[Any],
    contexts: EntryContexts,
    local: LocalBatch,
) -> BatchOutcome | None:
    """The joined outcome, or None when no entry matches a source (the caller runs its
    local batch as usual)."""
    if ("local", "true") in ctx.params:
        return None
    entry_ctx = contexts if contexts is not None else [ctx] * len(bodies)
    batches: dict[str, _SourceBatch] = {}
    local_bodies: list[Any] = []
    local_contexts: list[RequestContext | NgsiLdError] = []
    slicer = Slicer()  # 1,000 entries are matched in tens of milliseconds: shared in slices
    for body, own in zip(bodies, entry_ctx, strict=True):
        await slicer.tick()
        entity_id = _entry_id(body)
        if entity_id is None or not isinstance(own, RequestContext):
            local_bodies.append(body)
            local_contexts.append(own)
            continue
        names = {
            k: expand_attr_name(own.terms, k)
            for k in (body if isinstance(body, dict) else {})
            if k not in _MEMBERS
        }
        sources = await federation.sources(
            own,
            operation,
            attrs=list(names.values()),
            entity_id=entity_id,
            types=_entry_types(own, body),
        )
        sources = [s for s in sources if s.origin != "auxiliary"]
        fw = Forwarded(entity_id)
        for source in sources:
            _own(fw, source)
            batch = batches.setdefault(source.registration.id, _SourceBatch(source))
            batch.ids.append(entity_id)
            batch.parts.append(_part(body, names, source.attrs) if isinstance(body, dict) else body)
        redirect = any(s.origin == "redirect" for s in sources)
        if fw.all_owned or (redirect and operation == "deleteBatch"):
            continue
        owned_all = bool(names) and all(iri in fw.owned for iri in names.values())
        if owned_all:  # every attribute went to its owner: nothing of it stays here
            continue
        local_bodies.append(fw.strip(own, body) if isinstance(body, dict) else body)
        local_contexts.append(own)
    if not batches:
        return None
    calls = [
        federation.client.call(
            target(b.source.registration),
            "POST",
            "/entityOperations" + path,
            operation=operation,
            params=[(k, v) for k, v in ctx.params if k == "options"],
            body=b.parts,
            context=ctx.context,
            via=federation.via(ctx),
            incoming=ctx.headers,
        )
        for b in batches.values()
    ]
    mine = asyncio.ensure_future(
        local(local_bodies, local_contexts if contexts is not None else None)
        if local_bodies
        else _empty()
    )
    answers: list[SourceAnswer] = await asyncio.gather(*calls)
    result = await mine
    return _join(result, list(batches.values()), answers, [_entry_id(b) for b in bodies])


async def _empty() -> BatchResult:
    return BatchResult()


def _join(
    local: BatchResult,
    batches: list[_SourceBatch],
    answers: list[SourceAnswer],
    order: list[str | None],
) -> BatchOutcome:
    errors: dict[str, NgsiLdError] = dict(local.errors)
    failing: dict[str, str] = {}
    success = set(local.success)
    created = list(local.created)
    for batch, answer in zip(batches, answers, strict=True):
        refused = _refused(answer, batch)
        for entity_id in batch.ids:
            if entity_id in refused:
                errors[entity_id] = refused[entity_id]
                failing.setdefault(entity_id, batch.source.registration.id)
                continue
            success.add(entity_id)
            if isinstance(errors.get(entity_id), ResourceNotFound) and entity_id not in failing:
                del errors[entity_id]  # not held here, but taken by the source
                if answer.status == 201 and entity_id not in created:
                    created.append(entity_id)
    ordered = [i for i in dict.fromkeys(order) if i is not None]
    result = BatchResult(
        success=[i for i in ordered if i in success and i not in errors],
        created=[i for i in created if i not in errors],
        errors=[(i, errors[i]) for i in ordered if i in errors]
        + [(i, e) for i, e in errors.items() if i not in ordered],
    )
    return BatchOutcome(result, failing)


def _refused(answer: SourceAnswer, batch: _SourceBatch) -> dict[str, NgsiLdError]:
    """The entities the source did not take, and why."""
    reg = batch.source.registration.id
    if answer.ok and answer.status != 207:
        return {}
    if answer.status == 207 and isinstance(answer.body, dict):
        out: dict[str, NgsiLdError] = {}
        for item in answer.body.get("errors") or ():
            if isinstance(item, dict) and isinstance(item.get("entityId"), str):
                raw = item.get("error")
                problem: dict[str, Any] = raw if isinstance(raw, dict) else {}
                detail = str(problem.get("detail") or problem.get("title") or "refused")
                out[item["entityId"]] = SourceFailed(f"registration {reg}: {detail}")
        return out
    why = answer.error or f"HTTP {answer.status}"
    return {i: SourceFailed(f"registration {reg}: {why}") for i in batch.ids}
