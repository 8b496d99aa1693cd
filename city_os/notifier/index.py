"""The in-memory index of subscriptions, kept current without polling.

Layer: notifier/. Every subscription of every tenant, compiled (compile.py), found per event
by the entity's id (subscriptions naming entities) and types (a dict lookup per type), plus the
subscriptions without entity selectors.
It is loaded at start and refreshed one subscription at a time on ``LISTEN
cityos_subscriptions`` (every change's transaction NOTIFYs it); after a lost listener connection
everything is reloaded, since notifications may have been missed. ``city-os serve`` also
refreshes right after its own commits, before answering, so a subscription applies to every
change committed after the response. Refreshes are serialised and each reads the committed
state, so the last one wins with the newest. A subscription whose @context cannot be resolved
now is kept out and compiled again on the next ``retry``. Whether a subscription is active or
expired is decided when it is used, so ``isActive`` and ``expiresAt`` take effect at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import orjson

from city_os.core.subscriptions import CSOURCE
from city_os.errors import NgsiLdError
from city_os.notifier.compile import Compiler, Subscription
from city_os.store.postgres.db import Tenants
from city_os.store.postgres.listen import ChannelListener
from city_os.store.postgres.subscriptions import CHANNEL, SubscriptionRepository, SubscriptionRow

log = logging.getLogger(__name__)
Key = tuple[str, str]


class SubscriptionIndex:
    def __init__(
        self,
        repo: SubscriptionRepository,
        tenants: Tenants,
        compiler: Compiler,
        dsn: str | None = None,
    ) -> None:
        self._repo = repo
        self._tenants = tenants
        self._compiler = compiler
        self._listener = ChannelListener(dsn, CHANNEL, self._apply, self.reload) if dsn else None
        self._subs: dict[Key, Subscription] = {}
        self._by_id: dict[str, dict[str, list[Subscription]]] = {}
        self._by_type: dict[str, dict[str, list[Subscription]]] = {}
        self._any: dict[str, list[Subscription]] = {}
        self._csource: dict[str, list[Subscription]] = {}  # context-source subscriptions
        self._broken: dict[Key, str] = {}  # could not be compiled: why
        self._lock = asyncio.Lock()

    # ----------------------------------------------------------------- reads

    def get(self, key: Key) -> Subscription | None:
        return self._subs.get(key)

    def all(self) -> Iterable[Subscription]:
        return self._subs.values()

    def candidates(self, tenant: str, entity_id: str, types: Iterable[str]) -> list[Subscription]:
        """The subscriptions this entity may match (a superset): those naming its id, those
        naming one of its types, and those without entity selectors."""
        found = list(self._any.get(tenant, ()))
        found.extend(self._by_id.get(tenant, {}).get(entity_id, ()))
        by_type = self._by_type.get(tenant)
        if by_type:
            seen = {id(s) for s in found}
            for type_iri in types:
                for sub in by_type.get(type_iri, ()):
                    if id(sub) not in seen:
                        seen.add(id(sub))
                        found.append(sub)
        return found

    def csource(self, tenant: str) -> list[Subscription]:
        """The context-source subscriptions of a tenant (§5.11; federation/csource_notify.py)."""
        return list(self._csource.get(tenant, ()))

    def broken(self) -> dict[Key, str]:
        return dict(self._broken)

    # ---------------------------------------------------------------- changes

    def _place(self, tenant: str) -> None:
        """Rebuild the lookups of one tenant (a subscription changed there)."""
        by_id: dict[str, list[Subscription]] = {}
        by_type: dict[str, list[Subscription]] = {}
        anything: list[Subscription] = []
        csource: list[Subscription] = []
        for sub in self._subs.values():
            if sub.tenant != tenant:
                continue
            if sub.doc.get(CSOURCE):  # selects registrations, never entity changes
                csource.append(sub)
            elif not sub.selectors:
                anything.append(sub)
            elif all(s.ids for s in sub.selectors):  # only named entities: found by id
                for entity_id in {i for s in sub.selectors for i in s.ids}:
                    by_id.setdefault(entity_id, []).append(sub)
            else:
                # An entity matching an alternative has all of its types, so it has the first.
                firsts = {min(group) for s in sub.selectors for group in s.types}
                for type_iri in firsts:
                    by_type.setdefault(type_iri, []).append(sub)
        self._by_id[tenant] = by_id
        self._by_type[tenant] = by_type
        self._any[tenant] = anything
        self._csource[tenant] = csource

    async def _compiled(self, tenant: str, row: SubscriptionRow) -> Subscription | None:
        key = (tenant, row.id)
        try:
            sub = await self._compiler.compile(tenant, row)
        except NgsiLdError as exc:  # e.g. its @context cannot be fetched now
            log.warning("subscription %s of %r is not usable now: %s", row.id, tenant, exc.detail)
            self._broken[key] = exc.detail
            return None
        except Exception as exc:  # a stored document this version cannot read: keep going
            log.exception("subscription %s of tenant %r cannot be compiled", row.id, tenant)
            self._broken[key] = f"{type(exc).__name__}: {exc}"
            return None
        self._broken.pop(key, None)
        return sub

    async def refresh(self, tenant: str, subscription_id: str | None) -> None:
        """Re-read one subscription after a change (created, updated or deleted)."""
        if subscription_id is None:
            return
        async with self._lock:
            key = (tenant, subscription_id)
            try:
                schema = await self._tenants.schema(tenant, create=False)
            except NgsiLdError:
                schema = None
            row = await self._repo.get(schema, key[1]) if schema is not None else None
            sub = await self._compiled(tenant, row) if row is not None else None
            if sub is None:
                self._subs.pop(key, None)
                if row is None:
                    self._broken.pop(key, None)
            else:
                self._subs[key] = sub
            self._place(tenant)

    async def reload(self) -> None:
        """Load every subscription of every tenant (start-up, after a lost listener)."""
        async with self._lock:
            fresh: dict[Key, Subscription] = {}
            self._broken = {}
            for tenant, schema in await self._tenants.all():
                for row in await self._repo.page(schema, 0, 0):
                    sub = await self._compiled(tenant, row)
                    if sub is not None:
                        fresh[sub.key] = sub
            self._subs = fresh
            for tenant in {k[0] for k in fresh} | set(self._by_type):
                self._place(tenant)

    async def retry(self) -> None:
        """Compile again the subscriptions whose @context could not be resolved."""
        for tenant, sid in list(self._broken):
            await self.refresh(tenant, sid)

    # ------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self._listener is not None:
            await self._listener.start()
        await self.reload()

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()

    async def _apply(self, payload: str) -> None:
        change = orjson.loads(payload)
        await self.refresh(change["tenant"], change["id"])
