"""Registration change events: the outbox rows of /csourceRegistrations changes.

Layer: federation/ (pure). One CloudEvents 1.0 envelope per change of a context source
registration (schemas/events/registration-change.schema.json), written in the change's
transaction and published like entity and subscription changes, keyed
``<tenant>/<registrationId>``. Replicas' registration indexes refresh from the NOTIFY of the
same transaction; the notifier's context-source subscriptions are matched on these events.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Final, Literal

from city_os.events.model import EVENT_VERSION

REGISTRATION_EVENT_PREFIX: Final = "jp.city-os.registration."
RegistrationChange = Literal["created", "updated", "deleted"]


def registration_event(
    *,
    kind: RegistrationChange,
    tenant: str,
    registration_id: str,
    registration: dict[str, Any] | None,
    previous: dict[str, Any] | None,
    time: str,
    source: str,
    actor: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An outbox row. ``registration`` is the stored document after the change (None after a
    delete), ``previous`` the one before (None after a create)."""
    event_id = str(uuid.uuid4())
    event_type = REGISTRATION_EVENT_PREFIX + kind
    envelope = {
        "specversion": "1.0",
        "id": event_id,
        "type": event_type,
        "source": source,
        "subject": registration_id,
        "time": time,
        "datacontenttype": "application/json",
        "cityosversion": EVENT_VERSION,
        **(actor or {}),
        "data": {
            "tenant": tenant,
            "registrationId": registration_id,
            "registration": registration,
            "previous": previous,
        },
    }
    return {
        "event_id": event_id,
        "tenant": tenant,
        "entity_id": registration_id,
        "event_type": event_type,
        "payload": envelope,
    }
