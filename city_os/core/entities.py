"""Entity operations (§5.6): what each NGSI-LD write and read means, independent of HTTP and SQL.

Layer: core/. Every write reads the current state, applies pure ngsild/ semantics, builds the
change event and hands one ``Write`` per entity to the repository, which stores data, geometry and
outbox row in one statement. Writes of existing entities are optimistic (version check) and
retried on a concurrent change, so the state validated and the event emitted are exactly what was
stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from city_os.errors import AlreadyExists, BadRequestData, NgsiLdError, ResourceNotFound
from city_os.events.model import ChangeKind, attribute_changes, change_event
from city_os.ngsild import merge
from city_os.ngsild.entity import (
    NULL_URI,
    VALUE_KEY,
    Attrs,
    ParsedEntity,
    check_entity_id,
    now_iso,
    parse_attributes,
    parse_entity,
    parse_instance,
    parse_types,
    reject_nulls,
)
from city_os.ngsild.jsonld import TermMap
from city_os.ngsild.representation import EntityRecord
from city_os.store.postgres.db import Tenants
from city_os.store.postgres.entities import EntityRepository, Stored, Write

VALUE_MEMBERS = frozenset(VALUE_KEY.values())

MAX_RETRIES = 20


@dataclass(frozen=True)
class RequestContext:
    tenant: str
    terms: TermMap
    now: str
    context: Any = None  # the @context as the client sent it (echoed in responses)
    actor: dict[str, str] | None = None  # CloudEvents attributes naming who acts (auth/)


@dataclass
class BatchResult:
    """Per-entity outcome of a batch operation (§5.6.7-5.6.10)."""

    success: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    errors: list[tuple[str, NgsiLdError]] = field(default_factory=list)


# A pure change applied to a stored entity: returns the new record and the event kind, or None
# when nothing is to be written. It may raise NgsiLdError.
Change = Callable[[Stored], tuple[EntityRecord, ChangeKind, list[str] | None] | None]


def _stored_entity(record: EntityRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "types": record.types,
        "scopes": record.scopes,
        "attrs": record.attrs,
        "createdAt": record.created_at,
        "modifiedAt": record.modified_at,
        "expiresAt": record.expires_at,
    }


class EntityService:
    def __init__(self, repo: EntityRepository, tenants: Tenants, source: str) -> None:
        self.repo = repo
        self.tenants = tenants
        self.source = source
        # Hook for the schema registry: validates a resulting entity before it is written.
        self.validators: list[Callable[[str, str, EntityRecord], Awaitable[None]]] = []

    # ----------------------------------------------------------------- events

    def _event(
        self,
        kind: ChangeKind,
        ctx: RequestContext,
        before: EntityRecord | None,
        after: EntityRecord | None,
        names: list[str] | None = None,
    ) -> dict[str, Any]:
        rec = after or before
        assert rec is not None
        return change_event(
            kind=kind,
            tenant=ctx.tenant,
            entity_id=rec.id,
            types=rec.types,
            changes=attribute_changes(
                before.attrs if before else None, after.attrs if after else None, names
            ),
            entity=_stored_entity(rec),
            time=ctx.now,
            source=self.source,
            actor=ctx.actor,
        )

    async def _validate(self, schema: str, ctx: RequestContext, record: EntityRecord) -> None:
        for validate in self.validators:
            await validate(ctx.tenant, schema, record)

    # ------------------------------------------------------------------ reads

    async def schema(self, ctx: RequestContext, *, write: bool) -> str:
        return await self.tenants.schema(ctx.tenant, create=write)

    async def retrieve(
        self, ctx: RequestContext, entity_id: str, *, type_filter: str | None = None
    ) -> EntityRecord:
        check_entity_id(entity_id)
        schema = await self.schema(ctx, write=False)
        stored = await self.repo.get(schema, entity_id)
        wanted = set(parse_types(ctx.terms, type_filter.split(","))) if type_filter else None
        if stored is not None and wanted and not wanted & set(stored.record.types):
            stored = None
        if stored is None:
            raise ResourceNotFound(f"entity {entity_id} not found")
        return stored.record

    # ----------------------------------------------------------------- create

    def _new_record(self, parsed: ParsedEntity, now: str) -> EntityRecord:
        return EntityRecord(
            id=parsed.id,
            types=parsed.types,
            attrs=parsed.attrs,
            scopes=parsed.scopes,
            created_at=now,
            modified_at=now,
            expires_at=parsed.expires_at,
        )

    async def create(self, ctx: RequestContext, body: object) -> str:
        parsed = parse_entity(body, ctx.terms, ctx.now)
        schema = await self.schema(ctx, write=True)
        record = self._new_record(parsed, ctx.now)
        await self._validate(schema, ctx, record)
        write = Write(record, self._event("created", ctx, None, record))
        done = await self.repo.insert(schema, [write])
        if not done and await self._reap_expired(ctx, schema, [parsed.id]):
            done = await self.repo.insert(schema, [write])
        if not done:
            raise AlreadyExists(f"entity {parsed.id} already exists")
        return parsed.id

    async def _reap_expired(self, ctx: RequestContext, schema: str, ids: list[str]) -> bool:
        """Delete (with their 'expired' events) entities that expired but were not swept yet."""
        expired = await self.repo.get_expired(schema, ids)
        if not expired:
            return False
        writes = [
            Write(s.record, self._event("expired", ctx, s.record, None), s.version) for s in expired
        ]
        return bool(await self.repo.delete(schema, writes))

    # -------------------------------------------------------------- modify one

    async def _modify(
        self,
        ctx: RequestContext,
        entity_id: str,
        change: Change,
        *,
        missing_ok: bool = False,
        type_filter: str | None = None,
    ) -> EntityRecord | None:
        """Read, apply ``change``, write if the entity is unchanged meanwhile; else retry.

        ``type_filter`` (the ``type`` URL parameter) makes an entity of other types not found.
        """
        check_entity_id(entity_id)
        schema = await self.schema(ctx, write=False)
        wanted = set(parse_types(ctx.terms, type_filter.split(","))) if type_filter else None
        for _ in range(MAX_RETRIES):
            stored = await self.repo.get(schema, entity_id)
            if stored is not None and wanted and not wanted & set(stored.record.types):
                stored = None
            if stored is None:
                if missing_ok:
                    return None
                raise ResourceNotFound(f"entity {entity_id} not found")
            result = change(stored)
            if result is None:
                return stored.record
            record, kind, names = result
            await self._validate(schema, ctx, record)
            write = Write(
                record,
                self._event(kind, ctx, stored.record, record, names),
                stored.version,
                _geo_changed(stored.record.attrs, record.attrs),
            )
            if await self.repo.update(schema, [write]):
                return record
        raise NgsiLdError(f"entity {entity_id} is changing too often to update it; try again")

    def _with_attrs(self, stored: Stored, attrs: Attrs, now: str, **changes: Any) -> EntityRecord:
        old = stored.record
        return EntityRecord(
            id=old.id,
            types=changes.get("types", old.types),
            attrs=attrs,
            scopes=changes.get("scopes", old.scopes),
            created_at=old.created_at,
            modified_at=now,
            expires_at=changes.get("expires_at", old.expires_at),
        )

    async def replace(self, ctx: RequestContext, entity_id: str, body: object) -> None:
        parsed = parse_entity(body, ctx.terms, ctx.now, id_required=False)
        if parsed.id and parsed.id != entity_id:
            raise BadRequestData(f"id {parsed.id} in the body differs from {entity_id} in the URL")

        def change(stored: Stored) -> tuple[EntityRecord, ChangeKind, None]:
            types = parsed.types or stored.record.types
            return (
                self._with_attrs(
                    stored,
                    parsed.attrs,
                    ctx.now,
                    types=types,
                    scopes=parsed.scopes,
                    expires_at=parsed.expires_at,
                ),
                "replaced",
                None,
            )

        await self._modify(ctx, entity_id, change)

    async def append_attrs(
        self,
        ctx: RequestContext,
        entity_id: str,
        body: object,
        *,
        overwrite: bool,
        type_filter: str | None = None,
    ) -> merge.Outcome:
        fragment = _fragment(body, ctx)
        outcome = merge.Outcome()

        def change(stored: Stored) -> tuple[EntityRecord, ChangeKind, list[str]] | None:
            nonlocal outcome
            attrs = _copy_attrs(stored.record.attrs)
            outcome = merge.append(attrs, _copy_attrs(fragment.attrs), overwrite=overwrite)
            changes: dict[str, Any] = {}
            if fragment.types:
                changes["types"] = list(dict.fromkeys([*stored.record.types, *fragment.types]))
            if fragment.scopes is not None:
                old = stored.record.scopes or []
                # noOverwrite keeps the scopes already there and adds the new ones.
                new = [*old, *fragment.scopes] if not overwrite else fragment.scopes
                changes["scopes"] = list(dict.fromkeys(new))
                outcome.updated.append("scope")
            if not outcome.updated and not changes:
                return None
            return self._with_attrs(stored, attrs, ctx.now, **changes), "updated", outcome.updated

        await self._modify(ctx, entity_id, change, type_filter=type_filter)
        return outcome

    async def update_attrs(
        self, ctx: RequestContext, entity_id: str, body: object, *, type_filter: str | None = None
    ) -> merge.Outcome:
        if isinstance(body, dict) and any(v is None for v in body.values()):
            # Only the NGSI-LD Null ("urn:ngsi-ld:null") deletes here; JSON null is invalid.
            raise BadRequestData(f"JSON null is not an attribute; use {NULL_URI!r} to delete")
        fragment = _fragment(body, ctx, allow_null=True)
        outcome = merge.Outcome()

        def change(stored: Stored) -> tuple[EntityRecord, ChangeKind, list[str]] | None:
            nonlocal outcome
            attrs = _copy_attrs(stored.record.attrs)
            outcome = merge.update_existing(attrs, _copy_attrs(fragment.attrs))
            changes: dict[str, Any] = {}
            if fragment.types:
                changes["types"] = list(dict.fromkeys([*stored.record.types, *fragment.types]))
            if fragment.scopes is not None:
                if stored.record.scopes:
                    changes["scopes"] = fragment.scopes
                    outcome.updated.append("scope")
                else:
                    outcome.not_updated.append(("scope", "the entity has no scope to update"))
            if not outcome.updated and not changes:
                return None
            return self._with_attrs(stored, attrs, ctx.now, **changes), "updated", outcome.updated

        await self._modify(ctx, entity_id, change, type_filter=type_filter)
        return outcome

    async def partial_update(
        self,
        ctx: RequestContext,
        entity_id: str,
        attr: str,
        body: object,
        *,
        type_filter: str | None = None,
    ) -> None:
        if attr == "scope":
            raise BadRequestData("scope cannot be partially updated; use update attributes")
        if isinstance(body, dict) and body.get("datasetId") == NULL_URI:
            raise BadRequestData("a datasetId cannot be deleted by setting it to NGSI-LD Null")
        iri, patch = _attribute_fragment(ctx, attr, body, allow_null=True)

        def change(stored: Stored) -> tuple[EntityRecord, ChangeKind, list[str]]:
            attrs = _copy_attrs(stored.record.attrs)
            if not merge.partial_update(attrs, iri, patch, ctx.now):
                raise ResourceNotFound(f"attribute {attr} not found in entity {entity_id}")
            return self._with_attrs(stored, attrs, ctx.now), "updated", [iri]

        await self._modify(ctx, entity_id, change, type_filter=type_filter)

    async def replace_attr(
        self, ctx: RequestContext, entity_id: str, attr: str, body: object
    ) -> None:
        if attr == "scope":
            raise BadRequestData("scope cannot be replaced as an attribute")
        iri, inst = _attribute_fragment(ctx, attr, body, allow_null=False)

        def change(stored: Stored) -> tuple[EntityRecord, ChangeKind, list[str]]:
            attrs = _copy_attrs(stored.record.attrs)
            if not merge.replace_attribute(attrs, iri, inst):
                raise ResourceNotFound(f"attribute {attr} not found in entity {entity_id}")
            return self._with_attrs(stored, attrs, ctx.now), "updated", [iri]

        await self._modify(ctx, entity_id, change)

    async def delete_attr(
        self,
        ctx: RequestContext,
        entity_id: str,
        attr: str,
        dataset_id: str | None,
        delete_all: bool,
        *,
        type_filter: str | None = None,
    ) -> None:
        if attr == "scope":
            await self._modify(ctx, entity_id, _drop_scope, type_filter=type_filter)
            return
        iri = _expand_attr(ctx, attr)
        if dataset_id is not None:
            check_entity_id(dataset_id, "datasetId")

        def change(stored: Stored) -> tuple[EntityRecord, ChangeKind, list[str]]:
            attrs = _copy_attrs(stored.record.attrs)
            if not merge.delete_attribute(attrs, iri, dataset_id, delete_all):
                raise ResourceNotFound(f"attribute {attr} not found in entity {entity_id}")
            return self._with_attrs(stored, attrs, ctx.now), "updated", [iri]

        await self._modify(ctx, entity_id, change, type_filter=type_filter)

    async def merge(self, ctx: RequestContext, entity_id: str, body: object) -> None:
        fragment = _fragment(body, ctx, allow_null=True)
        if fragment.id and fragment.id != entity_id:
            raise BadRequestData(f"id {fragment.id} in the body differs from {entity_id}")
        await self._modify(ctx, entity_id, self._merge_change(ctx, fragment))

    def _merge_change(self, ctx: RequestContext, fragment: ParsedEntity) -> Change:
        def change(stored: Stored) -> tuple[EntityRecord, ChangeKind, list[str]]:
            attrs = _copy_attrs(stored.record.attrs)
            names = merge.merge_patch(attrs, _copy_attrs(fragment.attrs), ctx.now)
            changes: dict[str, Any] = {}
            if fragment.types:
                changes["types"] = list(dict.fromkeys([*stored.record.types, *fragment.types]))
            if fragment.scopes is not None:
                changes["scopes"] = fragment.scopes
            if fragment.expires_at is not None:
                changes["expires_at"] = fragment.expires_at
            return self._with_attrs(stored, attrs, ctx.now, **changes), "updated", names

        return change

    async def delete(
        self, ctx: RequestContext, entity_id: str, *, type_filter: str | None = None
    ) -> None:
        check_entity_id(entity_id)
        schema = await self.schema(ctx, write=False)
        wanted = parse_types(ctx.terms, type_filter.split(",")) if type_filter else None
        for _ in range(MAX_RETRIES):
            stored = await self.repo.get(schema, entity_id)
            if stored is None or (wanted and not set(wanted) & set(stored.record.types)):
                raise ResourceNotFound(f"entity {entity_id} not found")
            write = Write(
                stored.record, self._event("deleted", ctx, stored.record, None), stored.version
            )
            if await self.repo.delete(schema, [write]):
                return
        raise NgsiLdError(f"entity {entity_id} is changing too often to delete it; try again")

    # ------------------------------------------------------------------ batch

    async def delete_many(
        self, ctx: RequestContext, schema: str, ids: list[str], kind: ChangeKind
    ) -> set[str]:
        """Delete the given entities (purge, expiry); returns the ids deleted."""
        done: set[str] = set()
        pending = list(dict.fromkeys(ids))
        for _ in range(MAX_RETRIES):
            if not pending:
                break
            stored = await self.repo.get_many(schema, pending)
            writes = [
                Write(s.record, self._event(kind, ctx, s.record, None), s.version)
                for s in stored.values()
            ]
            written = await self.repo.delete(schema, writes)
            done |= written
            pending = [i for i in stored if i not in written]
        return done

    async def purge_attributes(
        self,
        ctx: RequestContext,
        ids: list[str],
        *,
        keep: frozenset[str] | None = None,
        drop: frozenset[str] | None = None,
    ) -> None:
        """Purge with keep/drop (§5.6.21): strip attributes (IRIs) from each entity, one
        update event each; entities deleted meanwhile are skipped."""

        def stripping(stored: Stored) -> tuple[EntityRecord, ChangeKind, list[str]] | None:
            old = stored.record.attrs
            attrs = {
                k: v
                for k, v in old.items()
                if (keep is None or k in keep) and (drop is None or k not in drop)
            }
            if len(attrs) == len(old):
                return None
            removed = [k for k in old if k not in attrs]
            return self._with_attrs(stored, attrs, ctx.now), "updated", removed

        for entity_id in ids:
            await self._modify(ctx, entity_id, stripping, missing_ok=True)

    async def batch_create(
        self, ctx: RequestContext, bodies: list[Any], contexts: EntryContexts = None
    ) -> BatchResult:
        result = BatchResult()
        schema = await self.schema(ctx, write=True)
        writes: list[Write] = []
        seen: set[str] = set()
        for body, ectx in _entries(ctx, bodies, contexts):
            try:
                if isinstance(ectx, NgsiLdError):
                    raise ectx
                parsed = parse_entity(body, ectx.terms, ctx.now)
                if parsed.id in seen:
                    raise AlreadyExists(f"entity {parsed.id} appears twice in the batch")
                seen.add(parsed.id)
                record = self._new_record(parsed, ctx.now)
                await self._validate(schema, ctx, record)
                writes.append(Write(record, self._event("created", ctx, None, record)))
            except NgsiLdError as err:
                result.errors.append((_body_id(body), err))
        done = await self.repo.insert(schema, writes)
        missing = [w for w in writes if w.record.id not in done]
        if missing and await self._reap_expired(ctx, schema, [w.record.id for w in missing]):
            done |= await self.repo.insert(schema, missing)
        for w in writes:
            if w.record.id in done:
                result.success.append(w.record.id)
                result.created.append(w.record.id)
            else:
                result.errors.append(
                    (w.record.id, AlreadyExists(f"entity {w.record.id} already exists"))
                )
        return result

    async def batch_upsert(
        self,
        ctx: RequestContext,
        bodies: list[Any],
        *,
        replace: bool,
        contexts: EntryContexts = None,
    ) -> BatchResult:
        """Create what is missing; replace (default) or update what exists (§5.6.8)."""
        result = BatchResult()
        schema = await self.schema(ctx, write=True)
        parsed_by_id: dict[str, ParsedEntity] = {}
        for body, ectx in _entries(ctx, bodies, contexts):
            try:
                if isinstance(ectx, NgsiLdError):
                    raise ectx
                parsed = parse_entity(body, ectx.terms, ctx.now)
            except NgsiLdError as err:
                result.errors.append((_body_id(body), err))
                continue
            previous = parsed_by_id.get(parsed.id)
            if previous is not None and replace:
                parsed_by_id[parsed.id] = parsed  # the later occurrence replaces the earlier
            elif previous is not None:
                # With options=update, later occurrences are applied on top of earlier ones.
                merge.append(previous.attrs, parsed.attrs, overwrite=True)
                previous.types = list(dict.fromkeys([*previous.types, *parsed.types]))
            else:
                parsed_by_id[parsed.id] = parsed

        def change_for(p: ParsedEntity) -> Change:
            def change(stored: Stored) -> tuple[EntityRecord, ChangeKind, list[str] | None]:
                if replace:
                    rec = self._with_attrs(
                        stored,
                        p.attrs,
                        ctx.now,
                        types=p.types,
                        scopes=p.scopes,
                        expires_at=p.expires_at,
                    )
                    return rec, "replaced", None
                attrs = _copy_attrs(stored.record.attrs)
                outcome = merge.append(attrs, _copy_attrs(p.attrs), overwrite=True)
                types = list(dict.fromkeys([*stored.record.types, *p.types]))
                return (
                    self._with_attrs(stored, attrs, ctx.now, types=types),
                    "updated",
                    (outcome.updated),
                )

            return change

        pending = dict(parsed_by_id)
        for _ in range(MAX_RETRIES):
            if not pending:
                break
            existing = await self.repo.get_many(schema, list(pending))
            inserts: list[Write] = []
            updates: list[Write] = []
            for eid, p in pending.items():
                try:
                    if eid in existing:
                        updates.append(
                            await self._change_write(schema, ctx, existing[eid], change_for(p))
                        )
                    else:
                        record = self._new_record(p, ctx.now)
                        await self._validate(schema, ctx, record)
                        inserts.append(Write(record, self._event("created", ctx, None, record)))
                except NgsiLdError as err:
                    result.errors.append((eid, err))
            created = await self.repo.insert(schema, inserts)
            updated = await self.repo.update(schema, updates)
            result.created.extend(i for i in pending if i in created)
            result.success.extend(i for i in pending if i in created or i in updated)
            failed = {e for e, _ in result.errors}
            pending = {
                i: p
                for i, p in pending.items()
                if i not in created and i not in updated and i not in failed
            }
        return result

    async def _change_write(
        self, schema: str, ctx: RequestContext, stored: Stored, change: Change
    ) -> Write:
        out = change(stored)
        assert out is not None
        record, kind, names = out
        await self._validate(schema, ctx, record)
        return Write(
            record,
            self._event(kind, ctx, stored.record, record, names),
            stored.version,
            _geo_changed(stored.record.attrs, record.attrs),
        )

    async def batch_modify(
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

        ``partial`` collects entities the change wrote only in part (e.g. noOverwrite): they are
        reported as errors after the write.
        """
        result = BatchResult()
        schema = await self.schema(ctx, write=False)
        pending: dict[str, ParsedEntity] = {}
        for body, ectx in _entries(ctx, bodies, contexts):
            try:
                if isinstance(ectx, NgsiLdError):
                    raise ectx
                fragment = _fragment(body, ectx, allow_null=allow_null, id_required=True)
                if fragment.id in pending:
                    raise BadRequestData(f"entity {fragment.id} appears twice in the batch")
                pending[fragment.id] = fragment
            except NgsiLdError as err:
                result.errors.append((_body_id(body), err))
        for _ in range(MAX_RETRIES):
            if not pending:
                break
            existing = await self.repo.get_many(schema, list(pending))
            writes: list[Write] = []
            for eid, fragment in list(pending.items()):
                try:
                    if eid not in existing:
                        raise ResourceNotFound(f"entity {eid} not found")
                    out = make_change(fragment)(existing[eid])
                    if out is None:
                        result.success.append(eid)
                        del pending[eid]
                        continue
                    writes.append(await self._change_write(schema, ctx, existing[eid], _const(out)))
                except NgsiLdError as err:
                    result.errors.append((eid, err))
                    del pending[eid]
            written = await self.repo.update(schema, writes)
            result.success.extend(i for i in pending if i in written)
            pending = {i: p for i, p in pending.items() if i not in written}
        for eid, problem in (partial or {}).items():
            if eid in result.success:
                result.success.remove(eid)
            result.errors.append((eid, problem))
        return result

    def update_change(
        self, ctx: RequestContext, overwrite: bool, partial: dict[str, NgsiLdError]
    ) -> Callable[[ParsedEntity], Change]:
        def make(fragment: ParsedEntity) -> Change:
            def change(stored: Stored) -> tuple[EntityRecord, ChangeKind, list[str]] | None:
                attrs = _copy_attrs(stored.record.attrs)
                outcome = merge.append(attrs, _copy_attrs(fragment.attrs), overwrite=overwrite)
                if outcome.not_updated:
                    names = ", ".join(ctx.terms.compact_attr(i) for i, _ in outcome.not_updated)
                    partial[stored.record.id] = BadRequestData(
                        f"attributes not updated (noOverwrite): {names}"
                    )
                types = list(dict.fromkeys([*stored.record.types, *fragment.types]))
                if not outcome.updated and types == stored.record.types:
                    return None
                return (
                    self._with_attrs(stored, attrs, ctx.now, types=types),
                    "updated",
                    outcome.updated,
                )

            return change

        return make

    def merge_change(self, ctx: RequestContext) -> Callable[[ParsedEntity], Change]:
        return lambda fragment: self._merge_change(ctx, fragment)

    async def batch_delete(self, ctx: RequestContext, ids: list[Any]) -> BatchResult:
        result = BatchResult()
        schema = await self.schema(ctx, write=False)
        valid: list[str] = []
        for raw in ids:
            try:
                eid = check_entity_id(raw)
                if eid in valid:
                    raise ResourceNotFound(f"entity {eid} appears twice; deleted once")
                valid.append(eid)
            except NgsiLdError as err:
                result.errors.append((str(raw), err))
        done = await self.delete_many(ctx, schema, valid, "deleted")
        for eid in dict.fromkeys(valid):
            if eid in done:
                result.success.append(eid)
            else:
                result.errors.append((eid, ResourceNotFound(f"entity {eid} not found")))
        return result


