"""The change-event contract: one CloudEvents 1.0 (structured JSON) event per entity change.

Layer: events/ (pure). Built by core/ for every write path and stored in the outbox in the same
transaction as the data; the relay publishes it unchanged. ``data`` carries expanded IRIs, so a
consumer needs no @context to interpret it. Schema: schemas/events/entity-change.schema.json.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

EVENT_VERSION = "1"
EVENT_TYPE_PREFIX = "jp.city-os.entity."
ChangeKind = Literal["created", "updated", "replaced", "deleted", "expired", "purged"]


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
) -> dict[str, Any]:
    """An outbox row: ``event_id``, ``event_type``, ``entity_id``, ``tenant`` and the envelope."""
    event_id = str(uuid.uuid4())
    event_type = EVENT_TYPE_PREFIX + kind
    envelope = {
        "specversion": "1.0",
        "id": event_id,
        "type": event_type,
        "source": source,
        "subject": entity_id,
        "time": time,
        "datacontenttype": "application/json",
        "cityosversion": EVENT_VERSION,
        "data": {
            "tenant": tenant,
            "entityId": entity_id,
            "types": types,
            "changes": changes,
            "entity": entity,
        },
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
