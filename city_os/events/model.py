"""The change-event contract: one CloudEvents 1.0 (structured JSON) event per entity change.

Layer: events/ (pure). Built by core/ for every write path and stored in the outbox in the same
transaction as the data; the relay publishes it unchanged. ``data`` carries expanded IRIs, so a
consumer needs no @context to interpret it. Schema: schemas/events/entity-change.schema.json.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote

EVENT_VERSION = "1"  # of subscription and registration change events
# Of entity change events. 2: a created event has no ``data.changes`` (it repeated the whole
# entity, doubling what every create wrote to the outbox, WAL and Kafka): every attribute of
# ``data.entity`` is new. ``consume.ChangeEvent`` gives consumers the same ``changes`` either way.
ENTITY_EVENT_VERSION = "2"
EVENT_TYPE_PREFIX = "jp.city-os.entity."
ChangeKind = Literal["created", "updated", "replaced", "deleted", "expired", "purged"]
# Kinds after which the entity is gone: a claim check of theirs has no dataref.
_GONE = frozenset({"deleted", "expired", "purged"})


def change_event(
    *,
    kind: ChangeKind,
    tenant: str,
    entity_id: str,
    types: list[str],
    changes: dict[str, dict[str, Any]],
    entity: dict[str, Any] | None,
    time: str,
    source: str,
    actor: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An outbox row: ``event_id``, ``event_type``, ``entity_id``, ``tenant`` and the envelope.

    ``entity`` is the entity after the change; for a change that removed it (deleted, expired,
    purged) the caller passes the entity before, and only its system members are kept, as
    ``data.previous`` (a notification of a deleted entity shows them), ``data.entity`` is null.
    ``actor``: the extension attributes naming who made the change (``cityosactor``,
    ``cityosclient``; ``Principal.actor``). A created event carries no ``changes`` (every
    attribute of ``entity`` is new; ``created_changes`` derives them).
    """
    event_id = str(uuid.uuid4())
    event_type = EVENT_TYPE_PREFIX + kind
    data: dict[str, Any] = {"tenant": tenant, "entityId": entity_id, "types": types}
    if kind != "created":
        data["changes"] = changes
    data["entity"] = entity
    if kind in _GONE and entity is not None:
        data["previous"] = {k: entity.get(k) for k in ("createdAt", "modifiedAt", "scopes")}
        data["entity"] = None
    envelope = {
        "specversion": "1.0",
        "id": event_id,
        "type": event_type,
        "source": source,
        "subject": entity_id,
        "time": time,
        "datacontenttype": "application/json",
        "cityosversion": ENTITY_EVENT_VERSION,
        **(actor or {}),
        "data": data,
    }
    return {
        "event_id": event_id,
        "tenant": tenant,
        "entity_id": entity_id,
        "event_type": event_type,
        "payload": envelope,
    }


def attribute_changes(
    before: dict[str, list[dict[str, Any]]] | None,
    after: dict[str, list[dict[str, Any]]] | None,
    names: list[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Previous and new instances of each attribute that differs (or of ``names`` only)."""
    before = before or {}
    after = after or {}
    keys = names if names is not None else list(dict.fromkeys([*before, *after]))
    out: dict[str, dict[str, Any]] = {}
    for key in keys:
        old, new = before.get(key), after.get(key)
        if old != new:
            out[key] = {"previous": old, "new": new}
    return out


def created_changes(entity: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The ``changes`` a created event leaves out: every attribute of the new entity."""
    attrs = entity.get("attrs") if entity else None
    return {iri: {"previous": None, "new": new} for iri, new in (attrs or {}).items()}


def event_changes(data: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """``data.changes`` of an entity event of ``kind``, derived for a created one."""
    changes = data.get("changes")
    if changes is None and kind == "created" and "omitted" not in data:
        return created_changes(data.get("entity"))
    return changes or {}


def claim_check(envelope: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The event without its bulky data, for a change too large to publish whole.

    Same id, type, subject and time; ``data`` keeps tenant, entityId and types and lists what
    it left out in ``omitted``; ``dataref`` (the CloudEvents extension for data kept elsewhere)
    is the entity's URL in the NGSI-LD API, to be read with the ``NGSILD-Tenant`` header: it
    gives the entity as it is now, which is what ``entity`` would have said or newer. A change
    that removed the entity has no dataref. Without this, one oversized event would stop the
    relay, and with it every later event, until someone deleted it by hand.
    """
    data = envelope["data"]
    out = {key: value for key, value in envelope.items() if key != "data"}
    kind = envelope["type"].removeprefix(EVENT_TYPE_PREFIX)
    if kind not in _GONE:
        out["dataref"] = (
            f"{base_url.rstrip('/')}/ngsi-ld/v1/entities/{quote(data['entityId'], safe='')}"
        )
    out["data"] = {
        "tenant": data["tenant"],
        "entityId": data["entityId"],
        "types": data["types"],
        "omitted": [key for key in ("changes", "entity") if key in data],
    }
    return out


SUBSCRIPTION_EVENT_PREFIX = "jp.city-os.subscription."
SubscriptionChange = Literal["created", "updated", "deleted"]


def subscription_event(
    *,
    kind: SubscriptionChange,
    tenant: str,
    subscription_id: str,
    subscription: dict[str, Any] | None,
    time: str,
    source: str,
    actor: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An outbox row for a subscription change (schemas/events/subscription-change.schema.json).

    ``subscription`` is the stored document (names expanded, as in entity events), None after a
    delete. Published on the same topic as entity changes, keyed ``<tenant>/<subscriptionId>``.
    """
    event_id = str(uuid.uuid4())
    event_type = SUBSCRIPTION_EVENT_PREFIX + kind
    envelope = {
        "specversion": "1.0",
        "id": event_id,
        "type": event_type,
        "source": source,
        "subject": subscription_id,
        "time": time,
        "datacontenttype": "application/json",
        "cityosversion": EVENT_VERSION,
        **(actor or {}),
        "data": {"tenant": tenant, "subscriptionId": subscription_id, "subscription": subscription},
    }
    return {
        "event_id": event_id,
        "tenant": tenant,
        "entity_id": subscription_id,
        "event_type": event_type,
        "payload": envelope,
    }
