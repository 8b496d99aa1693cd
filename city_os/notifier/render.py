"""Notifications as sent (§5.3.1, §5.8.6): the Notification data type in the subscription's terms.

Layer: notifier/ (pure). The notified entity is the state after the change, in the
subscription's ``format``, ``attributes``/``pick``/``omit`` projection, ``lang``, ``sysAttrs``
and ``datasetId`` selection, compacted with the subscription's @context (its ``jsonldContext``
when it has one). Deleted attributes appear with the NGSI-LD Null (``urn:ngsi-ld:null``,
``{"@none": …}`` for a languageMap) when the subscription listens for ``attributeDeleted``; a
deleted entity is its id, type and ``deletedAt`` (and, with ``showChanges``, every attribute
with its previous value). ``showChanges`` adds ``previousValue``/``previousObject``/… to the
instances the change updated or deleted. ``application/ld+json`` puts the @context in every
entity; ``application/json`` sends it in a Link header; ``application/geo+json`` sends a
FeatureCollection. The result is channel-neutral: headers and a body.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final

import orjson

from city_os.ngsild.entity import NULL_URI, VALUE_KEY, Attrs, Instance, now_iso
from city_os.ngsild.jsonld import TermMap
from city_os.ngsild.linked import Join, render_flat, render_inline
from city_os.ngsild.representation import (
    EntityRecord,
    RenderOptions,
    render,
    render_instance,
    to_feature,
)

CONTEXT_REL: Final = "http://www.w3.org/ns/json-ld#context"
NOTIFICATION_PREFIX: Final = "urn:ngsi-ld:Notification:"
_PREVIOUS: Final = {
    "value": "previousValue",
    "object": "previousObject",
    "languageMap": "previousLanguageMap",
    "vocab": "previousVocab",
    "json": "previousJson",
    "valueList": "previousValueList",
    "objectList": "previousObjectList",
}


@dataclass(frozen=True)
class View:
    """How a subscription's notifications look (compiled once per subscription)."""

    terms: TermMap
    opts: RenderOptions
    accept: str = "application/json"
    show_changes: bool = False
    datasets: frozenset[str] | None = None  # "@none": the default instance
    join: Join | None = None
    context_url: str = ""  # jsonldContext
    deleted_as_null: bool = False  # the subscription listens for attributeDeleted
    tenant: str = ""
    receiver_info: tuple[tuple[str, str], ...] = ()
    # Another API face renders the notification (the NGSIv2 API): its renderer and its part of
    # the subscription document (``core.subscriptions.FACE``).
    face: Face | None = None
    face_doc: Any = None


# (view, subscription id, notification id, notified records, trigger)
#   -> (notification id, headers, body)
Face = Callable[[View, str, str, list[EntityRecord], str | None], tuple[str, dict[str, str], bytes]]


@dataclass(frozen=True)
class Notified:
    """What a notification is about: the entity after the change (None once deleted), its
    instances before the change that it updated or deleted, and the removed attributes."""

    entity_id: str
    types: list[str]
    record: EntityRecord | None
    previous: dict[str, list[Instance]]  # attribute IRI → instances before the change
    removed: dict[str, list[Instance]]  # attribute IRI → instances the change deleted
    deleted_at: str | None = None  # the entity was deleted
    system: dict[str, Any] | None = None  # createdAt/modifiedAt/scopes of a deleted entity


def null_instance(previous: Instance, deleted_at: str, sys_attrs: bool) -> Instance:
    """A deleted attribute instance as a notification shows it (§5.2.1: NGSI-LD Null)."""
    kind = previous.get("type", "Property")
    key = VALUE_KEY.get(kind, "value")
    value: Any = NULL_URI
    if key == "languageMap":
        value = {"@none": NULL_URI}
    elif key in ("valueList", "objectList"):
        value = [NULL_URI]
    out: Instance = {"type": kind, key: value}
    if "datasetId" in previous:
        out["datasetId"] = previous["datasetId"]
    if sys_attrs:
        for member in ("createdAt", "modifiedAt"):
            if member in previous:
                out[member] = previous[member]
        out["deletedAt"] = deleted_at
    return out


def _in_datasets(inst: Instance, datasets: frozenset[str] | None) -> bool:
    return datasets is None or inst.get("datasetId", "@none") in datasets


def notified_record(view: View, notified: Notified, now: str) -> EntityRecord:
    """The entity to render: the state after, dataset-filtered, with deleted instances as
    NGSI-LD Null where the subscription shows them."""
    attrs: Attrs = {}
    base = notified.record
    if base is not None:
        for iri, instances in base.attrs.items():
            kept = [i for i in instances if _in_datasets(i, view.datasets)]
            if kept:
                attrs[iri] = kept
    removed = notified.removed if (view.deleted_as_null or view.show_changes) else {}
    deleted_at = notified.deleted_at or now
    for iri, instances in removed.items():
        kept = [i for i in instances if _in_datasets(i, view.datasets)]
        if kept and (base is None or iri not in base.attrs):
            # The whole attribute is gone: one Null stands for it (the default instance's).
            first = min(kept, key=lambda i: "datasetId" in i)
            kept = [{k: v for k, v in first.items() if k != "datasetId"}]
        nulls = [null_instance(i, deleted_at, view.opts.sys_attrs) for i in kept]
        if nulls:
            attrs[iri] = [*attrs.get(iri, []), *nulls]
    if base is not None:
        return replace(base, attrs=attrs)
    system = notified.system or {}
    return EntityRecord(
        id=notified.entity_id,
        types=notified.types,
        attrs=attrs,
        scopes=system.get("scopes"),
        created_at=system.get("createdAt") or deleted_at,
        modified_at=system.get("modifiedAt") or deleted_at,
    )


