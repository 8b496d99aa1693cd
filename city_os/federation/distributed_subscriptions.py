"""Distributed subscriptions (§5.8.1.4, §5.8.2.4, §5.8.5.4): Subscriptions forwarded to sources.

Layer: federation/. A Subscription (not ``localOnly``) whose entities a registration covers,
where the registration's source takes ``createSubscription``, is copied to that source: the
copy has an id of its own and this broker's ``/ngsi-ld/ex/remote-notify`` as its endpoint, so
the source notifies this broker, which relays to the subscriber (subscription_relay.py). With
``splitEntities`` the copy carries no ``q``/``scopeQ``/``geoQ``: those are evaluated here on the
entity merged with the local part. Copies carry ``localOnly: true`` so a source that federates
in turn does not cascade them (A→B→A would loop for ever).

Every change of a Subscription (the service's ``on_change`` hook, after its commit) and every
notification of its watching csourceSubscription (§5.11.2: a new or changed registration)
reconciles in the background: copies are created where a registration now matches, updated
where the copy differs from the one last sent, and withdrawn (DELETE at the source) where none
matches any longer or the Subscription is gone. The csourceSubscription is this broker's own
(``urn:ngsi-ld:Subscription:watch:…``), visible under /csourceSubscriptions while its
Subscription lives, in a tenant where some registration takes subscriptions (elsewhere it would
be an event and a row for nothing; a first such registration of a tenant reaches the
Subscriptions made before it at their next change). A failed call leaves no record: the next
change or registration tries again. Reconciliations of one Subscription run one at a time.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from city_os.core.request import RequestContext
from city_os.core.subscriptions import CSOURCE, ID_PREFIX, SubscriptionService
from city_os.errors import AlreadyExists, NgsiLdError, ResourceNotFound
from city_os.federation.client import SourceAnswer, Target
from city_os.federation.distributed import Federation, target
from city_os.federation.model import Doc, Registration
from city_os.federation.via import Hops, identity
from city_os.ngsild.entity import now_iso
from city_os.store.postgres.distributed_subscriptions import RemoteCopy, RemoteCopyRepository
from city_os.store.postgres.subscriptions import SubscriptionRow

log = logging.getLogger(__name__)
REMOTE_NOTIFY = "/ngsi-ld/ex/remote-notify"
CSOURCE_NOTIFY = "/ngsi-ld/ex/csource-notify"
CREATE = "createSubscription"
# Members of a Subscription the copy keeps (the notification is this broker's own).
_COPIED = (
    "entities", "watchedAttributes", "notificationTrigger", "timeInterval", "q", "geoQ",
    "scopeQ", "lang", "datasetId", "isActive", "expiresAt", "throttling", "splitEntities",
)  # fmt: skip
_SPLIT_FILTERS = ("q", "scopeQ", "geoQ")  # evaluated here on the merged entity


def watch_id(tenant: str, subscription_id: str) -> str:
    """The id of the csourceSubscription that watches the registrations of a Subscription."""
    key = uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}\n{subscription_id}")
    return f"{ID_PREFIX}watch:{key}"


def remote_copy(rendered: Doc, remote_id: str, notify_uri: str) -> Doc:
    """The reduced copy of a rendered Subscription sent to a source (§5.8.1.4)."""
    copy: Doc = {"id": remote_id, "type": "Subscription"}
    copy.update((k, rendered[k]) for k in _COPIED if k in rendered)
    split = rendered.get("splitEntities") is True
    if split:
        for member in _SPLIT_FILTERS:
            copy.pop(member, None)
    notification: Doc = {"format": "normalized"}
    asked = rendered.get("notification", {})
    if not split and "attributes" in asked:
        notification["attributes"] = asked["attributes"]
    notification["endpoint"] = {"uri": notify_uri, "accept": "application/json"}
    copy["notification"] = notification
    copy["localOnly"] = True
    return copy


def _covers(reg: Registration, doc: Doc) -> bool:
    """Does the registration cover one of the Subscription's entity selections?"""
    watched = doc.get("watchedAttributes") or None
    selectors = doc.get("entities") or [{}]
    for sel in selectors:
        for types in sel.get("type") or [None]:
            if reg.covers(sel.get("id"), types, watched):
                return True
    return False


