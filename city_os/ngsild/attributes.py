"""Pure NGSI-LD input parsing of a whole entity and its attributes: request JSON → the broker's
internal (expanded) entity form.

Layer: ngsild/ (no I/O). Accepts the normalized and the concise representations (§4.5), checks
every shape the information model defines (Property, Relationship, GeoProperty, LanguageProperty,
VocabProperty, JsonProperty, ListProperty, ListRelationship; datasetId multi-attributes;
sub-attributes) and expands names with a cached term map. Anything malformed raises
``BadRequestData`` naming the attribute, so a write is refused whole before it reaches the store.
The member names, field checks and types it builds on are in ``ngsild.entity``; the stored form
is described in docs/storage.md.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from city_os.errors import BadRequestData, InvalidRequest
from city_os.ngsild.entity import (
    ATTRIBUTE_MEMBERS,
    ATTRIBUTE_TYPES,
    ENTITY_MEMBERS,
    GEO_ATTRIBUTE_NAMES,
    NULL_URI,
    OUTPUT_ONLY_MEMBERS,
    PROOF_ATTRIBUTE,
    RESERVED_ATTRIBUTE_NAMES,
    SYSTEM_MEMBERS,
    UNIT_CODE_TYPES,
    VALUE_KEY,
    Attrs,
    Instance,
    ParsedEntity,
    TermExpander,
    check_datetime,
    check_entity_id,
    expand_attr_name,
    expand_type_name,
    parse_scopes,
    parse_types,
)
from city_os.ngsild.geometry import GEO_TYPES, check_geometry, without_null_members
from city_os.ngsild.limits import DEFAULT_LIMITS, Limits, check_count

_KEY_TO_TYPE = {
    "object": "Relationship",
    "languageMap": "LanguageProperty",
    "vocab": "VocabProperty",
    "json": "JsonProperty",
    "valueList": "ListProperty",
    "objectList": "ListRelationship",
}
_LANG = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$|^@none$")


def parse_entity(
    body: object,
    tm: TermExpander,
    now: str,
    *,
    id_required: bool = True,
    limits: Limits = DEFAULT_LIMITS,
) -> ParsedEntity:
    """Parse a whole entity (create, replace, batch, upsert)."""
    if not isinstance(body, dict):
        raise InvalidRequest("an entity must be a JSON object")
    check_members(body, limits)
    raw_id = body.get("id", body.get("@id"))
    if raw_id is None and not id_required:
        entity_id = ""
    else:
        entity_id = check_entity_id(raw_id)
    raw_type = body.get("type", body.get("@type"))
    if raw_type is None:
        if id_required:
            raise BadRequestData("entity type is missing")
        types: list[str] = []
    else:
        types = parse_types(tm, raw_type, limits)
    entity = ParsedEntity(entity_id, types)
    if "scope" in body:
        entity.scopes = parse_scopes(body["scope"])
    entity.attrs = parse_attributes(body, tm, now, skip=ENTITY_MEMBERS)
    expires = body.get("expiresAt")
    if expires is not None:
        entity.expires_at = check_datetime(expires, "expiresAt")
        entity.attrs.pop(tm.expand_attr("expiresAt") or "", None)
    return entity


def check_members(body: dict[str, Any], limits: Limits) -> None:
    """Refuse more attributes than allowed before parsing any (each costs ~10 µs)."""
    if len(body) > limits.attributes + len(ENTITY_MEMBERS) + 1:
        check_count(limits, "attributes", len(body) - len(ENTITY_MEMBERS & body.keys()),
                    "attributes of the entity")  # fmt: skip


def parse_attributes(
    body: dict[str, Any],
    tm: TermExpander,
    now: str,
    *,
    skip: frozenset[str] = ENTITY_MEMBERS,
    allow_null: bool = False,
) -> Attrs:
    """Parse the attributes of a fragment. ``allow_null`` (merge-patch) keeps null markers."""
    attrs: Attrs = {}
    for name, raw in body.items():
        if name in skip or name == "expiresAt":
            continue
        if name in RESERVED_ATTRIBUTE_NAMES or name in OUTPUT_ONLY_MEMBERS:
            raise BadRequestData(f"{name!r} is a reserved NGSI-LD member, not an attribute name")
        iri = expand_attr_name(tm, name)
        attrs[iri] = parse_attribute(name, raw, tm, now, allow_null=allow_null)
    return attrs


def parse_attribute(
    name: str, raw: object, tm: TermExpander, now: str, *, allow_null: bool = False
) -> list[Instance]:
    """One attribute: a single instance or an array of instances (multi-attribute)."""
    if isinstance(raw, list) and raw and all(_looks_like_instance(x) for x in raw):
        instances = [parse_instance(name, x, tm, now, allow_null=allow_null) for x in raw]
        seen: set[str | None] = set()
        for inst in instances:
            ds = inst.get("datasetId")
            if ds in seen:
                raise BadRequestData(
                    f"attribute {name!r} has two instances with datasetId {ds or 'default'}"
                )
            seen.add(ds)
        return instances
    return [parse_instance(name, raw, tm, now, allow_null=allow_null)]


def _looks_like_instance(value: object) -> bool:
    return isinstance(value, dict) and (
        value.get("type") in ATTRIBUTE_TYPES or any(k in value for k in VALUE_KEY.values())
    )


def parse_instance(
    name: str,
    raw: object,
    tm: TermExpander,
    now: str,
    *,
    allow_null: bool = False,
    sub: bool = False,
) -> Instance:
    """One attribute instance, normalized or concise, into the stored form."""
    if raw is None or raw == NULL_URI:
        if allow_null:
            return {"type": "Property", "value": None}
        raise BadRequestData(f"attribute {name!r} must not be null")
    if not isinstance(raw, dict):
        # Concise form: a bare value is a Property.
        return {"type": "Property", "value": raw, "createdAt": now, "modifiedAt": now}
    kind = raw.get("type")
    if kind is None:
        kind = _infer_type(name, raw)
        if kind == "Property" and "value" not in raw:
            return {"type": "Property", "value": raw, "createdAt": now, "modifiedAt": now}
    elif kind not in ATTRIBUTE_TYPES:
        if kind in GEO_TYPES and "coordinates" in raw:
            return {
                "type": "GeoProperty",
                "value": check_geometry(name, without_null_members(raw)),
                "createdAt": now,
                "modifiedAt": now,
            }
        raise BadRequestData(f"attribute {name!r} has an unknown type {kind!r}")
    if name in GEO_ATTRIBUTE_NAMES and kind != "GeoProperty" and not sub:
        raise BadRequestData(f"attribute {name!r} must be a GeoProperty")
    if (
        name == PROOF_ATTRIBUTE
        and not sub
        and (kind != "Property" or not isinstance(raw.get("value"), dict))
    ):
        raise BadRequestData(f"{name!r} must be a Property whose value is a proof object")
    value_key = VALUE_KEY[kind]
    if value_key not in raw:
        raise BadRequestData(f"attribute {name!r} of type {kind} needs a {value_key!r} member")
    inst: Instance = {"type": kind}
    value = raw[value_key]
    if kind == "GeoProperty" and isinstance(value, dict):
        value = without_null_members(value)  # "bbox": null is an absent bbox (RFC 7946 §5)
    if value is None:
        raise BadRequestData(
            f'attribute {name!r}: {value_key} is JSON null (use "{NULL_URI}" to delete)'
        )
    if is_null_encoding(kind, value):
        if not allow_null:
            raise BadRequestData(f"attribute {name!r}: {value_key} must not be null")
        inst[value_key] = None
    else:
        if not allow_null and kind == "GeoProperty" and isinstance(value, dict):
            # check_geometry admits numbers only in coordinates: scan the other members.
            reject_nulls(name, {k: v for k, v in value.items() if k != "coordinates"})
        elif not allow_null and kind != "JsonProperty":
            reject_nulls(name, value)
        inst[value_key] = _check_value(name, kind, value, tm)
    for key, member in raw.items():
        if key in ("type", value_key) or key in SYSTEM_MEMBERS:
            continue
        if key in ("entityIdSealed", "entityTypeSealed") and name == PROOF_ATTRIBUTE and not sub:
            if not isinstance(member, str) or not member:
                raise BadRequestData(f"{key} of {name!r} must be a non-empty string")
            inst[key] = member
            continue
        if key in OUTPUT_ONLY_MEMBERS:
            raise BadRequestData(f"attribute {name!r}: {key!r} is output-only")
        if key == "datasetId":
            if sub:
                raise BadRequestData(f"sub-attribute {name!r} cannot have a datasetId")
            if member != "@none":
                inst["datasetId"] = check_entity_id(member, f"datasetId of {name!r}")
        elif key == "observedAt":
            check_datetime(member, f"observedAt of {name!r}")
            if not str(member).endswith("Z"):
                raise BadRequestData(f"observedAt of {name!r} must be in UTC (end with 'Z')")
            inst["observedAt"] = member
        elif key == "unitCode":
            if kind not in UNIT_CODE_TYPES:
                raise BadRequestData(f"attribute {name!r} of type {kind} cannot have a unitCode")
            if not isinstance(member, str) or not member:
                raise BadRequestData(f"unitCode of {name!r} must be a non-empty string")
            inst["unitCode"] = member
        elif key == "expiresAt":
            inst["expiresAt"] = check_datetime(member, f"expiresAt of {name!r}")
        elif key == "valueType":
            if not isinstance(member, str) or not member:
                raise BadRequestData(f"valueType of {name!r} must be a non-empty string")
            if kind == "LanguageProperty" and member != "langString":
                raise BadRequestData(f"valueType of LanguageProperty {name!r} must be langString")
            inst["valueType"] = member
        elif key == "objectType":
            if kind not in ("Relationship", "ListRelationship"):
                raise BadRequestData(f"objectType is only allowed on relationships ({name!r})")
            types = member if isinstance(member, list) else [member]
            inst["objectType"] = [expand_type_name(tm, t) for t in types]
        elif key == "lang":
            if not isinstance(member, str):
                raise BadRequestData(f"lang of {name!r} must be a string")
            inst["lang"] = member
        elif key in ATTRIBUTE_MEMBERS:
            if key == "@context":
                raise BadRequestData(f"attribute {name!r} cannot carry its own @context")
            raise BadRequestData(f"attribute {name!r} of type {kind} cannot have {key!r}")
        else:
            sub_iri = expand_attr_name(tm, key)
            inst[sub_iri] = parse_instance(key, member, tm, now, allow_null=allow_null, sub=True)
    inst["createdAt"] = now
    inst["modifiedAt"] = now
    return inst


def is_null_encoding(kind: str, value: Any) -> bool:
    """The NGSI-LD Null of each attribute type (§4.5.x): used by merge-patch to delete."""
    if value == NULL_URI:
        return True
    if kind == "LanguageProperty":
        return isinstance(value, dict) and value == {"@none": NULL_URI}
    if kind in ("ListProperty", "ListRelationship"):
        return (
            isinstance(value, list)
            and len(value) == 1
            and value[0]
            in (
                NULL_URI,
                {"object": NULL_URI},
            )
        )
    if kind == "JsonProperty":
        return isinstance(value, dict) and value.get("@value", 0) is None
    return False


def reject_nulls(name: str, value: Any) -> None:
    """JSON null (or the null URI) anywhere inside a value is only meaningful in merge-patch.

    Iterative, and each container is scanned at C level (``in``, ``map(type, …)``): a large
    value (an 80,000-position geometry) costs no Python loop over its scalars.
    """
    if value is None or value == NULL_URI:
        raise BadRequestData(f"attribute {name!r} contains a null inside its value")
    stack = [value] if type(value) in _CONTAINERS else []
    while stack:
        item = stack.pop()
        children = item.values() if type(item) is dict else item
        if None in children or NULL_URI in children:
            raise BadRequestData(f"attribute {name!r} contains a null inside its value")
        if not _CONTAINERS.isdisjoint(set(map(type, children))):
            stack.extend(c for c in children if type(c) in _CONTAINERS)


_CONTAINERS = frozenset({dict, list})


def _infer_type(name: str, raw: dict[str, Any]) -> str:
    for key, kind in _KEY_TO_TYPE.items():
        if key in raw:
            return kind
    if "value" in raw:
        value = raw["value"]
        if name in GEO_ATTRIBUTE_NAMES or (
            isinstance(value, dict) and value.get("type") in GEO_TYPES and "coordinates" in value
        ):
            return "GeoProperty"
    if raw.get("type") in GEO_TYPES:
        return "GeoProperty"
    return "Property"


def _check_value(name: str, kind: str, value: Any, tm: TermExpander) -> Any:
    if kind == "Property":
        if isinstance(value, dict) and "@value" in value:
            at_type = value.get("@type")
            if at_type in ("DateTime", "https://uri.etsi.org/ngsi-ld/DateTime"):
                check_datetime(value["@value"], f"value of {name!r}")
        return value
    if kind == "GeoProperty":
        if isinstance(value, str):
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                raise BadRequestData(f"GeoProperty {name!r}: the string is not GeoJSON") from exc
        return check_geometry(name, value)
    if kind == "JsonProperty" and not isinstance(value, dict | list):
        raise BadRequestData(f"json of {name!r} must be a JSON object or array")
    if kind == "Relationship":
        objs = value if isinstance(value, list) else [value]
        if not objs:
            raise BadRequestData(f"relationship {name!r} needs an object")
        for obj in objs:
            target = obj.get("object") if isinstance(obj, dict) else obj
            check_entity_id(target, f"object of relationship {name!r}")
        return value
    if kind == "LanguageProperty":
        if not isinstance(value, dict) or not value:
            raise BadRequestData(f"languageMap of {name!r} must be a non-empty object")
        for lang, text in value.items():
            if not _LANG.match(lang):
                raise BadRequestData(f"languageMap of {name!r}: {lang!r} is not a language tag")
            texts = text if isinstance(text, list) else [text]
            if not texts or not all(isinstance(t, str) for t in texts):
                raise BadRequestData(
                    f"languageMap of {name!r}: {lang!r} must map to a string or strings"
                )
        return value
    if kind == "VocabProperty":
        values = value if isinstance(value, list) else [value]
        for v in values:
            if not isinstance(v, str) or not v:
                raise BadRequestData(f"vocab of {name!r} must be a string or list of strings")
        expanded = [tm.expand_vocab_value(v) for v in values]
        return expanded if isinstance(value, list) else expanded[0]
    if kind == "JsonProperty":
        return value
    if kind == "ListProperty":
        if not isinstance(value, list):
            raise BadRequestData(f"valueList of {name!r} must be an array")
        return value
    # ListRelationship
    if not isinstance(value, list):
        raise BadRequestData(f"objectList of {name!r} must be an array")
    out = []
    for obj in value:
        target = obj.get("object") if isinstance(obj, dict) else obj
        out.append(check_entity_id(target, f"objectList item of {name!r}"))
    return out
