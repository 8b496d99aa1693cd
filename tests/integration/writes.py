"""Entity writes built by hand for the store-level tests (EntityRepository, no HTTP).

Each carries a real created-event envelope (``change_event``): the outbox is shared by the whole
test session, and the relay tests republish its retained window, so a bare payload there would
break them.
"""

from __future__ import annotations

from city_os.events.model import change_event
from city_os.ngsild.representation import EntityRecord
from city_os.store.postgres.entities import Write

NOW = "2026-01-01T00:00:00Z"


def created_write(
    tenant: str,
    entity_id: str,
    *,
    expires: str | None = None,
    version: int = 0,
    actor: str | None = None,
) -> Write:
    """A new entity ``entity_id`` of type urn:T with one Property, and its created event."""
    record = EntityRecord(entity_id, ["urn:T"], {"urn:p": [{"type": "Property", "value": 1}]},
                          None, NOW, NOW, expires)  # fmt: skip
    event = change_event(
        kind="created",
        tenant=tenant,
        entity_id=entity_id,
        types=["urn:T"],
        changes={},
        entity={"id": entity_id, "type": "urn:T"},
        time=NOW,
        source="urn:cityos:test",
        actor={"cityosactor": actor} if actor else None,
    )
    return Write(record, event, version)
