"""The Subscription data type (GS CIM 009 v1.9.1 §5.2.12, §5.2.14, §5.2.15): parse, validate, merge.

Layer: ngsild/ (pure, no I/O). A request body becomes the stored document: the members as the
client gave them, checked one by one (a 400 BadRequestData names the member), with attribute
names and entity types expanded through the request's term map, so a later request with another
@context reads them in its own terms. Expressions (``q``, ``scopeQ``, ``csf``, ``pick``/``omit``)
stay text and are expanded with the subscription's own @context when evaluated. Entity type
selections are stored as alternatives of type IRIs that must all be present:
``(A;B)|C`` → ``[[A, B], [C]]``. Read-only members (status and counters) sent by a client are
ignored (§5.2.12, Table 5.2.12-2); any other unknown member is refused. Reused by the notifier
(``notifier/index.py``) and, later, by the NGSIv2 face and context-source subscriptions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final, Literal
from urllib.parse import unquote, urlsplit

from city_os.errors import BadRequestData
from city_os.ngsild.entity import (
    TermExpander,
    check_datetime,
    check_entity_id,
    expand_attr_name,
    is_uri,
    parse_datetime,
)
from city_os.ngsild.members import fail as _fail
from city_os.ngsild.members import object_member as _object
from city_os.ngsild.members import positive_member as _positive
from city_os.ngsild.members import text_member as _string
from city_os.ngsild.query.geo import geoq_from_json
from city_os.ngsild.query.projection import parse_projection
from city_os.ngsild.query.q import check_text, parse_q
from city_os.ngsild.query.scope import parse_scopeq
from city_os.ngsild.query.type_selection import parse_type_selection, type_alternatives

Doc = dict[str, Any]
Status = Literal["active", "paused", "expired"]

TRIGGERS: Final = (
    "entityCreated",
    "entityUpdated",
    "entityDeleted",
    "attributeCreated",
    "attributeUpdated",
    "attributeDeleted",
)
DEFAULT_TRIGGERS: Final = ("attributeCreated", "attributeUpdated")
FORMATS: Final = frozenset({"normalized", "concise", "keyValues", "simplified"})
ACCEPTS: Final = ("application/json", "application/ld+json", "application/geo+json")
# Each scheme has a delivery channel (notifier/channels/), which checks its own endpoint members.
SCHEMES: Final = frozenset({"http", "https", "mqtt", "mqtts"})
STREAM_URI: Final = "urn:city-os:stream"  # the live stream (SSE) of web pages
NOTIFICATION_STATUS: Final = frozenset(
    {"status", "timesSent", "timesFailed", "lastNotification", "lastSuccess", "lastFailure"}
)
_READ_ONLY: Final = frozenset({"status", "createdAt", "modifiedAt", "deletedAt"})


def _strings(value: Any, member: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _fail(member, "must be a non-empty array of strings")
    return [_string(item, member) for item in value]


def _flag(value: Any, member: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(member, "must be true or false")
    return value


def _parsed(member: str, parse: Callable[[], object]) -> None:
    """Run a parser of an expression language; its errors name the member they come from."""
    try:
        parse()
    except BadRequestData as exc:
        detail = exc.detail if exc.detail.startswith(member) else f"{member}: {exc.detail}"
        raise BadRequestData(detail) from None


def _attributes(names: list[str], terms: TermExpander, member: str) -> list[str]:
    try:
        return [expand_attr_name(terms, n) for n in names]
    except BadRequestData as exc:
        raise _fail(member, exc.detail) from None


def _uri(value: Any, member: str) -> str:
    try:
        uri = check_entity_id(value, member)
    except BadRequestData:
        raise _fail(member, f"{value!r} is not an absolute URI") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in uri):
        raise _fail(member, f"{uri!r} contains control characters")
    return uri


def _selector(value: Any, terms: TermExpander) -> dict[str, Any]:
    item = _object(value, "entities", frozenset({"id", "idPattern", "type"}))
    if "type" not in item:
        raise _fail("entities", "every EntitySelector needs a type")
    out: dict[str, Any] = {}
    if "id" in item:
        out["id"] = _uri(item["id"], "entities: id")
    if "idPattern" in item:
        out["idPattern"] = _string(item["idPattern"], "entities: idPattern")
    text = _string(item["type"], "entities: type")
    try:
        out["type"] = type_alternatives(parse_type_selection(text), terms)
    except BadRequestData as exc:
        raise _fail("entities", exc.detail) from None
    return out


# ------------------------------------------------------------------------- notification

_ENDPOINT: Final = frozenset(
    {"uri", "accept", "timeout", "cooldown", "receiverInfo", "notifierInfo"}
)
_NOTIFICATION: Final = NOTIFICATION_STATUS | {
    "attributes", "sysAttrs", "format", "showChanges", "endpoint", "pick", "omit", "join",
    "joinLevel",
}  # fmt: skip


def _key_values(value: Any, member: str) -> list[dict[str, str]]:
    """receiverInfo / notifierInfo: KeyValuePairs of strings (§5.2.22)."""
    if not isinstance(value, list) or not value:
        raise _fail(member, "must be a non-empty array of {key, value} objects")
    out = []
    for pair in value:
        pair = _object(pair, member, frozenset({"key", "value"}))
        if not isinstance(pair.get("key"), str) or not pair["key"]:
            raise _fail(member, "every pair needs a non-empty string key")
        if not isinstance(pair.get("value"), str):
            raise _fail(member, f"the value of {pair['key']!r} must be a string")
        key, text = check_text(pair["key"], member), check_text(pair["value"], member)
        out.append({"key": key, "value": text})
    return out


def _endpoint(value: Any) -> dict[str, Any]:
    raw = _object(value, "notification.endpoint", _ENDPOINT)
    if "uri" not in raw:
        raise _fail("notification.endpoint", "uri is mandatory")
    uri = _uri(raw["uri"], "notification.endpoint.uri")
    parts = urlsplit(uri)
    if uri == STREAM_URI:
        pass
    elif parts.scheme.lower() not in SCHEMES:
        raise _fail(
            "notification.endpoint.uri",
            f"scheme {parts.scheme!r} is not supported; use one of {', '.join(sorted(SCHEMES))}"
            f" or {STREAM_URI}",
        )
    elif not parts.hostname:
        raise _fail("notification.endpoint.uri", f"{uri!r} names no host")
    out: dict[str, Any] = {"uri": uri}
    if "accept" in raw:
        if raw["accept"] not in ACCEPTS:
            raise _fail("notification.endpoint.accept", f"must be one of {', '.join(ACCEPTS)}")
        out["accept"] = raw["accept"]
    for member in ("timeout", "cooldown"):
        if member in raw:
            out[member] = _positive(raw[member], f"notification.endpoint.{member}")
    for member in ("receiverInfo", "notifierInfo"):
        if member in raw:
            out[member] = _key_values(raw[member], f"notification.endpoint.{member}")
    return out


def _projection(value: Any, member: str) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    names = _strings(items, member)
    _parsed(member, lambda: parse_projection(",".join(names), member))  # nested rel{a,b}
    return names


def _notification(value: Any, terms: TermExpander) -> dict[str, Any]:
    raw = _object(value, "notification", _NOTIFICATION)
    if raw.get("endpoint") is None:
        raise _fail("notification", "endpoint is mandatory")
    out: dict[str, Any] = {}
    if "attributes" in raw:
        names = _strings(raw["attributes"], "notification.attributes")
        out["attributes"] = _attributes(names, terms, "notification.attributes")
    for member in ("sysAttrs", "showChanges"):
        if member in raw:
            out[member] = _flag(raw[member], f"notification.{member}")
    if "format" in raw:
        if raw["format"] not in FORMATS:
            raise _fail("notification.format", f"must be one of {', '.join(sorted(FORMATS))}")
        out["format"] = raw["format"]
    for member in ("pick", "omit"):
        if member in raw:
            out[member] = _projection(raw[member], f"notification.{member}")
    if "join" in raw:
        if raw["join"] not in ("flat", "inline", "@none"):
            raise _fail("notification.join", "must be flat, inline or @none")
        out["join"] = raw["join"]
    if "joinLevel" in raw:
        level = raw["joinLevel"]
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 16:
            raise _fail("notification.joinLevel", "must be an integer from 1 to 16")
        out["joinLevel"] = level
    out["endpoint"] = _endpoint(raw["endpoint"])
    return out


# ------------------------------------------------------------------------- members

_MEMBERS: Final = frozenset(
    {
        "id", "type", "subscriptionName", "description", "entities", "watchedAttributes",
        "notificationTrigger", "timeInterval", "q", "geoQ", "csf", "scopeQ", "isActive",
        "notification", "expiresAt", "throttling", "lang", "datasetId", "jsonldContext",
        "splitEntities", "localOnly", "@context",
    }
)  # fmt: skip
# Members that may be removed with null in an update; the others are mandatory.
_REMOVABLE: Final = _MEMBERS - {"id", "type", "notification", "@context"}


def expression(text: str) -> str:
    """``q``/``scopeQ`` as evaluated: percent-decoded, as in a URL query (many clients and the
    ETSI suite write ``name=="Eiffel%20Tower"`` in subscriptions too)."""
    return unquote(text)


def _member(name: str, value: Any, terms: TermExpander, now: datetime) -> Any:
    """One member, checked and (where it names terms) expanded."""
    if name == "entities":
        if not isinstance(value, list) or not value:
            raise _fail("entities", "must be a non-empty array of EntitySelectors")
        return [_selector(item, terms) for item in value]
    if name == "watchedAttributes":
        return _attributes(_strings(value, name), terms, name)
    if name == "notificationTrigger":
        triggers = _strings(value, name)
        unknown = sorted(set(triggers) - set(TRIGGERS))
        if unknown:
            raise _fail(name, f"unknown trigger {', '.join(unknown)}; use {', '.join(TRIGGERS)}")
        return list(dict.fromkeys(triggers))
    if name in ("timeInterval", "throttling"):
        return _positive(value, name)
    if name in ("subscriptionName", "description", "lang"):
        return _string(value, name)
    if name == "q" or name == "csf":
        text = expression(_string(value, name))
        _parsed(name, lambda: parse_q(text))
        return value
    if name == "scopeQ":
        text = expression(_string(value, name))
        _parsed(name, lambda: parse_scopeq(text))
        return value
    if name == "geoQ":
        raw = _object(value, name, frozenset({"georel", "geometry", "coordinates", "geoproperty"}))
        try:
            geo = geoq_from_json(raw)
        except BadRequestData as exc:
            raise _fail(name, exc.detail.removeprefix("geoQ: ")) from None
        out = {"georel": raw["georel"], "geometry": geo.geometry, "coordinates": raw["coordinates"]}
        if "geoproperty" in raw:
            out["geoproperty"] = _attributes([_string(raw["geoproperty"], name)], terms, name)[0]
        return out
    if name in ("isActive", "splitEntities", "localOnly"):
        # splitEntities, localOnly: distributed subscriptions (§5.8.1.4, §5.8.6;
        # federation/distributed_subscriptions.py)
        return _flag(value, name)
    if name == "expiresAt":
        text = check_datetime(value, name)
        if parse_datetime(text) <= now:
            raise _fail(name, f"{text} is not in the future")
        return text
    if name == "datasetId":
        ids = _strings(value, name)
        return [i if i == "@none" else _uri(i, name) for i in ids]
    if name == "jsonldContext":
        if not isinstance(value, str) or not is_uri(value) or "://" not in value:
            raise _fail(name, f"{value!r} is not a dereferenceable URI")
        return _uri(value, name)
    if name == "notification":
        return _notification(value, terms)
    raise AssertionError(name)  # pragma: no cover - _MEMBERS lists every handled name


def parse_members(body: Any, terms: TermExpander, now: datetime, *, update: bool) -> Doc:
    """The members of a create (``update=False``) or an update fragment, checked and expanded.

    In a fragment a member set to null is kept as None: it removes the stored member.
    """
    if not isinstance(body, dict):
        raise BadRequestData("the payload must be a JSON object (a Subscription)")
    unknown = sorted(set(body) - _MEMBERS - _READ_ONLY)
    if unknown:
        raise BadRequestData(f"unknown Subscription member {', '.join(unknown)}")
    kind = body.get("type")
    if kind is None and not update:
        raise _fail("type", 'is mandatory and must be "Subscription"')
    if kind is not None and kind != "Subscription":
        raise _fail("type", f'must be "Subscription", not {kind!r}')
    doc: Doc = {}
    for name, value in body.items():
        if name in _READ_ONLY or name in ("type", "@context"):
            continue
        if name == "id":
            doc["id"] = _uri(value, "id")
        elif value is None:
            if not update or name not in _REMOVABLE:
                raise _fail(name, "cannot be null" + (" (it is mandatory)" if update else ""))
            doc[name] = None
        else:
            doc[name] = _member(name, value, terms, now)
    if not update and "notification" not in doc:
        raise _fail("notification", "is mandatory")
    return doc


def merge(stored: Doc, fragment: Doc) -> Doc:
    """An update (§5.8.2): every member of the fragment replaces the stored one; null removes."""
    merged = {**stored}
    for name, value in fragment.items():
        if name == "id":
            continue
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def check_rules(doc: Doc) -> None:
    """The rules between members (§5.2.12, §5.2.14, §5.8.1.4); raise BadRequestData."""
    # A subscription of another API face (the NGSIv2 API, member "face") may select every
    # entity: v2 subscriptions need neither an entity type nor watched attributes.
    if "entities" not in doc and "watchedAttributes" not in doc and "face" not in doc:
        raise BadRequestData("entities or watchedAttributes: at least one of them is mandatory")
    if "timeInterval" in doc:
        for other in ("throttling", "watchedAttributes"):
            if other in doc:
                raise _fail("timeInterval", f"cannot be combined with {other}")
    notification = doc["notification"]
    fmt = notification.get("format", "normalized")
    if notification.get("showChanges") and fmt in ("keyValues", "simplified"):
        raise _fail("notification.showChanges", f"cannot be combined with format {fmt}")
    pick, omit = notification.get("pick"), notification.get("omit")
    if "attributes" in notification and (pick is not None or omit is not None):
        raise _fail("notification.attributes", "cannot be combined with pick or omit")
    if pick is not None and omit is not None:
        both = sorted({p.split("{")[0] for p in pick} & {o.split("{")[0] for o in omit})
        if both:
            raise _fail("notification.pick", f"{', '.join(both)} is also in omit")
    if "joinLevel" in notification and notification.get("join") in (None, "@none"):
        raise _fail("notification.joinLevel", "needs join flat or inline")


def parse_subscription(body: Any, terms: TermExpander, now: datetime) -> Doc:
    """The stored document of a new subscription (its ``id`` only if the client gave one)."""
    doc = parse_members(body, terms, now, update=False)
    check_rules(doc)
    return doc


def status(doc: Doc, now: datetime) -> Status:
    """§5.2.12 ``status``: expired once past expiresAt, else paused while not isActive."""
    expires = doc.get("expiresAt")
    if expires is not None and parse_datetime(expires) <= now:
        return "expired"
    return "active" if doc.get("isActive", True) else "paused"


def triggers(doc: Doc) -> list[str]:
    return list(doc.get("notificationTrigger") or DEFAULT_TRIGGERS)
