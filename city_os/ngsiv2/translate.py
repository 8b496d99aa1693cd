"""v2 entities and attributes <-> NGSI-LD entities (pure, no I/O).

Layer: ngsiv2/. The rules (docs/ngsiv2.md, "One store, two faces"):

- ``geo:json`` <-> GeoProperty; ``geo:point`` ("lat, lon") is stored as a GeoJSON Point.
- ``Relationship`` (and an untyped string attribute named ``refX``) <-> Relationship; its
  object goes through the id mapping of ``ids``.
- ``DateTime`` (and ``ISO8601``) <-> a Property whose value is ``{"@type": "DateTime",
  "@value": …}``.
- Anything else is a Property. The v2 type a value implies (Number, Text, Boolean,
  StructuredValue) is not stored; another v2 type is kept in the sub-property ``V2_TYPE``.
- Metadata are sub-properties; ``TimeInstant`` <-> ``observedAt`` and ``unitCode`` <-> the
  NGSI-LD ``unitCode`` member.
- A multi-attribute (datasetId instances) shows its default instance through v2.

Writes produce the NGSI-LD normalized form with terms, so the core parses, validates and stores
them exactly like NGSI-LD writes; reads take stored records (IRIs) and compact them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from city_os.errors import BadRequestData
from city_os.ngsild.entity import (
    ATTRIBUTE_MEMBERS,
    ENTITY_MEMBERS,
    RESERVED_ATTRIBUTE_NAMES,
    Instance,
)
from city_os.ngsild.representation import EntityRecord, TermCompactor
from city_os.ngsiv2.ids import FORBIDDEN, check_v2_name, ld_id, v2_id

V2_TYPE = "https://city-os.jp/ns/ngsiv2#attrType"
DATETIME_TYPES = frozenset({"DateTime", "ISO8601"})
BUILTIN_ATTRS = frozenset({"dateCreated", "dateModified", "dateExpires"})
BUILTIN_METADATA = frozenset({"dateCreated", "dateModified", "previousValue", "actionType"})
_LD_DATETIME = frozenset({"DateTime", "https://uri.etsi.org/ngsi-ld/DateTime"})
_REF = re.compile(r"^ref[A-Z0-9]")
_ATTR_KEYS = frozenset({"type", "value", "metadata"})
_NOT_ATTRIBUTE = ENTITY_MEMBERS | RESERVED_ATTRIBUTE_NAMES | {"expiresAt"}
_POINT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$")

Format = Literal["normalized", "keyValues", "values", "unique"]


def implied_type(value: Any) -> str:
    """The v2 type Orion gives a value sent without one."""
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int | float):
        return "Number"
    if isinstance(value, str):
        return "Text"
    if value is None:
        return "None"
    return "StructuredValue"


def check_value_chars(name: str, value: Any) -> None:
    """v2 forbids < > " ' = ; ( ) in string values (unless the type is TextUnrestricted)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if FORBIDDEN.search(item):
                raise BadRequestData(f"Invalid characters in attribute value of {name!r}")
        elif isinstance(item, dict):
            stack.extend(item.values())
            stack.extend(item.keys())
        elif isinstance(item, list):
            stack.extend(item)


# ------------------------------------------------------------------ v2 -> NGSI-LD (writes)