def _drop_scope(stored: Stored) -> tuple[EntityRecord, ChangeKind, list[str]]:
    if not stored.record.scopes:
        raise ResourceNotFound(f"entity {stored.record.id} has no scope")
    rec = stored.record
    return (
        EntityRecord(rec.id, rec.types, rec.attrs, None, rec.created_at, now_iso(), rec.expires_at),
        "updated",
        ["scope"],
    )


EntryContexts = list[RequestContext | NgsiLdError] | None


def _entries(
    ctx: RequestContext, bodies: list[Any], contexts: EntryContexts
) -> list[tuple[Any, RequestContext | NgsiLdError]]:
    """Each batch entry with its own request context (JSON-LD entries carry their own)."""
    if contexts is None:
        return [(body, ctx) for body in bodies]
    return list(zip(bodies, contexts, strict=True))


def _copy_attrs(attrs: Attrs) -> Attrs:
    """A copy the ngsild.merge functions may change: they replace instances and edit the lists
    of instances, but never change an instance dict in place."""
    return {iri: list(instances) for iri, instances in attrs.items()}


def _const(
    out: tuple[EntityRecord, ChangeKind, list[str] | None],
) -> Change:
    return lambda _stored: out


def _geo_changed(before: Attrs, after: Attrs) -> bool:
    return merge.geometries(before) != merge.geometries(after)


