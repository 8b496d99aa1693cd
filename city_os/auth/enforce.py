"""Enforcement of access decisions on entities: the one object core/ asks "may this caller …".

Layer: auth/ (service; no aiohttp, no SQL text). core/ calls it where the entity is known:

* ``check`` before a read or a change of a stored entity: an entity the caller may not read is
  404 (ids do not leak), one it may read but not change is 403 AccessDenied;
* ``check_new`` for the state a create (or a change of types/scopes) would store;
* ``owner_grant`` gives the creator ``own`` on what it creates, in the create's statement;
* ``scope`` is the caller's readable (or deletable) scope, for queries and discovery to AND
  into their SQL; ``log_page`` writes the consent reads of a page to the access log.

With authentication off the principal is unrestricted (or absent, for internal callers: expiry,
the notifier) and every method returns at once, so nothing changes for that default.
Decisions by role or API key need no lookups; the others read the entity's data subject and
entity permissions (``store/postgres/auth_access.py``) and, for a service, the consents of its
data subject.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import asyncpg

from city_os.auth.audit import RefusalTrail
from city_os.auth.consent import ConsentService
from city_os.auth.owners import OwnerRights
from city_os.auth.permissions import PermissionService
from city_os.auth.policy import (
    Consent,
    Decision,
    EntityFacts,
    Operation,
    ReadableScope,
    consent_client,
    decide,
    readable,
)
from city_os.auth.principal import Principal
from city_os.auth.subscribers import owner_key
from city_os.core.request import RequestContext
from city_os.errors import AccessDenied, NgsiLdError, ResourceNotFound
from city_os.ngsild.representation import EntityRecord
from city_os.store.postgres.auth_access import Grants, OwnerGrant, grants
from city_os.store.postgres.auth_log import AccessEntry
from city_os.store.postgres.query import Visible

log = logging.getLogger("city_os.access")


def restricted(ctx: RequestContext) -> Principal | None:
    """The principal whose rights count, or None when everything is allowed."""
    principal = ctx.principal
    if principal is None or principal.unrestricted:
        return None
    return principal


def facts_of(record: EntityRecord, subject: tuple[str, str] | None = None) -> EntityFacts:
    return EntityFacts(record.id, tuple(record.types), tuple(record.scopes or ()), subject)


class EntityAccess:
    def __init__(
        self, pool: asyncpg.Pool, permissions: PermissionService, consents: ConsentService
    ) -> None:
        self._pool = pool
        self.permissions = permissions
        self.consents = consents
        self.owners: OwnerRights | None = None  # subscription owners' current rights
        self.trail: RefusalTrail | None = None  # refused decisions, for the audit log

    # -- one entity ------------------------------------------------------------------------

    async def decisions(
        self,
        ctx: RequestContext,
        schema: str,
        operation: Operation,
        records: Sequence[EntityRecord],
    ) -> dict[str, tuple[Decision, Decision]]:
        """For each record: (may read it, may do ``operation`` to it)."""
        principal = restricted(ctx)
        assert principal is not None
        tenant = ctx.tenant
        out: dict[str, tuple[Decision, Decision]] = {}
        pending: list[EntityRecord] = []
        for record in records:
            # Without permissions, subject or consents only a role or an API key allows: such
            # decisions need no lookup.
            bare = facts_of(record)
            quick = decide(principal, tenant, operation, bare)
            if quick:
                out[record.id] = (decide(principal, tenant, Operation.READ, bare), quick)
            else:
                pending.append(record)
        if not pending:
            return out
        found = await grants(self._pool, schema, [r.id for r in pending])
        tenant_permissions = await self.permissions.of_tenant(tenant)
        consents = await self._consents(principal, tenant, found)
        now = time.time()
        for record in pending:
            facts = facts_of(record, found.subjects.get(record.id))
            held = (*tenant_permissions, *found.permissions.get(record.id, ()))
            read = decide(principal, tenant, Operation.READ, facts, held, consents, now)
            wanted = read
            if operation is not Operation.READ:
                wanted = decide(principal, tenant, operation, facts, held, consents, now)
            out[record.id] = (read, wanted)
        return out

    async def _consents(self, principal: Principal, tenant: str, found: Grants) -> list[Consent]:
        client = consent_client(principal, tenant)
        if client is None or not found.subjects:
            return []
        return await self.consents.consents_for(tenant, client, list(found.subjects.values()))

    async def check(
        self, ctx: RequestContext, schema: str, operation: Operation, record: EntityRecord
    ) -> None:
        """Raise 404 (not readable) or 403 (readable, but not ``operation``); log a consent
        read."""
        if restricted(ctx) is None:
            return
        read, wanted = (await self.decisions(ctx, schema, operation, [record]))[record.id]
        refusal = refused(record.id, read, wanted)
        if refusal is not None:
            log.info("access refused: %s %s: %s", operation, record.id, wanted.reason)
            if isinstance(refusal, ResourceNotFound):  # a 403 is audited by the API's guard
                self._audit(ctx, record.id, refusal, wanted, operation)
            raise refusal
        if operation is Operation.READ and read.via_consent is not None:
            await self.log_reads(ctx, schema, [(record.id, read)], "read")

    async def check_new(
        self, ctx: RequestContext, operation: Operation, record: EntityRecord
    ) -> None:
        """May the caller store an entity with these facts (types, scopes)? Type/scope rights
        only: a new state inherits no entity permission of its own."""
        principal = restricted(ctx)
        if principal is None:
            return
        permissions = await self.permissions.of_tenant(ctx.tenant)
        decision = decide(principal, ctx.tenant, operation, facts_of(record), permissions)
        if not decision:
            log.info("access refused: %s %s: %s", operation, record.id, decision.reason)
            raise AccessDenied(decision.reason)

    async def refusals(
        self,
        ctx: RequestContext,
        schema: str,
        operation: Operation,
        records: Sequence[EntityRecord],
        *,
        new: bool = False,
    ) -> dict[str, NgsiLdError]:
        """A batch's per-entity decisions: id → its 404/403 (absent: allowed). ``new``: the
        states to create (type/scope rights only, always 403)."""
        principal = restricted(ctx)
        if principal is None or not records:
            return {}
        out: dict[str, NgsiLdError] = {}
        if new:
            permissions = await self.permissions.of_tenant(ctx.tenant)
            for record in records:
                decision = decide(principal, ctx.tenant, operation, facts_of(record), permissions)
                if not decision:
                    out[record.id] = AccessDenied(decision.reason)
                    self._audit(ctx, record.id, out[record.id], decision, operation, batch=True)
            return out
        for entity_id, (read, wanted) in (
            await self.decisions(ctx, schema, operation, records)
        ).items():
            refusal = refused(entity_id, read, wanted)
            if refusal is not None:
                out[entity_id] = refusal
                self._audit(ctx, entity_id, refusal, wanted, operation, batch=True)
        return out

    def _audit(
        self,
        ctx: RequestContext,
        entity_id: str,
        refusal: NgsiLdError,
        decision: Decision,
        operation: Operation,
        **extra: object,
    ) -> None:
        """A refused decision on an entity, for the audit log (404s that access control chose
        and the per-entity refusals of a batch: the request itself does not fail)."""
        if self.trail is not None and ctx.principal is not None:
            self.trail.refused(
                ctx.principal,
                ctx.tenant,
                entity_id,
                refusal.status,
                decision.reason,
                operation=str(operation),
                **extra,
            )

    def owner_grant(self, ctx: RequestContext) -> OwnerGrant | None:
        """The creator's ``own`` grant, for the create's insert statement to write (None: no
        grant, e.g. authentication off, or an admin, who owns the whole tenant anyway)."""
        principal = restricted(ctx)
        if principal is None or "admin" in principal.roles_in(ctx.tenant):
            return None
        key = owner_key(principal)
        if key is None:
            return None
        return OwnerGrant(ctx.tenant, key, principal.actor["cityosactor"])

    # -- many entities ---------------------------------------------------------------------

    async def scope(
        self, ctx: RequestContext, operation: Operation = Operation.READ
    ) -> ReadableScope | None:
        """What the caller may read (or delete) in the tenant; None: everything."""
        principal = restricted(ctx)
        if principal is None:
            return None
        permissions = await self.permissions.of_tenant(ctx.tenant)
        found = readable(principal, ctx.tenant, permissions, operation)
        return None if found.everything else found

    async def visible(
        self, ctx: RequestContext, operation: Operation = Operation.READ
    ) -> Visible | None:
        """``scope`` for the query store (None: no condition at all)."""
        found = await self.scope(ctx, operation)
        return None if found is None else Visible(found, ctx.tenant)

    async def log_page(
        self, ctx: RequestContext, schema: str, records: Sequence[EntityRecord], operation: str
    ) -> None:
        """Log the entities of a page that the caller read only under a consent."""
        principal = restricted(ctx)
        if principal is None or consent_client(principal, ctx.tenant) is None or not records:
            return
        decided = await self.decisions(ctx, schema, Operation.READ, records)
        reads = [(i, read) for i, (read, _) in decided.items() if read.via_consent is not None]
        await self.log_reads(ctx, schema, reads, operation)

    async def log_reads(
        self,
        ctx: RequestContext,
        schema: str,
        reads: Sequence[tuple[str, Decision]],
        operation: str,
    ) -> None:
        principal = restricted(ctx)
        if principal is None or not reads:
            return
        client = consent_client(principal, ctx.tenant)
        assert client is not None
        found = await grants(self._pool, schema, [i for i, _ in reads])
        entries = [
            AccessEntry(
                tenant=ctx.tenant,
                issuer=found.subjects[i][0],
                subject=found.subjects[i][1],
                client=client,
                actor=principal.actor["cityosactor"],
                consent_id=d.via_consent,
                entity_id=i,
                operation=operation,
            )
            for i, d in reads
            if i in found.subjects
        ]
        await self.consents.log_reads(entries)


def refused(
    entity_id: str, read: Decision, wanted: Decision
) -> ResourceNotFound | AccessDenied | None:
    """404 for an entity the caller may not even read (its id does not leak), else 403."""
    if wanted:
        return None
    if not read:
        return ResourceNotFound(f"entity {entity_id} not found")
    return AccessDenied(wanted.reason)
