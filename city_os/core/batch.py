"""Batch entity operations (§5.6.7-5.6.10, §5.6.20): create, upsert, update, merge, delete.

Layer: core/. Every entry is parsed, checked against the limits and validated first (the loop
yields to the event loop between time slices, so a 1,000-entity batch does not hold the process).
Then ALL the writes of the request go to the store in ONE transaction
(``EntityRepository.write_batch``): each entity's change is stored whole or not at all, and so is
the batch, whatever statement fails and wherever the process is killed. A concurrent change of
an entity rolls the batch back, and it is re-read and re-applied (optimistic, like single
writes); an entity PostgreSQL refuses is reported in the 207 and the others commit together. The
result lists exactly the entities whose change was committed (entries: ``batch_entries``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from city_os.auth.policy import Operation
from city_os.core.batch_entries import (
    BatchResult,
    EntryContexts,
    busy,
    fragment_parser,
    not_overwritten,
    parse_entities,
    parse_entries,
)
from city_os.core.cpu import off_loop
from city_os.core.fragments import (
    MAX_RETRIES,
    Change,
    body_id,
    copy_attrs,
    geo_changed,
    moved,
)
from city_os.core.request import RequestContext
from city_os.core.slices import Slicer, release, sliced
from city_os.errors import (
    AlreadyExists,
    BadRequestData,
    InternalError,
    NgsiLdError,
    ResourceNotFound,
)
from city_os.events.model import ChangeKind
from city_os.ngsild import merge
from city_os.ngsild.entity import ParsedEntity, check_entity_id
from city_os.ngsild.representation import EntityRecord
from city_os.store.postgres.entities import BatchOutcome, BatchWrites, Stored, Write

if TYPE_CHECKING:
    from city_os.core.entities import EntityService

__all__ = ["BatchOperations", "BatchResult", "EntryContexts", "not_overwritten"]


class BatchOperations:
    def __init__(self, service: EntityService) -> None:
        self._service = service

    # -- shared steps ------------------------------------------------------------------------

    async def _refused(
        self,
        ctx: RequestContext,
        schema: str,
        operation: Operation,
        records: list[EntityRecord],
        *,
        new: bool = False,
    ) -> dict[str, NgsiLdError]:
        """Access control per entity (auth/enforce.py): the refused ids with their 404/403."""
        access = self._service.access
        if access is None:
            return {}
        return await access.refusals(ctx, schema, operation, records, new=new)

    async def _change_write(
        self,
        schema: str,
        ctx: RequestContext,
        stored: Stored,
        out: tuple[EntityRecord, ChangeKind, list[str] | None] | None,
    ) -> Write:
        """The write of a change's result ``out`` to ``stored``, after admitting it."""
        assert out is not None
        record, kind, names = out
        access = self._service.access
        if access is not None and moved(stored.record, record):  # new types/scopes: writable?
            await access.check_new(ctx, Operation.CREATE, record)
        await self._service.admit(schema, ctx, record)
        return Write(
            record,
            self._service.event(kind, ctx, stored.record, record, names),
            stored.version,
            geo_changed(stored.record.attrs, record.attrs),
        )

    async def _reaps(self, ctx: RequestContext, schema: str, ids: list[str]) -> list[Write]:
        """Expired entities among ``ids`` not swept yet: removed (with their 'expired' events)
        in the batch's transaction, before the inserts that take their ids."""
        if not ids:
            return []
        expired = await self._service.repo.get_expired(schema, ids)
        event = self._service.event
        return [Write(s.record, event("expired", ctx, s.record, None), s.version) for s in expired]

    async def _store(
        self, result: BatchResult, schema: str, writes: BatchWrites, pending: dict[str, Any]
    ) -> BatchOutcome:
        """Write, and report the entities PostgreSQL refused (dropping them from ``pending``)."""
        outcome = await self._service.repo.write_batch(schema, writes)
        for entity_id, (state, message) in outcome.failed.items():
            kind = BadRequestData if state.startswith(("22", "54")) else InternalError
            result.errors.append(
                (entity_id, kind(f"entity {entity_id} cannot be stored: {message}"))
            )
            pending.pop(entity_id, None)
        return outcome

    # -- operations --------------------------------------------------------------------------

    async def create(
        self, ctx: RequestContext, bodies: list[Any], contexts: EntryContexts = None
    ) -> BatchResult:
        service = self._service
        result = BatchResult()
        schema = await service.schema(ctx, write=True)
        records: dict[str, EntityRecord] = {}
        slicer = Slicer()
        for body, parsed in await off_loop(ctx, parse_entities, ctx, bodies, contexts):
            await slicer.tick()
            try:
                if isinstance(parsed, NgsiLdError):
                    raise parsed
                if parsed.id in records:
                    raise AlreadyExists(f"entity {parsed.id} appears twice in the batch")
                record = service.new_record(parsed, ctx.now)
                await service.admit(schema, ctx, record)
                records[parsed.id] = record
            except NgsiLdError as err:
                result.errors.append((body_id(body), err))
        refused = await self._refused(ctx, schema, Operation.CREATE, [*records.values()], new=True)
        for entity_id, problem in refused.items():
            result.errors.append((entity_id, problem))
            del records[entity_id]
        for _ in range(MAX_RETRIES):
            if not records:
                return result
            writes = BatchWrites(
                inserts=await sliced(  # 1,000 events take ~100 ms: built in slices
                    lambda r: Write(r, service.event("created", ctx, None, r)), records.values()
                ),
                reaps=await self._reaps(ctx, schema, list(records)),
                strict=False,  # an id that exists is an answer (AlreadyExists), not a conflict
                owner=service.access.owner_grant(ctx) if service.access else None,
            )
            outcome = await self._store(result, schema, writes, records)
            if outcome.committed:
                for entity_id in records:
                    if entity_id in outcome.written:
                        result.success.append(entity_id)
                        result.created.append(entity_id)
                    else:
                        result.errors.append(
                            (entity_id, AlreadyExists(f"entity {entity_id} already exists"))
                        )
                await release(writes.inserts, records)
                return result
        result.errors.extend((entity_id, busy(entity_id)) for entity_id in records)
        return result

    async def upsert(
        self,
        ctx: RequestContext,
        bodies: list[Any],
        *,
        replace: bool,
        contexts: EntryContexts = None,
    ) -> BatchResult:
        """Create what is missing; replace (default) or update what exists (§5.6.8)."""
        service = self._service
        result = BatchResult()
        schema = await service.schema(ctx, write=True)
        pending: dict[str, ParsedEntity] = {}
        slicer = Slicer()
        for body, parsed in await off_loop(ctx, parse_entities, ctx, bodies, contexts):
            if isinstance(parsed, NgsiLdError):
                result.errors.append((body_id(body), parsed))
                continue
            previous = pending.get(parsed.id)
            if previous is not None and not replace:
                # With options=update, later occurrences are applied on top of earlier ones.
                merge.append(previous.attrs, parsed.attrs, overwrite=True)
                previous.types = list(dict.fromkeys([*previous.types, *parsed.types]))
            else:
                pending[parsed.id] = parsed  # a later occurrence replaces the earlier

        def change_for(p: ParsedEntity) -> Change:
            def change(stored: Stored) -> tuple[EntityRecord, ChangeKind, list[str] | None]:
                if replace:
                    rec = service.with_attrs(
                        stored,
                        p.attrs,
                        ctx.now,
                        types=p.types,
                        scopes=p.scopes,
                        expires_at=p.expires_at,
                    )
                    return rec, "replaced", None
                attrs = copy_attrs(stored.record.attrs)
                outcome = merge.append(attrs, copy_attrs(p.attrs), overwrite=True)
                types = list(dict.fromkeys([*stored.record.types, *p.types]))
                updated = service.with_attrs(stored, attrs, ctx.now, types=types)
                return updated, "updated", outcome.updated

            return change

        for _ in range(MAX_RETRIES):
            if not pending:
                return result
            existing = await service.repo.get_many(schema, list(pending))
            new_ids = [i for i in pending if i not in existing]
            writes = BatchWrites(reaps=await self._reaps(ctx, schema, new_ids))
            if service.access is not None:
                writes.owner = service.access.owner_grant(ctx)
            olds = [existing[i].record for i in pending if i in existing]
            news = [service.new_record(pending[i], ctx.now) for i in new_ids]
            refused = await self._refused(ctx, schema, Operation.UPDATE, olds)
            refused |= await self._refused(ctx, schema, Operation.CREATE, news, new=True)
            for entity_id, p in list(pending.items()):
                await slicer.tick()
                try:
                    if entity_id in refused:
                        raise refused[entity_id]
                    if entity_id in existing:
                        writes.updates.append(
                            await self._change_write(
                                schema, ctx, existing[entity_id], change_for(p)(existing[entity_id])
                            )
                        )
                    else:
                        record = service.new_record(p, ctx.now)
                        await service.admit(schema, ctx, record)
                        writes.inserts.append(
                            Write(record, service.event("created", ctx, None, record))
                        )
                except NgsiLdError as err:
                    result.errors.append((entity_id, err))
                    del pending[entity_id]
            outcome = await self._store(result, schema, writes, pending)
            if outcome.committed:
                inserted = {w.record.id for w in writes.inserts}
                result.created.extend(i for i in pending if i in inserted)
                result.success.extend(i for i in pending if i in outcome.written)
                await release(writes.updates, writes.inserts, olds, news, existing, pending)
                return result
        result.errors.extend((entity_id, busy(entity_id)) for entity_id in pending)
        return result

    async def modify(
        self,
        ctx: RequestContext,
        bodies: list[Any],
        make_change: Callable[[ParsedEntity], Change],
        *,
        allow_null: bool = False,
        contexts: EntryContexts = None,
        partial: dict[str, NgsiLdError] | None = None,
    ) -> BatchResult:
        """Batch update / merge: apply a change to each existing entity (§5.6.9, §5.6.20).

        ``partial`` collects entities the change wrote only in part (noOverwrite): each is
        reported under ``errors`` with what was and was not written (the UpdateResult members of
        §5.2.18 in its ProblemDetails), and stays under ``success`` when something of it was
        committed (docs/interoperability.md).
        """
        result = BatchResult()
        schema = await self._service.schema(ctx, write=False)
        pending: dict[str, ParsedEntity] = {}
        unchanged: set[str] = set()
        slicer = Slicer()
        parse = fragment_parser(allow_null)
        for body, fragment in await off_loop(ctx, parse_entries, ctx, bodies, contexts, parse):
            await slicer.tick()
            try:
                if isinstance(fragment, NgsiLdError):
                    raise fragment
                if fragment.id in pending:
                    raise BadRequestData(f"entity {fragment.id} appears twice in the batch")
                pending[fragment.id] = fragment
            except NgsiLdError as err:
                result.errors.append((body_id(body), err))
        for _ in range(MAX_RETRIES):
            if not pending:
                break
            existing = await self._service.repo.get_many(schema, list(pending))
            writes = BatchWrites()
            unchanged = set()
            refused = await self._refused(
                ctx, schema, Operation.UPDATE, [s.record for s in existing.values()]
            )
            for entity_id, fragment in list(pending.items()):
                await slicer.tick()
                try:
                    if entity_id not in existing:
                        raise ResourceNotFound(f"entity {entity_id} not found")
                    if entity_id in refused:
                        raise refused[entity_id]
                    out = make_change(fragment)(existing[entity_id])
                    if out is None:
                        unchanged.add(entity_id)
                        continue
                    writes.updates.append(
                        await self._change_write(schema, ctx, existing[entity_id], out)
                    )
                except NgsiLdError as err:
                    result.errors.append((entity_id, err))
                    del pending[entity_id]
            outcome = await self._store(result, schema, writes, pending)
            if outcome.committed:
                result.success.extend(i for i in pending if i in outcome.written or i in unchanged)
                await release(writes.updates, existing, pending)
                break
        result.errors.extend((entity_id, busy(entity_id)) for entity_id in pending)
        for entity_id, problem in (partial or {}).items():
            if entity_id in result.success:  # committed: its not-updated attributes are errors
                if entity_id in unchanged:  # nothing of it written
                    result.success.remove(entity_id)
                result.errors.append((entity_id, problem))
        return result

    def update_change(
        self, ctx: RequestContext, overwrite: bool, partial: dict[str, NgsiLdError]
    ) -> Callable[[ParsedEntity], Change]:
        """The change of batch update: append with or without overwriting (noOverwrite)."""
        with_attrs = self._service.with_attrs

        def make(fragment: ParsedEntity) -> Change:
            def change(stored: Stored) -> tuple[EntityRecord, ChangeKind, list[str]] | None:
                attrs = copy_attrs(stored.record.attrs)
                outcome = merge.append(attrs, copy_attrs(fragment.attrs), overwrite=overwrite)
                if outcome.not_updated:
                    partial[stored.record.id] = not_overwritten(ctx, outcome)
                types = list(dict.fromkeys([*stored.record.types, *fragment.types]))
                if not outcome.updated and types == stored.record.types:
                    return None
                return with_attrs(stored, attrs, ctx.now, types=types), "updated", outcome.updated

            return change

        return make

    def merge_change(self, ctx: RequestContext) -> Callable[[ParsedEntity], Change]:
        return lambda fragment: self._service.merge_change_of(ctx, fragment)

    async def delete(self, ctx: RequestContext, ids: list[Any]) -> BatchResult:
        result = BatchResult()
        schema = await self._service.schema(ctx, write=False)
        valid: dict[str, None] = {}
        for raw in ids:
            try:
                entity_id = check_entity_id(raw)
                if entity_id in valid:
                    raise ResourceNotFound(f"entity {entity_id} appears twice; deleted once")
                valid[entity_id] = None
            except NgsiLdError as err:
                result.errors.append((raw if isinstance(raw, str) else repr(raw)[:200], err))
        done: set[str] | None = None
        pending: dict[str, Any] = dict(valid)
        slicer = Slicer()
        for _ in range(MAX_RETRIES):
            stored = await self._service.repo.get_many(schema, list(pending))
            event = self._service.event
            writes = BatchWrites()
            refused = await self._refused(
                ctx, schema, Operation.DELETE, [s.record for s in stored.values()]
            )
            for entity_id, problem in refused.items():
                result.errors.append((entity_id, problem))
                del pending[entity_id], stored[entity_id]
            for s in stored.values():
                await slicer.tick()
                writes.deletes.append(
                    Write(s.record, event("deleted", ctx, s.record, None), s.version)
                )
            outcome = await self._store(result, schema, writes, pending)
            if outcome.committed:
                done = outcome.written
                await release(writes.deletes, stored)
                break
        for entity_id in pending:
            if done is None:
                result.errors.append((entity_id, busy(entity_id)))
            elif entity_id in done:
                result.success.append(entity_id)
            else:
                result.errors.append((entity_id, ResourceNotFound(f"entity {entity_id} not found")))
        return result
