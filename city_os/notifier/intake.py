"""From a batch of consumed events to durable, queued notifications.

Layer: notifier/. Per batch: parse the entity changes (subscription changes refresh the index,
a second path besides LISTEN), read the entity of claim checks from the store, find each
change's candidate subscriptions in the index and keep those whose selectors and triggers it
fires (match.py), ask the selection filter about the rest of their selection, let throttled
subscriptions through once per throttling period cluster-wide, render, and store everything in
one statement (committed without waiting for the WAL flush). Only then are the new rows queued —
and the caller commits the batch's offsets once the rows are flushed (``store.barrier``).
A change older than a subscription is not notified to it (it happened before it existed).
Periodic (timeInterval) subscriptions are not notified of changes at all (periodic.py).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from city_os.core.entities import EntityService
from city_os.core.linked import linked_entities
from city_os.errors import NgsiLdError
from city_os.events.model import SUBSCRIPTION_EVENT_PREFIX
from city_os.federation.csource_notify import CSourceNotifier
from city_os.federation.events import REGISTRATION_EVENT_PREFIX
from city_os.ngsild.entity import now_iso
from city_os.ngsild.representation import EntityRecord
from city_os.notifier.access import NotificationAccess, context_of
from city_os.notifier.compile import Subscription
from city_os.notifier.dispatch import Dispatcher
from city_os.notifier.index import SubscriptionIndex
from city_os.notifier.match import (
    GONE,
    Change,
    change_of,
    notified,
    reason,
    resolved,
    selected,
)
from city_os.notifier.render import View, entities, notification, notified_record
from city_os.notifier.selection import SelectionFilter
from city_os.observability.metrics import Metrics
from city_os.store.postgres.notifications import NewNotification, NotificationStore

log = logging.getLogger(__name__)
Match = tuple[Subscription, Change, str]


class Intake:
    def __init__(
        self,
        index: SubscriptionIndex,
        selections: SelectionFilter,
        store: NotificationStore,
        dispatcher: Dispatcher,
        entities: EntityService,
        metrics: Metrics,
    ) -> None:
        self._index = index
        self._selections = selections
        self._store = store
        self._dispatcher = dispatcher
        self._entities = entities
        self._metrics = metrics
        self.access: NotificationAccess | None = None  # set when authentication is on
        # Context-source subscriptions (§5.11): registration change events and the initial
        # notification of a new csourceSubscription (federation/csource_notify.py).
        self.csource: CSourceNotifier | None = None  # set by the Notifier
        self._csource_rows: list[NewNotification] = []

    async def handle(self, envelopes: list[dict[str, Any]]) -> int:
        """Store and queue the notifications of these events; returns how many were new."""
        changes, tenants = await self._changes(envelopes)
        matches = await self._selected(self._matches(changes))
        if self.access is not None:  # only what each subscription's owner may read
            matches = await self.access.keep(matches)
        matches = await self._throttled(matches)
        rows = []
        shared: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        now = now_iso()  # one notifiedAt per batch
        for sub, change, why in matches:
            try:
                rows.append(await self._render(sub, change, why, shared, now))
            except Exception:
                log.exception(
                    "cannot render the notification of %s for %s", change.event_id, sub.id
                )
        rows += self._csource_rows  # csourceSubscriptions' notifications of this batch
        self._csource_rows = []
        # not waiting for the WAL flush: the consumer's barrier makes the rows durable before
        # the batch's offsets are committed (NotificationStore.barrier)
        stored = await self._store.add(rows, flushed=False)
        self._metrics.notifications_stored.inc(len(stored))
        self._dispatcher.submit(stored)
        # counted as handled only now that their notifications are stored and queued
        for tenant, n in tenants.items():
            self._metrics.notifier_events.labels(tenant).inc(n)
        return len(stored)

    async def _changes(self, envelopes: list[dict[str, Any]]) -> tuple[list[Change], Counter[str]]:
        changes: list[Change] = []
        tenants: Counter[str] = Counter()
        for envelope in envelopes:
            data = envelope.get("data")
            tenants[data.get("tenant", "") if isinstance(data, dict) else ""] += 1
            kind = str(envelope.get("type", ""))
            if kind.startswith(SUBSCRIPTION_EVENT_PREFIX) and isinstance(data, dict):
                await self._index.refresh(data.get("tenant", ""), data.get("subscriptionId"))
                await self._csource_subscribed(envelope, kind, data)
                continue
            if kind.startswith(REGISTRATION_EVENT_PREFIX) and isinstance(data, dict):
                if self.csource is None:
                    continue
                candidates = self._index.csource(data.get("tenant", ""))
                self._csource_rows += self.csource.changed(envelope, candidates)
                continue
            try:
                change = change_of(envelope)
            except (KeyError, TypeError, ValueError, AttributeError):
                log.warning("skipping a malformed event %r", envelope.get("id"))
                continue
            if change is not None:
                if change.claim:
                    change = resolved(change, await self._stored(change))
                changes.append(change)
        return changes, tenants

    async def _csource_subscribed(self, envelope: dict[str, Any], kind: str, data: Any) -> None:
        if self.csource is None or kind.endswith(".deleted"):
            return
        sub = self._index.get((data.get("tenant", ""), data.get("subscriptionId")))
        if sub is not None:
            self._csource_rows += await self.csource.subscribed(sub, str(envelope.get("id")))

    async def _stored(self, change: Change) -> EntityRecord | None:
        """The entity of a claim check, as it is now (the event left it out)."""
        try:
            schema = await self._entities.tenants.schema(change.tenant, create=False)
        except NgsiLdError:
            return None
        found = await self._entities.repo.get(schema, change.entity_id)
        return found.record if found is not None else None

    def _matches(self, changes: list[Change]) -> list[Match]:
        now = time.time()
        out: list[Match] = []
        for change in changes:
            for sub in self._index.candidates(change.tenant, change.entity_id, change.types):
                if sub.periodic or change.when < sub.created or not sub.live(now):
                    continue
                if not selected(sub, change):
                    continue
                why = reason(sub, change)
                if why is not None:
                    out.append((sub, change, why))
        return out

    async def _selected(self, matches: list[Match]) -> list[Match]:
        asked = [(n, m) for n, m in enumerate(matches) if m[0].filtered]
        if not asked:
            return matches
        answers = await self._selections.keep([(m[0], m[1]) for _, m in asked])
        refused = {n for (n, _), ok in zip(asked, answers, strict=True) if not ok}
        return [m for n, m in enumerate(matches) if n not in refused]

    async def _throttled(self, matches: list[Match]) -> list[Match]:
        """At most one notification per throttling period, cluster-wide (§5.2.12)."""
        first: dict[tuple[str, str], int] = {}
        for n, (sub, _, _) in enumerate(matches):
            if sub.throttle is not None:
                first.setdefault(sub.key, n)
        if not first:
            return matches
        keys = [
            (sub.tenant, sub.id, float(sub.throttle or 0))
            for sub in (matches[n][0] for n in first.values())
        ]
        allowed = await self._store.allow(keys)
        return [
            m
            for n, m in enumerate(matches)
            if m[0].throttle is None or (m[0].key in allowed and first[m[0].key] == n)
        ]

    async def _render(
        self,
        sub: Subscription,
        change: Change,
        why: str,
        shared: dict[tuple[Any, ...], list[dict[str, Any]]],
        now: str,
    ) -> NewNotification:
        view = sub.view
        shown = notified(sub, change, why)
        linked = None
        # The entities of a change look the same to every subscription with the same view of
        # them (terms, format, projection): rendered once per batch (fan-out).
        key = _view_key(view, change) if view.join is None else None
        data = shared.get(key) if key is not None else None
        if data is None:
            if view.join is not None and shown.record is not None:
                record = notified_record(view, shown, now)
                # linked entities: what the owner may read (its rights now)
                if self.access is not None:
                    ctx = await self.access.context(sub, view.terms, now)
                else:
                    ctx = context_of(sub, view.terms, now)
                linked = await linked_entities(self._entities, ctx, [record], view.opts, view.join)
            data = entities(view, shown, linked, now)
            if key is not None:
                shared[key] = data
        records = []  # the entities as records: for another API face and GeoJSON only
        if view.face is not None or view.accept == "application/geo+json":
            records = [notified_record(view, shown, now), *(linked or {}).values()]
        nid, headers, body = notification(view, sub.id, data, records, why, change.event_id, now)
        return NewNotification(
            notification_id=nid,
            tenant=sub.tenant,
            subscription_id=sub.id,
            source_id=change.event_id,
            entity_id=change.entity_id,
            endpoint=sub.endpoint.uri,
            headers=headers,
            body=body,
            event_time=change.when,
        )


def _view_key(view: View, change: Change) -> tuple[Any, ...] | None:
    """What an entity notification's ``data`` depends on besides the change, or None when it
    also depends on the subscription (a deletion shows its watched attributes; another API
    face renders on its own)."""
    if change.kind in GONE or view.face is not None:
        return None
    terms = id(view.terms)  # one TermMap per @context (the context loader's cache)
    return (change.event_id, terms, view.opts, view.datasets, view.deleted_as_null,
            view.show_changes)  # fmt: skip
