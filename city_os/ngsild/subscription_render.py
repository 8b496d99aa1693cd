"""A stored Subscription as the API shows it (§5.2.12, §5.8.3): names compacted, status added.

Layer: ngsild/ (pure). Entity types, watched and notified attributes and the geoproperty are
compacted with the @context of the request that reads them; every other member is shown as the
client gave it. The read-only members are added: ``status``, the default ``notificationTrigger``,
``jsonldContext`` (the @context notifications carry) and, once a notification was attempted,
the delivery status of ``notification`` (``status`` ok/failed, ``timesSent``, ``timesFailed``,
``lastNotification``, ``lastSuccess``, ``lastFailure``; ``lastFailureReason`` is city-os's
own). ``createdAt``/``modifiedAt`` only with ``sysAttrs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from city_os.ngsild.query.type_selection import type_text
from city_os.ngsild.representation import TermCompactor
from city_os.ngsild.subscription import Doc, Status, triggers


@dataclass(frozen=True)
class DeliveryStatus:
    """What the notifier recorded about a subscription's notifications."""

    times_sent: int = 0
    times_failed: int = 0
    last_notification: str | None = None
    last_success: str | None = None
    last_failure: str | None = None
    last_failure_reason: str | None = None
    failing: bool = False


# Members in the order of Table 5.2.12-1 (PostgreSQL's jsonb keeps its own order).
_ORDER = (
    "subscriptionName", "description", "entities", "watchedAttributes", "notificationTrigger",
    "timeInterval", "q", "geoQ", "csf", "scopeQ", "lang", "datasetId", "isActive", "expiresAt",
    "throttling", "splitEntities", "localOnly",
)  # fmt: skip
_NOTIFICATION_ORDER = (
    "attributes", "sysAttrs", "format", "showChanges", "pick", "omit", "join", "joinLevel",
    "endpoint",
)  # fmt: skip
_ENDPOINT_ORDER = ("uri", "accept", "timeout", "cooldown", "receiverInfo", "notifierInfo")


def _ordered(value: Doc, order: tuple[str, ...]) -> Doc:
    return {k: value[k] for k in order if k in value}


def _selector(selector: dict[str, Any], tm: TermCompactor) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "id" in selector:
        out["id"] = selector["id"]
    if "idPattern" in selector:
        out["idPattern"] = selector["idPattern"]
    out["type"] = type_text(selector["type"], tm.compact_type)
    return out


def _notification(doc: Doc, tm: TermCompactor, delivery: DeliveryStatus | None) -> Doc:
    notification = _ordered(doc["notification"], _NOTIFICATION_ORDER)
    notification["endpoint"] = _ordered(notification["endpoint"], _ENDPOINT_ORDER)
    if "attributes" in notification:
        notification["attributes"] = [tm.compact_attr(a) for a in notification["attributes"]]
    if delivery is not None and delivery.last_notification is not None:
        notification["status"] = "failed" if delivery.failing else "ok"
        notification["timesSent"] = delivery.times_sent
        notification["timesFailed"] = delivery.times_failed
        notification["lastNotification"] = delivery.last_notification
        for key, value in (
            ("lastSuccess", delivery.last_success),
            ("lastFailure", delivery.last_failure),
            ("lastFailureReason", delivery.last_failure_reason),
        ):
            if value is not None:
                notification[key] = value
    return notification


def render_subscription(
    doc: Doc,
    tm: TermCompactor,
    *,
    status: Status,
    jsonld_context: str,
    delivery: DeliveryStatus | None = None,
    system: tuple[str, str] | None = None,
) -> Doc:
    """The Subscription of ``doc`` in the terms of ``tm``; ``system``: (createdAt, modifiedAt)
    when sysAttrs were asked for."""
    out: Doc = {"id": doc["id"], "type": "Subscription"}
    members = {**doc, "notificationTrigger": triggers(doc)}
    for name, value in _ordered(members, _ORDER).items():
        if name == "entities":
            value = [_selector(s, tm) for s in value]
        elif name == "watchedAttributes":
            value = [tm.compact_attr(a) for a in value]
        elif name == "geoQ" and "geoproperty" in value:
            value = {**value, "geoproperty": tm.compact_attr(value["geoproperty"])}
        out[name] = value
    out["notification"] = _notification(doc, tm, delivery)
    out["jsonldContext"] = jsonld_context
    out["status"] = status
    if system is not None:
        out["createdAt"], out["modifiedAt"] = system
    return out
