"""Notifications carry only what the subscription's owner may read, decided at delivery time.

Layer: notifier/. A subscription created with authentication on has an owner
(``auth/subscribers.py``); each matched change is decided for that owner with ``decide(READ)``
over the permissions, data subject and consents as they are now (``auth/enforce.py``: the
tenant's permission cache is kept current by ``NOTIFY cityos_permissions``, entity permissions
and consents are read at each decision, so a revoked consent stops the very next
notification). A change of an entity the owner may not read is not notified. Deliveries under
a consent are written to the citizen's access log (operation ``notification``). Periodic
notifications run their query as the owner (``context_of``), so the readable scope is in SQL.
Without an owner (authentication off) nothing is filtered.
"""

from __future__ import annotations

from collections.abc import Sequence

from city_os.auth.enforce import EntityAccess, restricted
from city_os.auth.policy import Operation
from city_os.auth.principal import Principal
from city_os.auth.subscribers import owner_principal
from city_os.core.request import RequestContext
from city_os.ngsild.entity import now_iso
from city_os.ngsild.jsonld import TermMap
from city_os.ngsild.representation import EntityRecord
from city_os.notifier.compile import Subscription
from city_os.notifier.match import Change

# An owner without any right left (a revoked API key): decides every entity unreadable.
NOBODY = Principal(anonymous=True, tenants=frozenset())


def context_of(
    sub: Subscription, terms: TermMap, now: str | None = None, principal: Principal | None = None
) -> RequestContext:
    """The request context the notifier acts in for ``sub``: as its owner, if it has one
    (``principal``: the owner's current rights; else the snapshot taken at creation)."""
    if principal is None and sub.owner is not None:
        principal = owner_principal(sub.owner, sub.tenant)
    return RequestContext(tenant=sub.tenant, terms=terms, now=now or now_iso(), principal=principal)


def _facts(change: Change) -> EntityRecord:
    """What the decision needs of the changed entity (after the change, else before it)."""
    if change.record is not None:
        return change.record
    scopes = (change.system or {}).get("scopes")
    return EntityRecord(change.entity_id, list(change.types), {}, scopes, change.time, change.time)


class NotificationAccess:
    def __init__(self, access: EntityAccess) -> None:
        self._access = access

    async def owner(self, sub: Subscription) -> Principal | None:
        """The owner's rights now (None: no owner, nothing is filtered)."""
        if sub.owner is None:
            return None
        owners = self._access.owners
        if owners is None:
            return owner_principal(sub.owner, sub.tenant)
        return await owners.principal(sub.owner, sub.tenant) or NOBODY

    async def context(
        self, sub: Subscription, terms: TermMap, now: str | None = None
    ) -> RequestContext:
        return context_of(sub, terms, now, await self.owner(sub))

    async def keep(
        self, matches: Sequence[tuple[Subscription, Change, str]]
    ) -> list[tuple[Subscription, Change, str]]:
        """The matches whose owner may read the changed entity; consent reads are logged."""
        out = []
        owners: dict[tuple[str, str], Principal | None] = {}  # one look-up per subscription
        for match in matches:
            sub, change, _ = match
            if sub.owner is None:
                out.append(match)
                continue
            if sub.key not in owners:
                owners[sub.key] = await self.owner(sub)
            if await self._readable(sub, owners[sub.key], [_facts(change)]):
                out.append(match)
        return out

    async def readable(
        self, sub: Subscription, records: Sequence[EntityRecord]
    ) -> list[EntityRecord]:
        """The entities of a notification relayed from a context source (federation/) that
        ``sub``'s owner may read now; consent reads are logged."""
        if sub.owner is None:
            return list(records)
        return await self._readable(sub, await self.owner(sub), records)

    async def _readable(
        self, sub: Subscription, owner: Principal | None, records: Sequence[EntityRecord]
    ) -> list[EntityRecord]:
        if owner is NOBODY:
            return []  # the owner's API key is revoked or expired: nothing at all
        ctx = context_of(sub, sub.view.terms, principal=owner)
        if restricted(ctx) is None:
            return list(records)
        schema = await self._access.permissions.tenants.schema(sub.tenant, create=False)
        decided = await self._access.decisions(ctx, schema, Operation.READ, records)
        out, consented = [], []
        for record in records:
            read, _ = decided[record.id]
            if read:
                out.append(record)
                if read.via_consent is not None:
                    consented.append((record.id, read))
        if consented:
            await self._access.log_reads(ctx, schema, consented, "notification")
        return out
