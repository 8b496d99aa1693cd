"""Parsing of temporal entities (§5.2.37) for provision: instances per attribute (several per
datasetId allowed), NGSI-LD Null instances as deletions, and the split between the newest
instances (the entity's current state) and the others (history only).

Layer: temporal/ (pure, no I/O).
"""

from __future__ import annotations

from typing import Any

from city_os.core.request import RequestContext
from city_os.errors import BadRequestData, ResourceNotFound
from city_os.ngsild.attributes import is_null_encoding, parse_instance
from city_os.ngsild.entity import (
    ENTITY_MEMBERS,
    OUTPUT_ONLY_MEMBERS,
    RESERVED_ATTRIBUTE_NAMES,
    VALUE_KEY,
    check_datetime,
    check_entity_id,
    expand_attr_name,
    is_uri,
    parse_scopes,
    parse_types,
)
from city_os.temporal.params import SCOPE_IRI as SCOPE_IRI
from city_os.temporal.render import INSTANCE_PREFIX


def parse_temporal_entity(
    body: object, ctx: RequestContext, *, id_required: bool = True
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """A temporal entity (§5.2.37): entity members and, per attribute IRI, its instances (an
    instance or an array of instances, several per datasetId allowed)."""
    if not isinstance(body, dict):
        raise BadRequestData("a temporal entity must be a JSON object")
    head: dict[str, Any] = {"id": None, "types": [], "scopes": None, "scope_instances": []}
    if id_required:
        head["id"] = check_entity_id(body.get("id", body.get("@id")))
        raw_type = body.get("type", body.get("@type"))
        if raw_type is None:
            raise BadRequestData("entity type is missing")
        head["types"] = parse_types(ctx.terms, raw_type, ctx.limits)
    if "scope" in body:
        head["scopes"], head["scope_instances"] = parse_scope_member(body["scope"])
    attrs: dict[str, list[dict[str, Any]]] = {}
    for name, raw in body.items():
        if name in ENTITY_MEMBERS or name == "expiresAt":
            continue
        if name in RESERVED_ATTRIBUTE_NAMES or name in OUTPUT_ONLY_MEMBERS:
            raise BadRequestData(f"{name!r} is a reserved NGSI-LD member, not an attribute name")
        iri = expand_attr_name(ctx.terms, name)
        attrs[iri] = [_parse_instance(name, x, ctx) for x in _items(raw)]
    if "expiresAt" in body:  # 5.5.4: no NGSI-LD Null as a first-level member here
        check_datetime(body["expiresAt"], "expiresAt")
    return head, attrs


DELETED = "__deleted__"  # marks a parsed instance that records a deletion (§4.5.7)


def parse_scope_member(raw: Any) -> tuple[list[str] | None, list[dict[str, Any]]]:
    """The scope of a temporal entity: plain scopes (a string or an array of them), or its
    temporal representation (§4.5.6: Property instances whose value is a scope or an array of
    scopes, each with an optional observedAt). Returns the current scopes (the newest
    instance's, by observedAt, else the last given) and the instances (empty for plain)."""
    items = raw if isinstance(raw, list) else [raw]
    if not items or not all(isinstance(x, dict) for x in items):
        return parse_scopes(raw), []
    instances: list[dict[str, Any]] = []
    for item in items:
        if item.get("type", "Property") != "Property" or "value" not in item:
            raise BadRequestData("a scope instance must be a Property with a value")
        inst: dict[str, Any] = {"type": "Property", "value": parse_scopes(item["value"])}
        if "observedAt" in item:
            inst["observedAt"] = check_datetime(item["observedAt"], "observedAt")
        instances.append(inst)
    newest = max(range(len(instances)), key=lambda i: (instances[i].get("observedAt") or "", i))
    return instances[newest]["value"], instances


def _parse_instance(name: str, raw: Any, ctx: RequestContext) -> dict[str, Any]:
    """One instance; one whose value is the NGSI-LD Null is a deletion in the history
    (the deleted-instance representation of §4.5.7 is legal temporal input, ETSI 5611_01)."""
    if isinstance(raw, dict):
        kind = raw.get("type", "Property")
        member = VALUE_KEY.get(kind, "value") if isinstance(kind, str) else "value"
        if member in raw and is_null_encoding(kind, raw[member]):
            inst: dict[str, Any] = {"type": kind, member: raw[member], DELETED: True}
            for key in ("datasetId", "observedAt"):
                if key in raw:
                    inst[key] = check_datetime(raw[key], key) if key == "observedAt" else raw[key]
            return inst
    return parse_instance(name, raw, ctx.terms, ctx.now)


def _items(raw: Any) -> list[Any]:
    """An attribute of a temporal entity: one instance or an array of instances."""
    if isinstance(raw, list) and raw and all(isinstance(x, dict) for x in raw):
        return raw
    return [raw]


def split_latest(
    body: dict[str, Any], attrs: dict[str, list[dict[str, Any]]], ctx: RequestContext
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The newest instance of each attribute and datasetId (by observedAt, else the last one
    given) as an entity fragment in the request's own terms, and the other instances (parsed):
    the fragment goes through the entity API (current state, events, captured history), the
    others straight into the history."""
    fragment: dict[str, Any] = {}
    rest: dict[str, list[dict[str, Any]]] = {}
    for name, raw in body.items():
        if name in ENTITY_MEMBERS or name == "expiresAt":
            if name in ("id", "@id", "type", "@type"):
                fragment[name] = raw
            elif name == "scope":  # the current scopes (of the newest scope instance)
                fragment[name] = parse_scope_member(raw)[0] or []
            continue
        iri = expand_attr_name(ctx.terms, name)
        parsed = attrs[iri]
        newest: dict[str, int] = {}
        for i, inst in enumerate(parsed):
            if inst.get(DELETED):
                continue  # a deletion is history only
            ds = inst.get("datasetId") or ""
            j = newest.get(ds)
            if j is None or (inst.get("observedAt") or "~") >= (parsed[j].get("observedAt") or ""):
                newest[ds] = i
        raws = _items(raw)
        keep = sorted(newest.values())
        if keep:
            fragment[name] = raws[keep[0]] if len(keep) == 1 else [raws[k] for k in keep]
        others = [inst for i, inst in enumerate(parsed) if i not in newest.values()]
        if others:
            rest[iri] = others
    return fragment, rest


def instance_row(entity_id: str, attr: str, inst: dict[str, Any], now: str) -> dict[str, Any]:
    skip = ("createdAt", "modifiedAt", "observedAt", DELETED)
    stored = {k: v for k, v in inst.items() if k not in skip}
    return {
        "entity_id": entity_id,
        "attr": attr,
        "dataset_id": inst.get("datasetId") or "",
        "observed_at": inst.get("observedAt"),
        "created_at": now,
        "modified_at": now,
        "deleted_at": now if inst.get(DELETED) else None,
        "inst": stored,
    }


def instance_uuid(raw: str) -> str:
    """The uuid of an instanceId: 400 when it is not a URI, 404 when no instance can have it."""
    if not is_uri(raw):
        raise BadRequestData(f"instanceId {raw!r} is not a URI")
    value = raw.removeprefix(INSTANCE_PREFIX)
    if (
        len(value) != 36
        or value.count("-") != 4
        or not all(c in "0123456789abcdefABCDEF-" for c in value)
    ):
        raise ResourceNotFound(f"attribute instance {raw} not found")
    return value
