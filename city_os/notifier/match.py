"""Which subscriptions a change concerns, and why (§5.8.6 notification triggers).

Layer: notifier/ (pure). A change event (events/model.py) becomes a ``Change``: the entity
after it, and per attribute whether the change created, updated or deleted an instance
(compared per datasetId). A creation also creates every attribute and a deletion (expiry,
purge) deletes every attribute, so ``attributeCreated``/``attributeDeleted`` subscriptions hear
of them too; ``entityUpdated`` stands for the three attribute triggers. ``watchedAttributes``
narrow the attribute triggers to those attributes. Entity selectors are decided here by type
and id; ``idPattern``, ``q``, ``geoQ`` and ``scopeQ`` by the selection filter (selection.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from city_os.events.model import EVENT_TYPE_PREFIX
from city_os.ngsild.entity import Instance
from city_os.ngsild.representation import EntityRecord
from city_os.notifier.compile import Subscription
from city_os.notifier.render import Notified

GONE = frozenset({"deleted", "expired", "purged"})


@dataclass(slots=True)
class Change:
    event_id: str
    kind: str  # created | updated | replaced | deleted | expired | purged
    tenant: str
    entity_id: str
    types: list[str]
    time: str
    when: float  # epoch seconds of ``time``
    record: EntityRecord | None  # after the change; None once deleted (or not in the event)
    system: dict[str, Any] | None  # createdAt/modifiedAt/scopes of a deleted entity
    created: frozenset[str]
    updated: frozenset[str]
    deleted: frozenset[str]
    before: dict[str, list[Instance]]  # instances before the change it updated or deleted
    removed: dict[str, list[Instance]]  # instances the change deleted
    claim: bool = False  # a claim check: the entity must be read from the store


def record_of(entity: dict[str, Any]) -> EntityRecord:
    return EntityRecord(
        id=entity["id"],
        types=list(entity["types"]),
        attrs=entity["attrs"],
        scopes=entity.get("scopes"),
        created_at=entity["createdAt"],
        modified_at=entity["modifiedAt"],
        expires_at=entity.get("expiresAt"),
    )


_NONE: frozenset[str] = frozenset()


def _facts(changes: dict[str, dict[str, Any]]) -> tuple[Any, ...]:
    created: set[str] = set()
    updated: set[str] = set()
    deleted: set[str] = set()
    before: dict[str, list[Instance]] = {}
    removed: dict[str, list[Instance]] = {}
    for iri, change in changes.items():
        old = {i.get("datasetId"): i for i in change.get("previous") or ()}
        new = {i.get("datasetId"): i for i in change.get("new") or ()}
        for ds, inst in new.items():
            if ds not in old:
                created.add(iri)
            elif old[ds] != inst:
                updated.add(iri)
                before.setdefault(iri, []).append(old[ds])
        for ds, inst in old.items():
            if ds not in new:
                deleted.add(iri)
                before.setdefault(iri, []).append(inst)
                removed.setdefault(iri, []).append(inst)
    return frozenset(created), frozenset(updated), frozenset(deleted), before, removed


def change_of(envelope: dict[str, Any]) -> Change | None:
    """The change an entity event describes; None for the topic's other events."""
    kind = str(envelope.get("type", ""))
    if not kind.startswith(EVENT_TYPE_PREFIX):
        return None
    data = envelope["data"]
    entity = data.get("entity")
    if "changes" in data or kind != EVENT_TYPE_PREFIX + "created":
        created, updated, deleted, before, removed = _facts(data.get("changes") or {})
    else:  # a created event has no changes (events 2): every attribute is new
        created, updated, deleted = frozenset((entity or {}).get("attrs") or ()), _NONE, _NONE
        before, removed = {}, {}
    time = envelope["time"]
    return Change(
        event_id=envelope["id"],
        kind=kind.removeprefix(EVENT_TYPE_PREFIX),
        tenant=data["tenant"],
        entity_id=data["entityId"],
        types=list(data["types"]),
        time=time,
        when=datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp(),
        record=record_of(entity) if entity else None,
        system=data.get("previous"),
        created=created,
        updated=updated,
        deleted=deleted,
        before=before,
        removed=removed,
        claim="omitted" in data,
    )


def resolved(change: Change, record: EntityRecord | None) -> Change:
    """A claim check with the entity read from the store: every attribute counts as updated
    (the event left out which ones changed)."""
    change.record = record
    change.claim = False
    if record is not None and change.kind not in GONE:
        names = frozenset(record.attrs)
        if change.kind == "created":
            change.created = names
        else:
            change.updated = names
    return change


def selected(sub: Subscription, change: Change) -> bool:
    """Entity selectors by type and id (idPattern: the selection filter)."""
    if not sub.selectors:
        return True
    types = set(change.types)
    for selector in sub.selectors:
        if selector.ids and change.entity_id not in selector.ids:
            continue
        if any(group <= types for group in selector.types):
            return True
    return False


def reason(sub: Subscription, change: Change) -> str | None:
    """The trigger this change fires for the subscription (its ``triggerReason``), or None."""
    triggers, watched = sub.triggers, sub.watched

    def hit(attrs: frozenset[str]) -> bool:
        return bool(attrs) and (watched is None or not watched.isdisjoint(attrs))

    # A new or deleted entity is no update: only attributeCreated/attributeDeleted asked for
    # by name (or by default) hear of its attributes, not entityUpdated.
    if change.kind == "created":
        if "entityCreated" in triggers:
            return "entityCreated"
        candidates = (
            [("attributeCreated", change.created)] if "attributeCreated" in sub.asked else []
        )
    elif change.kind in GONE:
        if "entityDeleted" in triggers:
            return "entityDeleted"
        candidates = (
            [("attributeDeleted", change.deleted)] if "attributeDeleted" in sub.asked else []
        )
    else:
        candidates = [
            ("attributeUpdated", change.updated),
            ("attributeCreated", change.created),
            ("attributeDeleted", change.deleted),
        ]
    for trigger, attrs in candidates:
        if trigger in triggers and hit(attrs):
            return sub.reported(trigger)
    return None


def notified(sub: Subscription, change: Change, why: str) -> Notified:
    """What the notification shows of the change (render.py)."""
    if change.kind not in GONE:
        return Notified(
            change.entity_id, change.types, change.record, change.before, change.removed
        )
    if why == "entityDeleted":
        # the entity's attributes, as deleted, only when the changes are asked for
        shown = change.before if sub.view.show_changes else {}
    else:
        watched = sub.watched
        shown = {k: v for k, v in change.before.items() if watched is None or k in watched}
    return Notified(
        change.entity_id,
        change.types,
        None,
        shown if sub.view.show_changes else {},
        shown,
        deleted_at=change.time,
        system=change.system,
    )
