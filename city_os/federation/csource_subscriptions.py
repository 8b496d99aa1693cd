"""Context-source registration subscriptions (§5.11): the Subscription machinery, another kind.

Layer: federation/ (service wiring, pure helpers). A csourceSubscription is a Subscription
(§5.2.12) whose entities, watchedAttributes, q, geoQ, csf and scopeQ select registrations
instead of entities, plus ``temporalQ`` (§5.2.21) on their time intervals. It is stored with the
entity subscriptions (core/subscriptions.py, marked ``"csource": true``), so creation, update,
status, expiry, durable deliveries, retries and the delivery status are the notifier's own;
each API sees only its own kind. Notifications are rendered by csource_notify.py from the
registration change events. ``temporalQ`` is checked here; the rendering drops the members
that only entity subscriptions have (``notificationTrigger`` unless asked, ``jsonldContext``).
"""

from __future__ import annotations

from typing import Any

from city_os.errors import BadRequestData
from city_os.federation.model import Doc
from city_os.temporal.params import parse_temporal

_TEMPORAL_MEMBERS = frozenset({"timerel", "timeAt", "endTimeAt", "timeproperty"})


def temporal_member(body: dict[str, Any], update: bool) -> Doc:
    """Pop ``temporalQ`` from a body; return what to store (a fragment may remove it)."""
    if "type" in body and body["type"] is None:
        raise BadRequestData('type: cannot be null (it is "Subscription")')
    if "temporalQ" not in body:
        return {}
    raw = body.pop("temporalQ")
    if raw is None:
        if not update:
            raise BadRequestData("temporalQ: cannot be null")
        return {"temporalQ": None}
    if not isinstance(raw, dict):
        raise BadRequestData("temporalQ: must be a JSON object (a TemporalQuery)")
    unknown = sorted(set(raw) - _TEMPORAL_MEMBERS)
    if unknown:
        raise BadRequestData(f"temporalQ: unknown member {', '.join(unknown)}")
    try:
        parse_temporal(raw, require_timerel=True)
    except BadRequestData as exc:
        raise BadRequestData(f"temporalQ: {exc.detail}") from None
    return {"temporalQ": {k: raw[k] for k in sorted(raw) if raw[k] is not None}}


def adjust_rendering(doc: Doc, rendered: Doc) -> Doc:
    """A rendered Subscription as a csourceSubscription shows it."""
    out = dict(rendered)
    if "notificationTrigger" not in doc:
        out.pop("notificationTrigger", None)
    out.pop("jsonldContext", None)
    notification = out.get("notification")
    if isinstance(notification, dict) and notification.get("timesFailed") == 0:
        out["notification"] = {k: v for k, v in notification.items() if k != "timesFailed"}
    if "temporalQ" in doc:
        out["temporalQ"] = doc["temporalQ"]
    return out
