"""CSourceNotifications (§5.3.2, §5.11.7): registration changes told to csourceSubscriptions.

Layer: federation/ (used by the notifier, notifier/intake.py and periodic.py). A
csourceSubscription (csource_subscriptions.py) is a compiled notifier Subscription; this module
decides which registrations it selects (``selects``: its entities, watchedAttributes, q, geoQ,
csf, scopeQ and temporalQ on the registration, through registrations_query.py — the evaluator
of the discovery query) and renders the notifications:

* a registration change event (federation/events.py) with the registration before and after:
  ``newlyMatching`` (selected now, not before), ``updated`` (both), ``noLongerMatching``
  (before only; a deleted registration);
* the creation or an update of a csourceSubscription: one ``newlyMatching`` notification of
  every registration it selects then (none when nothing matches);
* a period of a subscription with ``timeInterval``: every registration it selects.

``data`` holds the registrations compacted with the subscription's terms, each with only the
RegistrationInfo items that match the subscription (§5.11.7). Notification ids are derived from
the event (or period) and the subscription, so a redelivery keeps its id, as for entities.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from city_os.core.subscriptions import CSOURCE
from city_os.errors import NgsiLdError
from city_os.federation.events import REGISTRATION_EVENT_PREFIX
from city_os.federation.model import Doc, Registration
from city_os.federation.registrations_query import RegistrationFilter, TimeFilter
from city_os.federation.registrations_render import render_registration
from city_os.ngsild.entity import now_iso, parse_datetime
from city_os.ngsild.query.entity_selection import Selection
from city_os.ngsild.query.q import parse_q
from city_os.ngsild.subscription import expression
from city_os.ngsild.subscription_selection import selection_of
from city_os.notifier.compile import Subscription
from city_os.notifier.render import CONTEXT_REL, notification_id
from city_os.store.postgres.csource import RegistrationRepository
from city_os.store.postgres.db import Tenants
from city_os.store.postgres.notifications import NewNotification
from city_os.temporal.params import parse_temporal

log = logging.getLogger(__name__)


def is_csource(sub: Subscription) -> bool:
    return bool(sub.doc.get(CSOURCE))


def _filters(sub: Subscription) -> list[RegistrationFilter]:
    """One RegistrationFilter per EntitySelector of the subscription (OR-ed)."""
    doc = sub.doc
    sel = selection_of(doc)
    rest = None
    if sel.q is not None or sel.geo is not None or sel.scope is not None:
        rest = Selection(q=sel.q, geo=sel.geo, scope=sel.scope)
    csf = Selection(q=parse_q(expression(doc["csf"]))) if "csf" in doc else None
    time = None
    if "temporalQ" in doc:
        t = parse_temporal(doc["temporalQ"], require_timerel=True)
        assert t.timerel is not None and t.time_at is not None
        time = TimeFilter(t.timerel, t.time_at, t.end_time_at, t.timeproperty)
    attrs = doc.get("watchedAttributes", ())
    selectors: list[dict[str, Any]] = doc.get("entities") or [{}]
    out = []
    for s in selectors:
        types = {t for group in s["type"] for t in group} if "type" in s else None
        out.append(
            RegistrationFilter.build(
                sub.names,
                ids=[s["id"]] if "id" in s else (),
                id_pattern=s.get("idPattern") if "id" not in s else None,
                types=types,
                attrs=attrs,
                selection=rest,
                csf=csf,
                time=time,
            )
        )
    return out


def selects(sub: Subscription, reg: Registration | None, now: datetime) -> bool:
    return reg is not None and any(f.matches(reg, now) for f in _filters(sub))


def relevant(sub: Subscription, reg: Registration, now: datetime) -> Doc:
    """The stored document of ``reg`` keeping only the RegistrationInfo items that match."""
    doc = reg.to_doc()
    kept = []
    for info, raw in zip(reg.information, doc["information"], strict=True):
        single = replace(reg, information=(info,))
        if any(f.matches(single, now) for f in _filters(sub)):
            kept.append(raw)
    doc["information"] = kept or doc["information"]
    return doc


def _notification(
    sub: Subscription, docs: list[Doc], why: str | None, source: str
) -> NewNotification:
    view = sub.view
    data: list[Doc] = [render_registration(d, view.terms) for d in docs]
    headers = {"Content-Type": view.accept}
    if view.accept == "application/ld+json":
        data = [{**d, "@context": view.context_url} for d in data]
    else:
        headers["Link"] = f'<{view.context_url}>; rel="{CONTEXT_REL}"; type="application/ld+json"'
        if view.accept == "application/geo+json":
            headers["Content-Type"] = "application/json"
    if view.tenant:
        headers["NGSILD-Tenant"] = view.tenant
    for key, value in view.receiver_info:
        headers[key] = value
    nid = notification_id(sub.tenant, sub.id, source)
    body: Doc = {
        "id": nid,
        "type": "ContextSourceNotification",
        "subscriptionId": sub.id,
        "notifiedAt": now_iso(),
        "data": data,
    }
    if why is not None:
        body["triggerReason"] = why
    return NewNotification(
        notification_id=nid,
        tenant=sub.tenant,
        subscription_id=sub.id,
        source_id=source,
        entity_id=docs[0]["id"] if len(docs) == 1 else "",
        endpoint=sub.endpoint.uri,
        headers=headers,
        body=orjson.dumps(body),
        event_time=None,
    )


def _registration(doc: Any) -> Registration | None:
    if not isinstance(doc, dict):
        return None
    try:
        return Registration.from_doc(doc)
    except (KeyError, TypeError, ValueError):
        return None


class CSourceNotifier:
    """The notifier's part for csourceSubscriptions (see the module docstring)."""

    def __init__(self, repo: RegistrationRepository, tenants: Tenants) -> None:
        self._repo = repo
        self._tenants = tenants

    def changed(
        self, envelope: dict[str, Any], subscriptions: list[Subscription]
    ) -> list[NewNotification]:
        """The notifications of one registration change event to the tenant's live
        csourceSubscriptions (``subscriptions``: the candidates of its tenant)."""
        data = envelope.get("data")
        if not str(envelope.get("type", "")).startswith(REGISTRATION_EVENT_PREFIX):
            return []
        if not isinstance(data, dict):
            return []
        after, before = _registration(data.get("registration")), _registration(data.get("previous"))
        when = parse_datetime(envelope["time"]).timestamp() if "time" in envelope else None
        now = datetime.now(UTC)
        out = []
        for sub in subscriptions:
            if not is_csource(sub) or not sub.live(now.timestamp()) or sub.periodic:
                continue
            if when is not None and when < sub.created:
                continue
            try:
                was, now_in = selects(sub, before, now), selects(sub, after, now)
            except NgsiLdError as exc:
                log.warning("csourceSubscription %s cannot be evaluated: %s", sub.id, exc.detail)
                continue
            if now_in and after is not None:
                why = "updated" if was else "newlyMatching"
                docs = [relevant(sub, after, now)]
            elif was and before is not None:
                why, docs = "noLongerMatching", [relevant(sub, before, now)]
            else:
                continue
            out.append(_notification(sub, docs, why, str(envelope["id"])))
        return out

    async def _selected(self, sub: Subscription) -> list[Doc]:
        try:
            schema = await self._tenants.schema(sub.tenant, create=False)
            rows = await self._repo.all(schema)
        except (NgsiLdError, asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
            return []  # the tenant (or its schema) is gone: nothing to tell
        now = datetime.now(UTC)
        regs = [Registration.from_doc(r.doc) for r in rows]
        return [relevant(sub, r, now) for r in regs if selects(sub, r, now)]

    async def subscribed(self, sub: Subscription, source: str) -> list[NewNotification]:
        """The notification of a new or updated csourceSubscription: what it selects now
        (none if nothing matches)."""
        if not is_csource(sub) or sub.periodic or not sub.live(datetime.now(UTC).timestamp()):
            return []
        docs = await self._selected(sub)
        return [_notification(sub, docs, "newlyMatching", source)] if docs else []

    async def periodic(self, sub: Subscription, source: str) -> list[NewNotification]:
        """One period of a csourceSubscription with ``timeInterval``."""
        docs = await self._selected(sub)
        return [_notification(sub, docs, None, source)] if docs else []
