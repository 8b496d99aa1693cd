"""Notifications from context sources relayed to the subscriber (§5.8.1.4, §5.8.6).

Layer: federation/. A source notifies this broker (``POST /ngsi-ld/ex/remote-notify``) under the
id of the copy it holds (distributed_subscriptions.py); the copy names the local Subscription.
Each notified entity is read like any answer of a source (remote.py); with ``splitEntities`` it
is merged with the local part of the entity (the notified attributes win: they are the news)
and the local Subscription's selection (its q, scopeQ, geoQ) is evaluated on the merged entity
— entities failing it are dropped, and so are those the Subscription's owner may not read
(authentication on: notifier/access.py, as for local changes). What remains is rendered as
the local Subscription asks (format, attributes, @context, endpoint) under the local
Subscription's id, and becomes a durable notification like every other: stored, then queued by
the notifier in this process; without one here, a notifier replica takes it over when its lease
runs out. The notification
id is derived from the source's notification id, so a source retrying is not notified twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from city_os.core.entities import EntityService
from city_os.core.request import RequestContext
from city_os.core.subscriptions import CSOURCE
from city_os.errors import BadRequestData, ResourceNotFound
from city_os.federation.remote import Reader
from city_os.ngsild.entity import now_iso
from city_os.ngsild.representation import EntityRecord, render
from city_os.notifier.access import NotificationAccess
from city_os.notifier.compile import Compiler
from city_os.notifier.dispatch import Dispatcher
from city_os.notifier.render import notification
from city_os.store.postgres.distributed_subscriptions import RemoteCopyRepository
from city_os.store.postgres.notifications import NewNotification, NotificationStore
from city_os.store.postgres.subscriptions import SubscriptionRepository

# Where a stored notification goes: the store and, in a process with a notifier, its dispatcher.
Delivery = Callable[[], tuple[NotificationStore, Dispatcher | None]]


def merged(local: EntityRecord | None, notified: EntityRecord) -> EntityRecord:
    """The entity as a whole: the local part with the notified attributes over it."""
    if local is None:
        return notified
    types = list(dict.fromkeys([*local.types, *notified.types]))
    scopes = notified.scopes if notified.scopes is not None else local.scopes
    return EntityRecord(
        notified.id,
        types,
        {**local.attrs, **notified.attrs},
        scopes,
        local.created_at or notified.created_at,
        max(local.modified_at, notified.modified_at),
        local.expires_at,
    )


def _parts(body: Any) -> tuple[str, str | None, list[dict[str, Any]]]:
    """(subscriptionId, notification id, entities) of a Notification (§5.3.1)."""
    if not isinstance(body, dict) or body.get("type") != "Notification":
        raise BadRequestData('the payload must be a Notification (type "Notification")')
    remote_id = body.get("subscriptionId")
    if not isinstance(remote_id, str) or not remote_id:
        raise BadRequestData("subscriptionId: must be the id of the Subscription notified")
    data = body.get("data")
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise BadRequestData("data: must be an array of entities")
    nid = body.get("id")
    return remote_id, nid if isinstance(nid, str) else None, data


class NotificationRelay:
    def __init__(
        self,
        copies: RemoteCopyRepository,
        subscriptions: SubscriptionRepository,
        entities: EntityService,
        compiler: Compiler,
        delivery: Delivery,
    ) -> None:
        self.copies = copies
        self.subscriptions = subscriptions
        self.entities = entities
        self.compiler = compiler
        self.delivery = delivery
        self.access: NotificationAccess | None = None  # set when authentication is on

    async def relay(self, ctx: RequestContext, body: Any) -> int:
        """Relay one source notification (``ctx``: in the terms it was sent with); returns how
        many entities were notified (0: none passed the local selection)."""
        remote_id, nid, data = _parts(body)
        copy = await self.copies.get(remote_id)
        if copy is None:
            raise ResourceNotFound(f"no distributed subscription has the id {remote_id}")
        schema = await self.entities.tenants.schema(copy.tenant, create=False)
        row = await self.subscriptions.get(schema, copy.subscription_id)
        if row is None or row.doc.get(CSOURCE):
            raise ResourceNotFound(f"subscription {copy.subscription_id} no longer exists")
        sub = await self.compiler.compile(copy.tenant, row)
        reader = Reader(ctx)
        split = row.doc.get("splitEntities") is True
        kept: list[EntityRecord] = []
        for n, raw in enumerate(data):
            record = reader.record({k: v for k, v in raw.items() if k != "@context"})
            if record is None:
                raise BadRequestData(f"data[{n}]: not a valid NGSI-LD entity")
            if split:
                local = await self.entities.repo.get(schema, record.id)
                record = merged(local.record if local is not None else None, record)
                if not sub.compiled.matches(record):
                    continue  # §5.8.6: fails the local selection once merged
            kept.append(record)
        if self.access is not None:  # only what the subscription's owner may read (§ #10)
            kept = await self.access.readable(sub, kept)
        if not kept or not sub.live(time.time()):
            return 0
        view, now = sub.view, now_iso()
        shown = [render(r, view.terms, view.opts) for r in kept]
        source = uuid.uuid5(uuid.NAMESPACE_URL, f"{remote_id}\n{nid}") if nid else uuid.uuid4()
        trigger = body.get("triggerReason")
        nid_, headers, payload = notification(
            view, sub.id, shown, kept, trigger if isinstance(trigger, str) else None,
            str(source), now,
        )  # fmt: skip
        store, dispatcher = self.delivery()
        stored = await store.add(
            [
                NewNotification(
                    notification_id=nid_,
                    tenant=copy.tenant,
                    subscription_id=sub.id,
                    source_id=str(source),
                    entity_id=kept[0].id,
                    endpoint=sub.endpoint.uri,
                    headers=headers,
                    body=payload,
                    event_time=time.time(),
                )
            ]
        )
        if dispatcher is not None:
            dispatcher.submit(stored)
        return len(kept)