def _body_id(body: Any) -> str:
    if isinstance(body, dict):
        raw = body.get("id", body.get("@id"))
        if isinstance(raw, str):
            return raw
    return ""


def _expand_attr(ctx: RequestContext, attr: str) -> str:
    from city_os.ngsild.entity import expand_attr_name

    return expand_attr_name(ctx.terms, attr)


def _fragment(
    body: object, ctx: RequestContext, *, allow_null: bool = False, id_required: bool = False
) -> ParsedEntity:
    """An entity fragment (attributes to append, update or merge; maybe id/type/scope)."""
    if not isinstance(body, dict):
        raise BadRequestData("the payload must be a JSON object of attributes")
    raw_id = body.get("id", body.get("@id"))
    entity_id = check_entity_id(raw_id) if (raw_id is not None or id_required) else ""
    raw_type = body.get("type", body.get("@type"))
    types = parse_types(ctx.terms, raw_type) if raw_type is not None else []
    fragment = ParsedEntity(entity_id, types)
    if "scope" in body:
        from city_os.ngsild.entity import parse_scopes

        fragment.scopes = parse_scopes(body["scope"])
    fragment.attrs = parse_attributes(body, ctx.terms, ctx.now, allow_null=allow_null)
    if body.get("expiresAt") is not None:
        from city_os.ngsild.entity import check_datetime

        fragment.expires_at = check_datetime(body["expiresAt"], "expiresAt")
    return fragment


