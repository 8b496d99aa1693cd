"""CSourceRegistration payloads (§5.2.9, §5.9.2, §5.9.3): every member checked, names expanded.

Layer: federation/ (pure, no I/O). A create body or an update fragment becomes the stored
document of ``model.Registration.to_doc`` (a fragment: only its members, null kept as None to
remove one), each member checked on its own with a 400 BadRequestData naming it. Members that
the data type does not define are context-source properties (§5.2.9 "CSourcePropertyName"):
their names are expanded like attribute names and their values kept as given. The rules
between members are ``check_rules`` (§4.3.6.3 exclusive registrations name entity ids and
attributes; §5.9.2.4 auxiliary ones serve no write operation). Read-only members (status and
system times) sent by a client are ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from city_os.errors import BadRequestData
from city_os.federation.model import (
    GROUPS,
    MODES,
    OPERATIONS,
    WRITE_OPERATIONS,
    Doc,
    Registration,
)
from city_os.ngsild.entity import (
    TermExpander,
    check_datetime,
    check_entity_id,
    check_name,
    expand_attr_name,
    expand_type_name,
    parse_datetime,
    parse_scopes,
)
from city_os.ngsild.geometry import check_geometry
from city_os.ngsild.members import fail as _fail
from city_os.ngsild.members import object_member as _object
from city_os.ngsild.members import positive_member as _positive
from city_os.ngsild.members import text_member as _string
from city_os.ngsild.query.q import check_text
from city_os.ngsild.query.regex import check_pattern
from city_os.store.postgres.db import check_tenant
from city_os.temporal.params import parse_duration

TYPE: Final = "ContextSourceRegistration"
MEMBERS: Final = frozenset(
    {
        "id", "type", "registrationName", "description", "information", "tenant",
        "observationInterval", "managementInterval", "location", "observationSpace",
        "operationSpace", "expiresAt", "endpoint", "contextSourceInfo", "scope", "mode",
        "operations", "refreshRate", "management",
    }
)  # fmt: skip
READ_ONLY: Final = frozenset(
    {"status", "timesSent", "timesFailed", "lastSuccess", "lastFailure", "createdAt",
     "modifiedAt", "deletedAt"}
)  # fmt: skip
MANDATORY: Final = frozenset({"id", "type", "information", "endpoint"})
SCHEMES: Final = frozenset({"http", "https"})


def _names(value: Any, member: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _fail(member, "must be a non-empty array of names")
    return [_string(v, member, limit=256) for v in value]


def _uri(value: Any, member: str) -> str:
    try:
        return check_entity_id(value, member)
    except BadRequestData:
        raise _fail(member, f"{value!r} is not an absolute URI") from None


def _expanded(terms: TermExpander, names: list[str], member: str, *, types: bool) -> list[str]:
    try:
        if types:
            return [expand_type_name(terms, n) for n in names]
        return [expand_attr_name(terms, n) for n in names]
    except BadRequestData as exc:
        raise _fail(member, exc.detail) from None


def _entity_info(value: Any, terms: TermExpander) -> Doc:
    member = "information.entities"
    item = _object(value, member, frozenset({"id", "idPattern", "type"}))
    if "type" not in item:
        raise _fail(member, "every EntityInfo needs a type")
    out: Doc = {}
    if "id" in item:
        out["id"] = _uri(item["id"], member + ".id")
    if "idPattern" in item:
        if "id" in item:
            raise _fail(member, "id and idPattern cannot be used together")
        pattern = _string(item["idPattern"], member + ".idPattern", limit=1024)
        try:
            check_pattern(pattern, member + ".idPattern")
        except BadRequestData as exc:
            raise _fail(member + ".idPattern", exc.detail) from None
        out["idPattern"] = pattern
    out["type"] = list(
        dict.fromkeys(_expanded(terms, _names(item["type"], member + ".type"), member, types=True))
    )
    return out


def _information(value: Any, terms: TermExpander) -> list[Doc]:
    if not isinstance(value, list) or not value:
        raise _fail("information", "must be a non-empty array of RegistrationInfo objects")
    out = []
    allowed = frozenset({"entities", "propertyNames", "relationshipNames"})
    for raw in value:
        info = _object(raw, "information", allowed)
        if not info:
            raise _fail("information", "a RegistrationInfo needs entities or attribute names")
        doc: Doc = {}
        if "entities" in info:
            entities = info["entities"]
            if not isinstance(entities, list) or not entities:
                raise _fail("information.entities", "must be a non-empty array of EntityInfo")
            doc["entities"] = [_entity_info(e, terms) for e in entities]
        for member in ("propertyNames", "relationshipNames"):
            if member in info:
                names = _names(info[member], "information." + member)
                expanded = _expanded(terms, names, "information." + member, types=False)
                doc[member] = list(dict.fromkeys(expanded))
        out.append(doc)
    return out


def _interval(value: Any, member: str) -> Doc:
    raw = _object(value, member, frozenset({"startAt", "endAt"}))
    if "startAt" not in raw:
        raise _fail(member, "startAt is mandatory")
    out = {"startAt": check_datetime(raw["startAt"], member + ".startAt")}
    if raw.get("endAt") is not None:
        out["endAt"] = check_datetime(raw["endAt"], member + ".endAt")
        if parse_datetime(out["endAt"]) < parse_datetime(out["startAt"]):
            raise _fail(member, "endAt is before startAt")
    return out


def _endpoint(value: Any) -> str:
    uri = _uri(value, "endpoint")
    parts = urlsplit(uri)
    if parts.scheme.lower() not in SCHEMES:
        raise _fail("endpoint", f"{uri!r} is not an http or https URL")
    if not parts.hostname:
        raise _fail("endpoint", f"{uri!r} names no host")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in uri):
        raise _fail("endpoint", f"{uri!r} contains spaces or control characters")
    return uri


def _key_values(value: Any) -> list[Doc]:
    member = "contextSourceInfo"
    if not isinstance(value, list) or not value:
        raise _fail(member, "must be a non-empty array of {key, value} objects")
    out = []
    for pair in value:
        pair = _object(pair, member, frozenset({"key", "value"}))
        if not isinstance(pair.get("key"), str) or not pair["key"]:
            raise _fail(member, "every pair needs a non-empty string key")
        if not isinstance(pair.get("value"), str):
            raise _fail(member, f"the value of {pair['key']!r} must be a string")
        out.append(
            {"key": check_text(pair["key"], member), "value": check_text(pair["value"], member)}
        )
    return out


def _duration(value: Any, member: str) -> str:
    if not isinstance(value, str):
        raise _fail(member, "must be an ISO 8601 duration such as PT5M")
    try:
        parse_duration(value, member)
    except BadRequestData as exc:
        raise _fail(member, exc.detail.removeprefix(member + " ")) from None
    return value


def _management(value: Any) -> Doc:
    allowed = frozenset({"localOnly", "cacheDuration", "timeout", "cooldown"})
    raw = _object(value, "management", allowed)
    out: Doc = {}
    if "localOnly" in raw:
        if not isinstance(raw["localOnly"], bool):
            raise _fail("management.localOnly", "must be true or false")
        out["localOnly"] = raw["localOnly"]
    if "cacheDuration" in raw:
        out["cacheDuration"] = _duration(raw["cacheDuration"], "management.cacheDuration")
    for member in ("timeout", "cooldown"):
        if member in raw:
            out[member] = _positive(raw[member], "management." + member)
    return out


def _operations(value: Any) -> list[str]:
    names = _names(value, "operations")
    unknown = sorted(set(names) - OPERATIONS - set(GROUPS))
    if unknown:
        raise _fail(
            "operations",
            f"unknown operation {', '.join(unknown)}; use operation names of §4.20 or the"
            f" groups {', '.join(GROUPS)}",
        )
    return list(dict.fromkeys(names))


def _member(name: str, value: Any, terms: TermExpander, now: datetime) -> Any:
    """One member of the data type, checked and (where it names terms) expanded."""
    if name == "information":
        return _information(value, terms)
    if name in ("registrationName", "description"):
        return _string(value, name)
    if name == "tenant":
        try:
            return check_tenant(_string(value, name, limit=64))
        except BadRequestData as exc:
            raise _fail(name, exc.detail) from None
    if name in ("observationInterval", "managementInterval"):
        return _interval(value, name)
    if name in ("location", "observationSpace", "operationSpace"):
        try:
            return check_geometry(name, value)
        except BadRequestData as exc:
            raise _fail(name, exc.detail) from None
    if name == "expiresAt":
        text = check_datetime(value, name)
        if parse_datetime(text) <= now:
            raise _fail(name, f"{text} is not in the future")
        return text
    if name == "endpoint":
        return _endpoint(value)
    if name == "contextSourceInfo":
        return _key_values(value)
    if name == "scope":
        try:
            return parse_scopes(value)
        except BadRequestData as exc:
            raise _fail(name, exc.detail) from None
    if name == "mode":
        if value not in MODES:
            raise _fail(name, f"must be one of {', '.join(MODES)}, not {value!r}")
        return value
    if name == "operations":
        return _operations(value)
    if name == "refreshRate":
        return _duration(value, name)
    if name == "management":
        return _management(value)
    raise AssertionError(name)  # pragma: no cover - MEMBERS lists every handled name


def _property(name: str, value: Any, terms: TermExpander) -> tuple[str, Any]:
    """A context-source property: a valid attribute name, expanded; the value as given."""
    try:
        check_name(name, "context source property")
        iri = expand_attr_name(terms, name)
    except BadRequestData as exc:
        raise BadRequestData(f"{name}: {exc.detail}") from None
    return iri, value


def parse_members(body: Any, terms: TermExpander, now: datetime, *, update: bool) -> Doc:
    """The members of a create (``update=False``) or of an update fragment, checked.

    Context-source properties go under ``properties``; in a fragment a member set to null is
    kept as None (it removes the stored member; a mandatory one cannot be removed).
    """
    if not isinstance(body, dict):
        raise BadRequestData("the payload must be a JSON object (a ContextSourceRegistration)")
    kind = body.get("type")
    if kind is None and not update:
        raise _fail("type", f'is mandatory and must be "{TYPE}"')
    if kind is not None and kind != TYPE:
        raise _fail("type", f'must be "{TYPE}", not {kind!r}')
    doc: Doc = {}
    properties: dict[str, Any] = {}
    for name, value in body.items():
        if name in READ_ONLY or name in ("type", "@context"):
            continue
        if name == "id":
            doc["id"] = _uri(value, "id")
        elif name not in MEMBERS:
            iri, kept = _property(name, value, terms)
            properties[iri] = kept
        elif value is None:
            if not update or name in MANDATORY:
                raise _fail(name, "cannot be null" + (" (it is mandatory)" if update else ""))
            doc[name] = None
        else:
            doc[name] = _member(name, value, terms, now)
    if properties:
        doc["properties"] = properties
    if not update:
        for name in ("information", "endpoint"):
            if name not in doc:
                raise _fail(name, "is mandatory")
    return doc


def merge(stored: Doc, fragment: Doc) -> Doc:
    """§5.9.3: each member of the fragment replaces the stored one (null removes it);
    context-source properties merge one by one (a property set to null is removed)."""
    merged = {**stored}
    for name, value in fragment.items():
        if name == "id":
            continue
        if name == "properties":
            props = {**merged.get("properties", {}), **value}
            props = {k: v for k, v in props.items() if v is not None}
            if props:
                merged["properties"] = props
            else:
                merged.pop("properties", None)
        elif value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def check_rules(reg: Registration) -> None:
    """The rules between members; raise BadRequestData naming the member."""
    if reg.mode == "exclusive":
        # §4.3.6.3: "An exclusive registration shall always relate to specific Attributes
        # found on a single Entity": entity ids (no idPattern, no type-only group) and names.
        for info in reg.information:
            if not info.entities:
                raise _fail("information", "an exclusive registration must name entity ids")
            for entity in info.entities:
                if entity.id is None:
                    raise _fail(
                        "information.entities",
                        "an exclusive registration needs an entity id for every EntityInfo"
                        " (idPattern and type-only groups are not supported, §4.3.6.3)",
                    )
            if not info.attrs:
                raise _fail(
                    "information",
                    "an exclusive registration must name propertyNames or relationshipNames"
                    " (§4.3.6.3)",
                )
    if reg.mode == "auxiliary":
        writes = sorted(reg.operations & WRITE_OPERATIONS)
        if writes:
            raise _fail(
                "operations",
                f"an auxiliary registration serves no write operation, not {', '.join(writes)}"
                " (§4.3.6.5, §5.9.2.4)",
            )
    if not reg.operations:
        raise _fail("operations", "names no operation")


def build(doc: Doc) -> Registration:
    """The Registration of a complete stored document, with the rules between members."""
    reg = Registration.from_doc(doc)
    check_rules(reg)
    return reg
