"""Periodic notifications (``timeInterval``, §5.8.6): once per interval in the whole cluster.

Layer: notifier/. Every replica polls the cluster-wide timers (store/postgres/notifications.py
``due_periods``); the one whose UPDATE moves a due timer to its next period fires it — a
PostgreSQL row lock decides, so a period fires once however many replicas run. Firing queries
the current state of every entity the subscription selects with the query engine
(core/query.py) and sends it as one notification (several beyond ``PAGE`` entities); a
subscription that matches nothing sends nothing that period. The period's id is the notification
source, so a replica dying mid-way cannot make it fire twice.
"""

from __future__ import annotations

import asyncio
import logging
import time

from city_os.core.query import EntityQuery, Page, QueryService
from city_os.errors import NgsiLdError
from city_os.federation.csource_notify import CSourceNotifier, is_csource
from city_os.ngsild.representation import render
from city_os.notifier.access import NOBODY, NotificationAccess, context_of
from city_os.notifier.compile import Subscription
from city_os.notifier.dispatch import Dispatcher
from city_os.notifier.index import SubscriptionIndex
from city_os.notifier.render import Notified, notification, notified_record
from city_os.store.postgres.notifications import NewNotification, NotificationStore, period_id

log = logging.getLogger(__name__)
PAGE = 1000  # entities per periodic notification
MAX_ENTITIES = 10_000  # per period


class PeriodicNotifier:
    def __init__(
        self,
        store: NotificationStore,
        index: SubscriptionIndex,
        queries: QueryService,
        dispatcher: Dispatcher,
        poll: float = 0.25,
    ) -> None:
        self._store = store
        self._index = index
        self._queries = queries
        self._dispatcher = dispatcher
        self._poll = poll
        self.access: NotificationAccess | None = None  # set when authentication is on
        self.csource: CSourceNotifier | None = None  # csourceSubscriptions (set by the Notifier)

    async def run(self) -> None:
        while True:
            try:
                await self.fire_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("periodic notifications: firing failed; trying again")
            await asyncio.sleep(self._poll)

    async def fire_due(self) -> int:
        """Fire the periods due now (those this replica won); returns notifications stored."""
        stored = 0
        for tenant, sid, due in await self._store.due_periods():
            sub = self._index.get((tenant, sid))
            if sub is None or not sub.live(time.time()):
                continue
            try:
                rows = await self._notifications(sub, period_id(tenant, sid, due))
            except NgsiLdError as exc:
                log.warning("periodic subscription %s of %r: %s", sid, tenant, exc.detail)
                continue
            new = await self._store.add(rows)
            self._dispatcher.submit(new)
            stored += len(new)
        return stored

    async def _notifications(self, sub: Subscription, source: str) -> list[NewNotification]:
        if self.csource is not None and is_csource(sub):  # registrations, not entities
            return await self.csource.periodic(sub, source)
        view = sub.view
        # as its owner, with its rights now: the readable scope applies
        if self.access is not None:
            ctx = await self.access.context(sub, view.terms)
        else:
            ctx = context_of(sub, view.terms)
        out: list[NewNotification] = []
        if ctx.principal is NOBODY:  # the owner's API key is revoked or expired
            return out
        query = EntityQuery(sub.selection, join_level=8)  # q may follow relationships
        offset = 0
        while offset < MAX_ENTITIES:
            result = await self._queries.query(ctx, query, Page(limit=PAGE, offset=offset))
            records = [
                notified_record(view, Notified(r.id, r.types, r, {}, {}), ctx.now)
                for r in result.records
            ]
            if records:
                data = [render(r, view.terms, view.opts) for r in records]
                # one source per page of the period: the same ids on every replica
                page_source = source if offset == 0 else period_id(sub.tenant, source, offset)
                nid, headers, body = notification(view, sub.id, data, records, None, page_source)
                out.append(
                    NewNotification(
                        nid,
                        sub.tenant,
                        sub.id,
                        page_source,
                        "",
                        sub.endpoint.uri,
                        headers,
                        body,
                        None,
                    )
                )
            if not result.more:
                break
            offset += PAGE
        return out
