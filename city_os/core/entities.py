"""Entity operations (§5.6): what each NGSI-LD write and read means, independent of HTTP and SQL.

Layer: core/. Every write reads the current state, applies pure ngsild/ semantics, builds the
change event and hands one ``Write`` per entity to the repository, which stores data, geometry and
outbox row in one statement. Writes of existing entities are optimistic (version check) and
retried on a concurrent change, so the state validated and the event emitted are exactly what was
stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from city_os.auth.policy import Operation
from city_os.core.batch import BatchOperations, BatchResult, EntryContexts
from city_os.core.cpu import off_loop
from city_os.core.fragments import (
    MAX_RETRIES,
    Change,
    attribute_fragment,
    copy_attrs,
    drop_scope,
    expand_attr,
    geo_changed,
    moved,
    parse_fragment,
    stored_entity,
)
from city_os.core.request import RequestContext
from city_os.core.slices import release, sliced
from city_os.errors import AlreadyExists, BadRequestData, ResourceNotFound, ServiceUnavailable
from city_os.events.model import ChangeKind, attribute_changes, change_event
from city_os.ngsild import merge
from city_os.ngsild.attributes import parse_entity
from city_os.ngsild.entity import (
    ATTRIBUTE_MEMBERS,
    NULL_URI,
    Attrs,
    ParsedEntity,
    check_entity_id,
    parse_types,
)
from city_os.ngsild.limits import check_entity
from city_os.ngsild.representation import EntityRecord
from city_os.store.postgres.db import Tenants
from city_os.store.postgres.entities import BatchWrites, EntityRepository, Stored, Write

if TYPE_CHECKING:
    from city_os.auth.enforce import EntityAccess
    from city_os.federation.distributed import Federation

__all__ = ["MAX_RETRIES", "BatchResult", "Change", "EntityService", "RequestContext"]


class EntityService:
    def __init__(self, repo: EntityRepository, tenants: Tenants, source: str) -> None:
        self.repo = repo
        self.tenants = tenants
        self.source = source
        # Hook for the schema registry: validates a resulting entity before it is written.
        self.validators: list[Callable[[str, str, EntityRecord], Awaitable[None]]] = []
        self.batch = BatchOperations(self)
        self.access: EntityAccess | None = None  # access control (auth/enforce.py)
        self.federation: Federation | None = None  # distributed operations (federation/)

    # -------------------------------------------------- batch (core/batch.py)

    async def batch_create(
        self, ctx: RequestContext, bodies: list[Any], contexts: EntryContexts = None
    ) -> BatchResult:
        return await self.batch.create(ctx, bodies, contexts)

    async def batch_upsert(
        self,
        ctx: RequestContext,
        bodies: list[Any],
        *,
        replace: bool,
        contexts: EntryContexts = None,
    ) -> BatchResult:
        return await self.batch.upsert(ctx, bodies, replace=replace, contexts=contexts)

    async def batch_delete(self, ctx: RequestContext, ids: list[Any]) -> BatchResult:
        return await self.batch.delete(ctx, ids)

    # ----------------------------------------------------------------- events

    def event(
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
            entity=stored_entity(rec),
            time=ctx.now,
            source=self.source,
            actor=ctx.actor,
        )

    async def admit(self, schema: str, ctx: RequestContext, record: EntityRecord) -> None:
        """The state about to be stored passes the limits and the active schemas; every write
        path comes through here, so nothing is stored that PostgreSQL's indexes cannot hold."""
        check_entity(ctx.limits, record.id, record.types, record.attrs, ATTRIBUTE_MEMBERS)
        for validate in self.validators:
            await validate(ctx.tenant, schema, record)

    # ------------------------------------------------------------------ reads

    async def schema(self, ctx: RequestContext, *, write: bool) -> str:
        return await self.tenants.schema(ctx.tenant, create=write)

    async def retrieve(
        self,
        ctx: RequestContext,
        entity_id: str,
        *,
        type_filter: str | None = None,
        attrs: frozenset[str] | None = None,
        local: bool | None = None,
    ) -> EntityRecord:
        """The entity; with federation installed, merged with the sources registered for it
        (``attrs``: the attributes asked for, IRIs; ``local``: the ``local`` parameter)."""
        if self.federation is None:
            return await self.retrieve_local(ctx, entity_id, type_filter=type_filter)
        check_entity_id(entity_id)
        wanted = parse_types(ctx.terms, type_filter.split(",")) if type_filter else None
        return await self.federation.retrieve(
            ctx,
            entity_id,
            lambda: self.retrieve_local(ctx, entity_id, type_filter=type_filter),
            attrs=attrs or (),
            types=wanted,
            local_only=local,
        )

    async def retrieve_local(
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
        if self.access is not None:
            await self.access.check(ctx, schema, Operation.READ, stored.record)
        return stored.record

    # ----------------------------------------------------------------- create

    def new_record(self, parsed: ParsedEntity, now: str) -> EntityRecord:
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
        parsed = await off_loop(ctx, parse_entity, body, ctx.terms, ctx.now, limits=ctx.limits)
        schema = await self.schema(ctx, write=True)
        record = self.new_record(parsed, ctx.now)
        grant = None
        if self.access is not None:
            await self.access.check_new(ctx, Operation.CREATE, record)
            grant = self.access.owner_grant(ctx)
        await self.admit(schema, ctx, record)
        write = Write(record, self.event("created", ctx, None, record))
        done = await self.repo.insert(schema, [write], grant)
        if not done and await self.reap_expired(ctx, schema, [parsed.id]):
            done = await self.repo.insert(schema, [write], grant)
        if not done:
            raise AlreadyExists(f"entity {parsed.id} already exists")
        return parsed.id

    async def reap_expired(self, ctx: RequestContext, schema: str, ids: list[str]) -> bool:
        """Delete (with their 'expired' events) entities that expired but were not swept yet."""
        expired = await self.repo.get_expired(schema, ids)
        if not expired:
            return False
        writes = [
            Write(s.record, self.event("expired", ctx, s.record, None), s.version) for s in expired
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
            if self.access is not None:
                await self.access.check(ctx, schema, Operation.UPDATE, stored.record)
            result = change(stored)
            if result is None:
                return stored.record
            record, kind, names = result
            if self.access is not None and moved(stored.record, record):
                await self.access.check_new(ctx, Operation.CREATE, record)
            await self.admit(schema, ctx, record)
            write = Write(
                record,
                self.event(kind, ctx, stored.record, record, names),
                stored.version,
                geo_changed(stored.record.attrs, record.attrs),
            )
            if await self.repo.update(schema, [write]):
                return record
        raise ServiceUnavailable(
            f"entity {entity_id} is changing too often to update it; try again"
        )

    def with_attrs(self, stored: Stored, attrs: Attrs, now: str, **changes: Any) -> EntityRecord:
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
        parsed = await off_loop(
            ctx, parse_entity, body, ctx.terms, ctx.now, id_required=False, limits=ctx.limits
        )
        if parsed.id and parsed.id != entity_id:
            raise BadRequestData(f"id {parsed.id} in the body differs from {entity_id} in the URL")

        def change(stored: Stored) -> tuple[EntityRecord, ChangeKind, None]:
            types = parsed.types or stored.record.types
            return (
                self.with_attrs(
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
        fragment = await off_loop(ctx, parse_fragment, body, ctx)
        outcome = merge.Outcome()

        def change(stored: Stored) -> tuple[EntityRecord, ChangeKind, list[str]] | None:
            nonlocal outcome
            attrs = copy_attrs(stored.record.attrs)
            outcome = merge.append(attrs, copy_attrs(fragment.attrs), overwrite=overwrite)
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
            return self.with_attrs(stored, attrs, ctx.now, **changes), "updated", outcome.updated

        await self._modify(ctx, entity_id, change, type_filter=type_filter)
        return outcome

    async def update_attrs(
        self, ctx: RequestContext, entity_id: str, body: object, *, type_filter: str | None = None
    ) -> merge.Outcome:
        if isinstance(body, dict) and any(v is None for v in body.values()):
            # Only the NGSI-LD Null ("urn:ngsi-ld:null") deletes here; JSON null is invalid.
            raise BadRequestData(f"JSON null is not an attribute; use {NULL_URI!r} to delete")
        fragment = await off_loop(ctx, parse_fragment, body, ctx, allow_null=True)
        outcome = merge.Outcome()

        def change(stored: Stored) -> tuple[EntityRecord, ChangeKind, list[str]] | None:
            nonlocal outcome
            attrs = copy_attrs(stored.record.attrs)
            outcome = merge.update_existing(attrs, copy_attrs(fragment.attrs))
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
            return self.with_attrs(stored, attrs, ctx.now, **changes), "updated", outcome.updated

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
        iri, patch = await off_loop(ctx, attribute_fragment, ctx, attr, body, allow_null=True)

        def change(stored: Stored) -> tuple[EntityRecord, ChangeKind, list[str]]:
            attrs = copy_attrs(stored.record.attrs)
            if not merge.partial_update(attrs, iri, patch, ctx.now):
                raise ResourceNotFound(f"attribute {attr} not found in entity {entity_id}")
            return self.with_attrs(stored, attrs, ctx.now), "updated", [iri]

        await self._modify(ctx, entity_id, change, type_filter=type_filter)

    async def replace_attr(
        self, ctx: RequestContext, entity_id: str, attr: str, body: object
    ) -> None:
        if attr == "scope":
            raise BadRequestData("scope cannot be replaced as an attribute")
        iri, inst = await off_loop(ctx, attribute_fragment, ctx, attr, body, allow_null=False)

        def change(stored: Stored) -> tuple[EntityRecord, ChangeKind, list[str]]:
            attrs = copy_attrs(stored.record.attrs)
            if not merge.replace_attribute(attrs, iri, inst):
                raise ResourceNotFound(f"attribute {attr} not found in entity {entity_id}")
            return self.with_attrs(stored, attrs, ctx.now), "updated", [iri]

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
            await self._modify(ctx, entity_id, drop_scope, type_filter=type_filter)
            return
        iri = expand_attr(ctx, attr)
        if dataset_id is not None:
            check_entity_id(dataset_id, "datasetId")

        def change(stored: Stored) -> tuple[EntityRecord, ChangeKind, list[str]]:
            attrs = copy_attrs(stored.record.attrs)
            if not merge.delete_attribute(attrs, iri, dataset_id, delete_all):
                raise ResourceNotFound(f"attribute {attr} not found in entity {entity_id}")
            return self.with_attrs(stored, attrs, ctx.now), "updated", [iri]

        await self._modify(ctx, entity_id, change, type_filter=type_filter)

    async def merge(self, ctx: RequestContext, entity_id: str, body: object) -> None:
        fragment = await off_loop(ctx, parse_fragment, body, ctx, allow_null=True)
        if fragment.id and fragment.id != entity_id:
            raise BadRequestData(f"id {fragment.id} in the body differs from {entity_id}")
        await self._modify(ctx, entity_id, self.merge_change_of(ctx, fragment))

    def merge_change_of(self, ctx: RequestContext, fragment: ParsedEntity) -> Change:
        def change(stored: Stored) -> tuple[EntityRecord, ChangeKind, list[str]]:
            attrs = copy_attrs(stored.record.attrs)
            names = merge.merge_patch(attrs, copy_attrs(fragment.attrs), ctx.now)
            changes: dict[str, Any] = {}
            if fragment.types:
                changes["types"] = list(dict.fromkeys([*stored.record.types, *fragment.types]))
            if fragment.scopes is not None:
                changes["scopes"] = fragment.scopes
            if fragment.expires_at is not None:
                changes["expires_at"] = fragment.expires_at
            return self.with_attrs(stored, attrs, ctx.now, **changes), "updated", names

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
            if self.access is not None:
                await self.access.check(ctx, schema, Operation.DELETE, stored.record)
            write = Write(
                stored.record, self.event("deleted", ctx, stored.record, None), stored.version
            )
            if await self.repo.delete(schema, [write]):
                return
        raise ServiceUnavailable(
            f"entity {entity_id} is changing too often to delete it; try again"
        )

    # ------------------------------------------------------------------ batch

    async def delete_many(
        self, ctx: RequestContext, schema: str, ids: list[str], kind: ChangeKind
    ) -> set[str]:
        """Delete the given entities (purge, expiry); returns the ids deleted."""
        done: set[str] = set()
        pending = list(dict.fromkeys(ids))

        def write(s: Stored) -> Write:
            return Write(s.record, self.event(kind, ctx, s.record, None), s.version)

        for _ in range(MAX_RETRIES):
            if not pending:
                break
            stored = await self.repo.get_many(schema, pending)
            writes = await sliced(write, stored.values())
            # One transaction in chunks: 1,000 events' parameters took ~20 ms to encode at once.
            outcome = await self.repo.write_batch(schema, BatchWrites(deletes=writes, strict=False))
            written = outcome.written if outcome.committed else set()
            done |= written
            pending = [i for i in stored if i not in written]
            await release(writes, stored)
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
            return self.with_attrs(stored, attrs, ctx.now), "updated", removed

        for entity_id in ids:
            await self._modify(ctx, entity_id, stripping, missing_ok=True)