def _attribute_fragment(
    ctx: RequestContext, attr: str, body: object, *, allow_null: bool
) -> tuple[str, dict[str, Any]]:
    iri = _expand_attr(ctx, attr)
    if not isinstance(body, dict):
        raise BadRequestData("the payload must be a JSON object (an attribute)")
    clean = {k: v for k, v in body.items() if k != "@context"}
    if not clean:
        raise BadRequestData("the attribute fragment is empty")
    if allow_null and "type" not in clean:
        # Partial update: only the members given are changed.
        patch: dict[str, Any] = {}
        if isinstance(clean.get("value"), dict | list):
            reject_nulls(attr, clean["value"])
        for key, value in clean.items():
            if key in (
                "value",
                "object",
                "languageMap",
                "vocab",
                "json",
                "valueList",
                "objectList",
                "datasetId",
                "observedAt",
                "unitCode",
                "objectType",
            ):
                null = value is None or value in (NULL_URI, {"@none": NULL_URI})
                patch[key] = None if null and key in VALUE_MEMBERS else value
            else:
                patch[_expand_attr(ctx, key)] = parse_instance(
                    key, value, ctx.terms, ctx.now, allow_null=True, sub=True
                )
        if "vocab" in patch and patch["vocab"] is not None:
            v = patch["vocab"]
            patch["vocab"] = (
                [ctx.terms.expand_vocab_value(x) for x in v]
                if isinstance(v, list)
                else ctx.terms.expand_vocab_value(v)
            )
        return iri, patch
    return iri, parse_instance(attr, clean, ctx.terms, ctx.now, allow_null=allow_null)
