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

EVENT_VERSION = "1"
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
    ``actor``: the extension attributes naming who made the change (``cityosactor``,
    ``cityosclient``; ``Principal.actor``)."""
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
        **(actor or {}),
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
        "omitted": ["changes", "entity"],
    }
    return out
