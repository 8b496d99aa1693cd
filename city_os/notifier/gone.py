"""Endpoints gone for good: a subscription whose Web Push subscription ended is paused.

Layer: notifier/. A push service answering 404 or 410 says the user agent's push subscription
expired or was ended (RFC 8030 §7.3, §8.4): every later message to it would fail the same way,
so the subscription is paused (``isActive: false``, status ``paused``), as an update of the
subscription with its change event, whichever replica saw the answer. Its last failure keeps the
push service's answer (the dispatcher's status). The owner re-activates it (PATCH ``isActive``)
once the app has handed city-os a new push subscription. Nothing is done when the subscription
is gone, already paused, or now notifies another endpoint.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from city_os.core.subscriptions import MAX_RETRIES, timers
from city_os.errors import NgsiLdError
from city_os.events.model import subscription_event
from city_os.ngsild.entity import now_iso
from city_os.store.postgres.db import Tenants
from city_os.store.postgres.subscriptions import SubscriptionRepository

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (tenant, subscription id)


class GoneEndpoints:
    def __init__(self, repo: SubscriptionRepository, tenants: Tenants, source: str) -> None:
        self._repo = repo
        self._tenants = tenants
        self._source = source
        self._pausing: dict[Key, asyncio.Task[None]] = {}

    def gone(self, key: Key, uri: str) -> None:
        """The endpoint ``uri`` of a subscription is gone: pause it (once, in the background)."""
        if key in self._pausing:
            return
        task = asyncio.get_running_loop().create_task(self._pause(key, uri))
        self._pausing[key] = task
        task.add_done_callback(lambda _: self._pausing.pop(key, None))

    async def _pause(self, key: Key, uri: str) -> None:
        tenant, sid = key
        try:
            await self.pause(tenant, sid, uri)
        except Exception:
            log.exception("pausing subscription %s of %r (endpoint gone) failed", sid, tenant)

    async def pause(self, tenant: str, sid: str, uri: str) -> bool:
        """Pause the subscription if it still notifies ``uri``; True when this call did."""
        try:
            schema = await self._tenants.schema(tenant, create=False)
        except NgsiLdError:
            return False
        for _ in range(MAX_RETRIES):
            row = await self._repo.get(schema, sid)
            if row is None or row.doc.get("isActive") is False:
                return False
            if row.doc["notification"]["endpoint"]["uri"] != uri:
                return False  # the owner moved it to another endpoint meanwhile
            doc = {**row.doc, "isActive": False}
            now = now_iso()
            event = subscription_event(
                kind="updated",
                tenant=tenant,
                subscription_id=sid,
                subscription=doc,
                time=now,
                source=self._source,
            )
            new = replace(row, doc=doc, modified_at=now, is_active=False)
            if await self._repo.update(schema, tenant, new, event, timers(doc)):
                log.warning(
                    "subscription %s of %r paused: its Web Push subscription has ended", sid, tenant
                )
                return True
        return False

    async def close(self) -> None:
        for task in list(self._pausing.values()):
            task.cancel()
        for task in list(self._pausing.values()):
            try:
                await task
            except asyncio.CancelledError:
                pass