def utc_datetime(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadRequestData(f"{what} must be an ISO 8601 date-time string")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestData(f"{what}: {value!r} is not an ISO 8601 date-time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        utc = when.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-10:00 is year 10000 in UTC
        raise BadRequestData(
            f"{what}: {value!r} is beyond year 9999 or before year 1 in UTC"
        ) from None
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ld_value(name: str, kind: str, value: Any, typed: bool) -> dict[str, Any]:
    """The NGSI-LD form of one v2 (attribute or metadata) value of type ``kind``."""
    if value is None:
        # NGSI-LD has no null Property value: "" with the v2 type note "None" stands for it.
        return {"type": "Property", "value": "", V2_TYPE: _type_note("None")}
    if kind == "Relationship" or (
        not typed and isinstance(value, str) and _REF.match(name) is not None
    ):
        targets = value if isinstance(value, list) else [value]
        if not targets or not all(isinstance(t, str) and t for t in targets):
            raise BadRequestData(f"Relationship {name!r} needs an entity id (or a list of ids)")
        objs = [ld_id(check_v2_name(t, f"object of {name!r}")) for t in targets]
        return {"type": "Relationship", "object": objs if isinstance(value, list) else objs[0]}
    if kind == "geo:json":
        if not isinstance(value, dict):
            raise BadRequestData(f"geo:json attribute {name!r} needs a GeoJSON geometry")
        return {"type": "GeoProperty", "value": value}
    if kind == "geo:point":
        m = _POINT.match(value) if isinstance(value, str) else None
        if m is None:
            raise BadRequestData(f"geo:point attribute {name!r} must be 'latitude, longitude'")
        point = {"type": "Point", "coordinates": [float(m.group(2)), float(m.group(1))]}
        return {"type": "GeoProperty", "value": point, V2_TYPE: _type_note(kind)}
    if kind in DATETIME_TYPES:
        stamp = utc_datetime(value, f"{kind} attribute {name!r}")
        out = {"type": "Property", "value": {"@type": "DateTime", "@value": stamp}}
        if kind != "DateTime":
            out[V2_TYPE] = _type_note(kind)
        return out
    out = {"type": "Property", "value": value}
    if kind != implied_type(value):
        out[V2_TYPE] = _type_note(kind)
    return out


def _type_note(kind: str) -> dict[str, Any]:
    return {"type": "Property", "value": kind}


def attr_to_ld(name: str, raw: Any, *, key_values: bool = False) -> dict[str, Any]:
    """One v2 attribute (``{"type", "value", "metadata"}``, or a bare value with keyValues)."""
    check_v2_name(name, "attribute name")
    if name in _NOT_ATTRIBUTE or name in BUILTIN_ATTRS:
        raise BadRequestData(f"attribute name {name!r} is reserved")
    if key_values:
        raw = {"value": raw}
    elif not isinstance(raw, dict):
        raise BadRequestData(f"attribute {name!r} must be a JSON object (or use keyValues)")
    unknown = set(raw) - _ATTR_KEYS
    if unknown:
        raise BadRequestData(f"attribute {name!r}: unexpected {', '.join(sorted(unknown))}")
    value = raw.get("value")
    kind = raw.get("type")
    typed = kind is not None
    if kind is None:
        kind = implied_type(value)
    kind = check_v2_name(kind, f"type of attribute {name!r}")
    if value is None and typed and kind != "None":
        kind = "None"  # Orion: a null value has type None whatever the type sent
    if kind != "TextUnrestricted":
        check_value_chars(name, value)
    inst = _ld_value(name, kind, value, typed)
    metadata = raw.get("metadata", {})
    if not isinstance(metadata, dict):
        raise BadRequestData(f"metadata of attribute {name!r} must be a JSON object")
    for meta, item in metadata.items():
        _add_metadata(inst, name, meta, item)
    return inst


def _add_metadata(inst: dict[str, Any], attr: str, meta: str, raw: Any) -> None:
    check_v2_name(meta, f"metadata name of {attr!r}")
    if meta in BUILTIN_METADATA:
        return  # built-in metadata are the broker's; Orion ignores them in requests
    if not isinstance(raw, dict) or not set(raw) <= {"type", "value"}:
        raise BadRequestData(f"metadata {meta!r} of {attr!r} must be an object with type/value")
    value = raw.get("value")
    kind = raw.get("type") or implied_type(value)
    if meta == "TimeInstant":
        inst["observedAt"] = utc_datetime(value, f"TimeInstant of {attr!r}")
    elif meta == "unitCode" and isinstance(value, str) and inst["type"] != "Relationship":
        inst["unitCode"] = value
    elif meta in ATTRIBUTE_MEMBERS or meta in _NOT_ATTRIBUTE:
        raise BadRequestData(f"metadata name {meta!r} of {attr!r} is reserved")
    else:
        check_value_chars(meta, value)
        inst[meta] = _ld_value(meta, check_v2_name(kind, f"type of {meta!r}"), value, True)


def entity_to_ld(body: Any, *, key_values: bool = False) -> dict[str, Any]:
    """A v2 entity (``id``, ``type`` and attributes) as an NGSI-LD entity with terms."""
    if not isinstance(body, dict):
        raise BadRequestData("the entity must be a JSON object")
    if "id" not in body:
        raise BadRequestData("entity id is missing")
    entity_id = check_v2_name(body["id"], "entity id")
    kind = check_v2_name(body.get("type", "Thing"), "entity type")  # Orion's default type
    out: dict[str, Any] = {"id": ld_id(entity_id), "type": kind}
    out.update(attrs_to_ld(body, key_values=key_values))
    return out


def attrs_to_ld(body: Any, *, key_values: bool = False) -> dict[str, Any]:
    """The attributes of a v2 payload (``id`` and ``type`` skipped)."""
    if not isinstance(body, dict):
        raise BadRequestData("the payload must be a JSON object")
    return {
        name: attr_to_ld(name, raw, key_values=key_values)
        for name, raw in body.items()
        if name not in ("id", "type")
    }


# ------------------------------------------------------------------ NGSI-LD -> v2 (reads)


@dataclass(frozen=True)
class Output:
    """What a v2 read shows: attribute and metadata filters (v2 names) and the format."""

    attrs: tuple[str, ...] | None = None  # None: every attribute; may hold "*" and built-ins
    metadata: tuple[str, ...] | None = None  # None: every user metadata
    format: Format = "normalized"


def _default(instances: list[Instance]) -> Instance:
    for inst in instances:
        if "datasetId" not in inst:
            return inst
    return instances[0]


def _value_and_type(inst: Instance, tm: TermCompactor) -> tuple[Any, str]:
    kind = inst.get("type")
    note = inst.get(V2_TYPE)
    noted = note.get("value") if isinstance(note, dict) else None
    if kind == "Relationship":
        obj = inst.get("object")
        value: Any = [v2_id(o) for o in obj] if isinstance(obj, list) else v2_id(str(obj))
        return value, noted or "Relationship"
    if kind == "ListRelationship":
        return [v2_id(str(o)) for o in inst.get("objectList", [])], "Relationship"
    if kind == "GeoProperty":
        value = inst.get("value")
        if noted == "geo:point" and isinstance(value, dict) and value.get("type") == "Point":
            lon, lat = value["coordinates"][:2]
            return f"{lat}, {lon}", "geo:point"
        return value, "geo:json"
    if kind == "LanguageProperty":
        return inst.get("languageMap"), "LanguageProperty"
    if kind == "VocabProperty":
        vocab = inst.get("vocab")
        if isinstance(vocab, list):
            return [tm.compact_vocab_value(v) for v in vocab], "VocabProperty"
        return tm.compact_vocab_value(str(vocab)), "VocabProperty"
    if kind == "JsonProperty":
        return inst.get("json"), noted or "StructuredValue"
    if kind == "ListProperty":
        return inst.get("valueList"), noted or "StructuredValue"
    value = inst.get("value")
    if noted == "None":
        return None, "None"
    if isinstance(value, dict) and value.get("@type") in _LD_DATETIME and "@value" in value:
        return value["@value"], noted or "DateTime"
    return value, noted or implied_type(value)


def _metadata(inst: Instance, tm: TermCompactor, wanted: tuple[str, ...] | None) -> dict[str, Any]:
    every = wanted is None or "*" in wanted
    out: dict[str, Any] = {}

    def keep(name: str) -> bool:
        return every or name in (wanted or ())

    if "observedAt" in inst and keep("TimeInstant"):
        out["TimeInstant"] = {"type": "DateTime", "value": inst["observedAt"]}
    if "unitCode" in inst and keep("unitCode"):
        out["unitCode"] = {"type": "Text", "value": inst["unitCode"]}
    for key, sub in inst.items():
        if key in ATTRIBUTE_MEMBERS or key == V2_TYPE or not isinstance(sub, dict):
            continue
        name = tm.compact_attr(key)
        if keep(name):
            value, kind = _value_and_type(sub, tm)
            out[name] = {"type": kind, "value": value}
    if wanted:
        for name, member in (("dateCreated", "createdAt"), ("dateModified", "modifiedAt")):
            if name in wanted and member in inst:
                out[name] = {"type": "DateTime", "value": inst[member]}
    return out


def attr_to_v2(
    instances: list[Instance], tm: TermCompactor, metadata: tuple[str, ...] | None = None
) -> dict[str, Any]:
    inst = _default(instances)
    value, kind = _value_and_type(inst, tm)
    return {"type": kind, "value": value, "metadata": _metadata(inst, tm, metadata)}


def attr_value(instances: list[Instance], tm: TermCompactor) -> Any:
    return _value_and_type(_default(instances), tm)[0]


def v2_attrs(record: EntityRecord, tm: TermCompactor, out: Output) -> dict[str, Any]:
    """The attributes of an entity in v2 normalized form, filtered by ``out.attrs``."""
    wanted = out.attrs
    every = wanted is None or "*" in wanted
    attrs: dict[str, Any] = {}
    for iri, instances in record.attrs.items():
        if not instances:
            continue
        name = tm.compact_attr(iri)
        if every or name in (wanted or ()):
            attrs[name] = attr_to_v2(instances, tm, out.metadata)
    builtin = {"dateCreated": record.created_at, "dateModified": record.modified_at}
    if record.expires_at:
        builtin["dateExpires"] = record.expires_at
    for name, stamp in builtin.items():
        if wanted and name in wanted:
            attrs[name] = {"type": "DateTime", "value": stamp, "metadata": {}}
    if wanted and "*" not in wanted:
        attrs = {n: attrs[n] for n in wanted if n in attrs}  # in the order asked for
    return attrs


def entity_to_v2(record: EntityRecord, tm: TermCompactor, out: Output) -> Any:
    """One entity as v2 shows it: normalized, keyValues, or the values array."""
    attrs = v2_attrs(record, tm, out)
    if out.format in ("values", "unique"):
        return [a["value"] for a in attrs.values()]
    head = {"id": v2_id(record.id), "type": tm.compact_type(record.types[0])}
    if out.format == "keyValues":
        return {**head, **{n: a["value"] for n, a in attrs.items()}}
    return {**head, **attrs}


def attrs_body(record: EntityRecord, tm: TermCompactor, out: Output) -> Any:
    """``/v2/entities/{id}/attrs``: the entity without id and type."""
    attrs = v2_attrs(record, tm, out)
    if out.format in ("values", "unique"):
        return [a["value"] for a in attrs.values()]
    if out.format == "keyValues":
        return {n: a["value"] for n, a in attrs.items()}
    return attrs


def unique_rows(rows: list[Any]) -> list[Any]:
    """``options=unique``: the values arrays without repetitions, in first-seen order."""
    seen: list[Any] = []
    for row in rows:
        if row not in seen:
            seen.append(row)
    return seen


def with_kept_metadata(
    record: EntityRecord, tm: TermCompactor, body: Any, *, key_values: bool = False
) -> dict[str, Any]:
    """The attributes of an update (``attrs_to_ld``), each keeping the metadata its stored
    attribute has and the request does not name (Orion's default; ``overrideMetadata`` or a
    replace drops them)."""
    attrs = attrs_to_ld(body, key_values=key_values)
    stored = {tm.compact_attr(iri): inst for iri, inst in record.attrs.items() if inst}
    for name in attrs:
        if name not in stored:
            continue
        old = attr_to_v2(stored[name], tm)["metadata"]
        raw = {"value": body[name]} if key_values else dict(body[name])
        kept = {m: v for m, v in old.items() if m not in BUILTIN_METADATA}
        if kept:
            raw["metadata"] = {**kept, **(raw.get("metadata") or {})}
            attrs[name] = attr_to_ld(name, raw)
    return attrs