class DistributedSubscriptions:
    def __init__(
        self,
        federation: Federation,
        subscriptions: SubscriptionService,
        csource: SubscriptionService,
        copies: RemoteCopyRepository,
        base_url: str,
    ) -> None:
        self.federation = federation
        self.subscriptions = subscriptions
        self.csource = csource
        self.copies = copies
        self.base_url = base_url.rstrip("/")
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # ---------------------------------------------------------------- scheduling

    async def changed(self, tenant: str, subscription_id: str | None) -> None:
        """``on_change`` hook: reconcile in the background (the response does not wait for
        the sources)."""
        if subscription_id is None:
            return
        task = asyncio.create_task(self.reconcile(tenant, subscription_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait for the reconciliations under way (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def reconcile(self, tenant: str, subscription_id: str) -> None:
        key = (tenant, subscription_id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                await self._reconcile(tenant, subscription_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("distributing subscription %s of tenant %r failed", *key[::-1])
        finally:
            if not lock.locked() and self._locks.get(key) is lock:
                del self._locks[key]

    # ---------------------------------------------------------------- the work

    async def _reconcile(self, tenant: str, sid: str) -> None:
        row, ctx = await self._local(tenant, sid)
        copies = await self.copies.of(tenant, sid)
        federated = self._federated(tenant)
        if row is not None and not federated and not copies:
            return  # the common case: nothing to forward, nothing forwarded, no watch made
        regs = {r.id: r for r in self._registrations(tenant, row.doc)} if row else {}
        if row is None or ctx is None or not federated:
            await self._unwatch(tenant, sid)
        else:
            await self._watch(ctx, row)
        kept: dict[str, RemoteCopy] = {}
        for copy in copies:
            if copy.registration_id in regs:
                kept[copy.registration_id] = copy
            else:
                await self._withdraw(copy)
        if row is None or ctx is None:
            return
        rendered = self.subscriptions.render(ctx, row, False)
        for reg in regs.values():
            old = kept.get(reg.id)
            remote_id = old.remote_id if old else f"{ID_PREFIX}{uuid.uuid4()}"
            body = remote_copy(rendered, remote_id, self.base_url + REMOTE_NOTIFY)
            if old is None:
                await self._send(ctx, row, reg, body, "POST", "/subscriptions", CREATE)
            elif old.copy != body:
                path = "/subscriptions/" + quote(remote_id, safe=":")
                fragment = {k: v for k, v in body.items() if k != "id"}
                await self._send(ctx, row, reg, fragment, "PATCH", path, "updateSubscription")

    async def _local(
        self, tenant: str, sid: str
    ) -> tuple[SubscriptionRow | None, RequestContext | None]:
        """The Subscription when it is one to distribute, and a context in its own terms."""
        try:
            schema = await self.subscriptions.tenants.schema(tenant, create=False)
        except NgsiLdError:
            return None, None
        row = await self.subscriptions.repo.get(schema, sid)
        if row is None or row.doc.get(CSOURCE) or row.doc.get("localOnly") is True:
            return None, None
        terms = await self.subscriptions.contexts.term_map(row.context)
        return row, RequestContext(tenant, terms, now_iso(), row.context)

    def _federated(self, tenant: str) -> bool:
        """Does any registration of the tenant take subscriptions? (Only then is a watch
        worth its csourceSubscription.)"""
        return any(reg.serves(CREATE) for reg in self.federation.index.registrations(tenant))

    def _registrations(self, tenant: str, doc: Doc) -> list[Registration]:
        now = datetime.now(UTC)
        me = self.federation.me
        return [
            reg
            for reg in self.federation.index.registrations(tenant)
            if reg.mode != "auxiliary"
            and reg.serves(CREATE)
            and not reg.expired(now)
            and identity(reg.endpoint) != me
            and _covers(reg, doc)
        ]

    async def _send(
        self,
        ctx: RequestContext,
        row: SubscriptionRow,
        reg: Registration,
        body: Doc,
        method: str,
        path: str,
        operation: str,
    ) -> None:
        remote_id = body.get("id") or path.rsplit("/", 1)[1]
        kept = {**body, "id": remote_id}
        copy = RemoteCopy(remote_id, ctx.tenant, row.id, reg.id, reg.endpoint, reg.tenant, kept)
        if method == "POST":  # recorded first: a copy the source made is never lost track of
            await self.copies.put(copy)
        sent = body if row.context is None else {**body, "@context": row.context}
        answer = await self._call(target(reg), method, path, operation, sent, row.context)
        if answer.ok:
            await self.copies.put(copy)
            return
        log.warning("%s of subscription %s at %s failed: %s", operation, row.id, reg.endpoint,
                    answer.error)  # fmt: skip
        if method == "POST":
            await self.copies.remove(remote_id)

    async def _withdraw(self, copy: RemoteCopy) -> None:
        where = Target(copy.endpoint, copy.registration_id, copy.source_tenant)
        path = "/subscriptions/" + quote(copy.remote_id, safe=":")
        answer = await self._call(where, "DELETE", path, "deleteSubscription", None, None)
        if not answer.ok and answer.status != 404:
            log.warning("deleting the copy %s at %s failed: %s", copy.remote_id, copy.endpoint,
                        answer.error)  # fmt: skip
        await self.copies.remove(copy.remote_id)

    async def _call(
        self, where: Target, method: str, path: str, operation: str, body: Any, context: Any
    ) -> SourceAnswer:
        return await self.federation.client.call(
            where,
            method,
            path,
            operation=operation,
            body=body,
            context=context,
            via=Hops(None, self.federation.me).outgoing(),
        )

    # ---------------------------------------------------------------- the watch

    async def _watch(self, ctx: RequestContext, row: SubscriptionRow) -> None:
        """The csourceSubscription that tells this broker of registrations for ``row``."""
        selection = _watched(row.doc)
        if selection is None:
            return
        uri = f"{self.base_url}{CSOURCE_NOTIFY}?subscription={quote(row.id, safe=':')}"
        body = {
            "id": watch_id(ctx.tenant, row.id),
            "type": "Subscription",
            **selection,
            "notification": {"endpoint": {"uri": uri, "accept": "application/json"}},
        }
        watch = RequestContext(ctx.tenant, await self.csource.contexts.term_map(None), ctx.now)
        try:
            await self.csource.create(watch, body)
        except AlreadyExists:
            pass
        except NgsiLdError as exc:  # e.g. the network policy refuses this broker's own URL
            log.warning("cannot watch the registrations of %s: %s", row.id, exc.detail)

    async def _unwatch(self, tenant: str, sid: str) -> None:
        ctx = RequestContext(tenant, await self.csource.contexts.term_map(None), now_iso())
        try:
            await self.csource.delete(ctx, watch_id(tenant, sid))
        except ResourceNotFound:
            pass
        except NgsiLdError as exc:
            log.warning("cannot delete the watch of %s: %s", sid, exc.detail)


def _watched(doc: Doc) -> Doc | None:
    """The csourceSubscription selection for a Subscription's: its entities (full IRIs), else
    its watched attributes."""
    entities = []
    for sel in doc.get("entities") or ():
        base = {k: sel[k] for k in ("id", "idPattern") if k in sel}
        for types in sel.get("type") or ():
            entities += [{**base, "type": t} for t in types]
    if entities:
        return {"entities": list({repr(e): e for e in entities}.values())}
    if doc.get("watchedAttributes"):
        return {"watchedAttributes": list(doc["watchedAttributes"])}
    return None