def _previous_value(inst: Instance, view: View) -> tuple[str, Any]:
    """(previousX member, rendered value) of an instance before the change."""
    key = VALUE_KEY.get(inst.get("type", "Property"), "value")
    normalized = replace(view.opts, format="normalized", sys_attrs=False)
    rendered = render_instance(inst, view.terms, normalized)
    return _PREVIOUS[key], rendered.get(key) if isinstance(rendered, dict) else None


def _with_previous(body: dict[str, Any], notified: Notified, view: View) -> None:
    """Add previousValue & co. to the rendered instances the change updated or deleted."""
    for iri, before in notified.previous.items():
        name = view.terms.compact_attr(iri)
        current = body.get(name)
        if current is None:
            continue
        by_dataset = {i.get("datasetId"): _previous_value(i, view) for i in before}
        items = current if isinstance(current, list) else [current]
        out = []
        for item in items:
            if not isinstance(item, dict):
                item = {"value": item}  # concise: a bare value
            found = by_dataset.get(item.get("datasetId"))
            if found is not None and found[1] is not None:
                item = {**item, found[0]: found[1]}
            out.append(item)
        body[name] = out if isinstance(current, list) else out[0]


def entities(
    view: View, notified: Notified, linked: dict[str, EntityRecord] | None, now: str
) -> list[dict[str, Any]]:
    """The ``data`` of an entity notification: the notified entity (and, with ``join``, the
    entities it links to, inline or after it)."""
    record = notified_record(view, notified, now)
    opts = view.opts
    if view.join is None or linked is None or notified.record is None:
        bodies = [render(record, view.terms, opts)]
    elif view.join.mode == "flat":
        bodies = render_flat([record], linked, view.terms, opts, view.join.level)
    else:
        bodies = [render_inline(record, linked, view.terms, opts, view.join.level)]
    main = bodies[0]
    if view.show_changes:
        _with_previous(main, notified, view)
    if opts.sys_attrs and opts.format == "keyValues":
        # the simplified entity of the query API leaves them out; notifications show them
        main["createdAt"], main["modifiedAt"] = record.created_at, record.modified_at
    if notified.deleted_at is not None:
        if opts.sys_attrs:
            main["createdAt"], main["modifiedAt"] = record.created_at, record.modified_at
        main["deletedAt"] = notified.deleted_at
    return bodies


def notification_id(tenant: str, subscription_id: str, source_id: str) -> str:
    """The id of the notification of one change (or period) to one subscription: the same
    whichever replica renders it and however often the change is consumed, so a receiver
    de-duplicates a redelivery on it. (``uuid.uuid5(NAMESPACE_URL, key)``, computed without
    the UUID object: it runs once per notification.)"""
    key = f"{tenant}\n{subscription_id}\n{source_id}"
    digest = bytearray(hashlib.sha1(_NAMESPACE + key.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{NOTIFICATION_PREFIX}{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_NAMESPACE: Final = uuid.NAMESPACE_URL.bytes


def notification(
    view: View,
    subscription_id: str,
    data: list[dict[str, Any]],
    records: list[EntityRecord],
    trigger: str | None,
    source_id: str,
    now: str | None = None,
) -> tuple[str, dict[str, str], bytes]:
    """(notification id, headers, body) of one notification of ``source_id`` (the change
    event's id, or the period's); ``now``: its notifiedAt (default: now)."""
    nid = notification_id(view.tenant, subscription_id, source_id)
    if view.face is not None:
        return view.face(view, subscription_id, nid, records, trigger)
    headers = {"Content-Type": view.accept}
    payload: Any = data
    if view.accept == "application/ld+json":
        payload = [{**entity, "@context": view.context_url} for entity in data]
    else:
        headers["Link"] = f'<{view.context_url}>; rel="{CONTEXT_REL}"; type="application/ld+json"'
        if view.accept == "application/geo+json":
            geometry = view.opts.geometry_property or "location"
            by_id = {r.id: r for r in records}
            features = [
                to_feature(by_id[e["id"]], e, geometry, view.terms)
                for e in data
                if e.get("id") in by_id
            ]
            payload = {"type": "FeatureCollection", "features": features}
    if view.tenant:
        headers["NGSILD-Tenant"] = view.tenant
    for key, value in view.receiver_info:
        headers[key] = value
    body: dict[str, Any] = {
        "id": nid,
        "type": "Notification",
        "subscriptionId": subscription_id,
        "notifiedAt": now or now_iso(),
        "data": payload,
    }
    if trigger is not None:
        body["triggerReason"] = trigger
    return nid, headers, orjson.dumps(body)
