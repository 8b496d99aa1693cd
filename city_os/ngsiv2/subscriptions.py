"""v2 subscriptions <-> NGSI-LD subscriptions (pure, no I/O).

Layer: ngsiv2/. A v2 subscription is stored as an NGSI-LD subscription (so the one notifier
matches it against writes of both APIs) plus its face document (``core.subscriptions.FACE``):
the v2 body as the client sent it, which the v2 notification renderer (ngsiv2/notify.py) and
GET /v2/subscriptions read. The mapping:

- ``subject.entities`` -> ``entities`` (ids through ``ids.ld_id``, ``idPattern`` adapted); an
  entity without ``type`` is allowed when it selects every id and ``condition.attrs`` is given
  (NGSI-LD needs a type or watched attributes); ``typePattern`` is not supported.
- ``condition.attrs`` -> ``watchedAttributes``; ``condition.expression`` q/mq -> ``q``,
  georel/geometry/coords -> ``geoQ``; ``alterationTypes`` -> ``notificationTrigger``.
- ``notification.http.url`` / ``httpCustom.url`` (+ static ``qs``) / ``mqtt.url`` + ``topic``
  -> ``endpoint.uri``; ``httpCustom.method`` -> notifierInfo ``method``; ``mqtt.qos`` ->
  ``MQTT-QoS``; ``timeout`` (ms) -> ``endpoint.timeout``.
- ``expires`` -> ``expiresAt``; ``status`` inactive -> ``isActive: false``; ``throttling``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from city_os.errors import BadRequestData
from city_os.ngsiv2.ids import check_v2_name, id_pattern, ld_id
from city_os.ngsiv2.qlang import parse_v2_geo, to_ngsild_q
from city_os.ngsiv2.translate import utc_datetime

FACE_NAME = "ngsiv2"
ID_PREFIX = "urn:ngsi-ld:Subscription:"
FORMATS = frozenset(
    {"normalized", "keyValues", "values", "legacy", "simplifiedNormalized", "simplifiedKeyValues"}
)
_ALTERATIONS = {
    "entityCreate": "entityCreated",
    "entityChange": "entityUpdated",
    "entityUpdate": "entityUpdated",
    "entityDelete": "entityDeleted",
}
_CHANNELS = ("http", "httpCustom", "mqtt", "mqttCustom")
_TOP = frozenset({"description", "subject", "notification", "expires", "status", "throttling"})
_NOTIFICATION = frozenset(
    {*_CHANNELS, "attrs", "exceptAttrs", "attrsFormat", "metadata", "onlyChangedAttrs",
     "covered", "maxFailsLimit", "timeout"}
)  # fmt: skip


def expired(expires: str) -> bool:
    return datetime.fromisoformat(expires.replace("Z", "+00:00")) <= datetime.now(UTC)


def v2_subscription_id(sid: str) -> str:
    return sid.removeprefix(ID_PREFIX)


def ld_subscription_id(v2: str) -> str:
    check_v2_name(v2, "subscription id")
    return v2 if v2.startswith(ID_PREFIX) else ID_PREFIX + v2


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequestData(f"{what} must be a JSON object")
    return value


def _names(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequestData(f"{what} must be an array of strings")
    return [check_v2_name(v, what) for v in value]


def _selectors(entities: Any, watched: list[str]) -> list[dict[str, Any]]:
    if not isinstance(entities, list) or not entities:
        raise BadRequestData("subject.entities must be a non-empty array")
    out = []
    for raw in entities:
        item = _object(raw, "subject.entities item")
        unknown = set(item) - {"id", "idPattern", "type", "typePattern"}
        if unknown:
            raise BadRequestData(f"subject.entities: unexpected {', '.join(sorted(unknown))}")
        if "typePattern" in item:
            raise BadRequestData("subject.entities: typePattern is not supported by city-os")
        selector: dict[str, Any] = {}
        if "id" in item:
            selector["id"] = ld_id(check_v2_name(item["id"], "subject entity id"))
        pattern = item.get("idPattern")
        if pattern is not None:
            if not isinstance(pattern, str) or not pattern:
                raise BadRequestData("subject.entities: idPattern must be a string")
            if pattern not in (".*", "^.*$", "^.*"):
                selector["idPattern"] = id_pattern(pattern)
        if "type" not in item:
            if selector:
                raise BadRequestData(
                    "subject.entities: an entity without type must select every id "
                    "(city-os selects entities by type, or every entity)"
                )
            return []  # every entity: no NGSI-LD entity selector at all
        selector["type"] = check_v2_name(item["type"], "subject entity type")
        out.append(selector)
    return out


def _endpoint(notification: dict[str, Any]) -> dict[str, Any]:
    given = [c for c in _CHANNELS if c in notification]
    if len(given) != 1:
        raise BadRequestData("notification needs exactly one of http, httpCustom, mqtt, mqttCustom")
    kind = given[0]
    channel = _object(notification[kind], f"notification.{kind}")
    url = channel.get("url")
    if not isinstance(url, str) or not url:
        raise BadRequestData(f"notification.{kind}.url is missing")
    info: list[dict[str, str]] = []
    if kind.startswith("http"):
        if urlsplit(url).scheme not in ("http", "https"):
            raise BadRequestData(f"notification.{kind}.url must be an http(s) URL")
        qs = channel.get("qs")
        if qs is not None:
            query = _object(qs, "httpCustom.qs")
            if any("${" in str(v) for v in query.values()):
                raise BadRequestData("httpCustom.qs: templates are not supported by city-os")
            url += ("&" if "?" in url else "?") + urlencode({k: str(v) for k, v in query.items()})
        method = channel.get("method")
        if method is not None:
            if method not in ("POST", "PUT", "PATCH", "DELETE", "GET"):
                raise BadRequestData(f"httpCustom.method {method!r} is not supported")
            info.append({"key": "method", "value": method})
        if "${" in url:
            raise BadRequestData("httpCustom.url: templates are not supported by city-os")
    else:
        parts = urlsplit(url)
        topic = channel.get("topic")
        if parts.scheme not in ("mqtt", "mqtts") or not isinstance(topic, str) or not topic:
            raise BadRequestData(f"notification.{kind} needs an mqtt:// url and a topic")
        login = ""
        if "user" in channel:
            login = quote(str(channel["user"]), safe="")
            if "passwd" in channel:
                login += ":" + quote(str(channel["passwd"]), safe="")
            login += "@"
        url = f"{parts.scheme}://{login}{parts.netloc}/{topic.lstrip('/')}"
        qos = channel.get("qos", 0)
        if qos not in (0, 1, 2):
            raise BadRequestData("mqtt.qos must be 0, 1 or 2")
        info.append({"key": "MQTT-QoS", "value": str(qos)})
        info.append({"key": "MQTT-Envelope", "value": "none"})  # Orion: the bare notification
    endpoint: dict[str, Any] = {"uri": url, "accept": "application/json"}
    if info:
        endpoint["notifierInfo"] = info
    timeout = channel.get("timeout", notification.get("timeout"))
    if timeout is not None:
        if not isinstance(timeout, int) or timeout <= 0:
            raise BadRequestData("timeout must be a positive number of milliseconds")
        endpoint["timeout"] = timeout
    return endpoint


def _geo_q(expression: dict[str, Any]) -> dict[str, Any] | None:
    geo = parse_v2_geo(
        expression.get("georel"), expression.get("geometry"), expression.get("coords")
    )
    if geo is None:
        return None
    georel: str = geo.georel
    if geo.max_distance is not None:
        georel += f";maxDistance=={geo.max_distance:g}"
    if geo.min_distance is not None:
        georel += f";minDistance=={geo.min_distance:g}"
    shape = geo.geojson()
    return {"georel": georel, "geometry": shape["type"], "coordinates": shape["coordinates"]}


def check_v2(body: Any) -> dict[str, Any]:
    """The v2 subscription, checked member by member."""
    sub = _object(body, "the subscription")
    unknown = set(sub) - _TOP
    if unknown:
        raise BadRequestData(f"unexpected subscription member {', '.join(sorted(unknown))}")
    notification = _object(sub.get("notification"), "notification")
    unknown = set(notification) - _NOTIFICATION
    if unknown:
        raise BadRequestData(f"unexpected notification member {', '.join(sorted(unknown))}")
    fmt = notification.get("attrsFormat", "normalized")
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise BadRequestData(f"attrsFormat {fmt!r}: use one of {', '.join(sorted(FORMATS))}")
    if "attrs" in notification and "exceptAttrs" in notification:
        raise BadRequestData("notification: attrs and exceptAttrs cannot be used together")
    for key in ("attrs", "exceptAttrs", "metadata"):
        if key in notification:
            _names(notification[key], f"notification.{key}")
    status = sub.get("status", "active")
    if status not in ("active", "inactive"):
        raise BadRequestData(f"status {status!r}: use active or inactive (oneshot: not supported)")
    return sub


def to_ngsild(body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(NGSI-LD Subscription, face document) of a v2 subscription body."""
    sub = check_v2(body)
    subject = _object(sub.get("subject"), "subject")
    condition = _object(subject.get("condition", {}), "subject.condition")
    watched = _names(condition.get("attrs", []), "condition.attrs")
    out: dict[str, Any] = {"type": "Subscription"}
    selectors = _selectors(subject.get("entities"), watched)
    if selectors:
        out["entities"] = selectors
    if watched:
        out["watchedAttributes"] = watched
    expression = _object(condition.get("expression", {}), "condition.expression")
    q = to_ngsild_q(expression.get("q"), expression.get("mq"))
    if q is not None:
        out["q"] = q
    geo_q = _geo_q(expression)
    if geo_q is not None:
        out["geoQ"] = geo_q
    alterations = condition.get("alterationTypes")
    if alterations is not None:
        names = _names(alterations, "condition.alterationTypes")
        if set(names) - set(_ALTERATIONS):
            raise BadRequestData(f"alterationTypes: use {', '.join(_ALTERATIONS)}")
        out["notificationTrigger"] = list(dict.fromkeys(_ALTERATIONS[a] for a in names))
    if not out.get("notificationTrigger"):  # none or []: Orion's default
        out["notificationTrigger"] = ["entityCreated", "entityUpdated"]
    if isinstance(sub.get("description"), str):
        out["description"] = sub["description"]
    out["notification"] = {"endpoint": _endpoint(sub["notification"])}
    if sub.get("status", "active") == "inactive":
        out["isActive"] = False
    if "expires" in sub:
        expires = utc_datetime(sub["expires"], "expires")
        if expired(expires):
            out["isActive"] = False  # Orion accepts a past expiry (NGSI-LD refuses one)
        else:
            out["expiresAt"] = expires
    if "throttling" in sub:
        throttling = sub["throttling"]
        if (
            not isinstance(throttling, int | float)
            or isinstance(throttling, bool)
            or throttling < 0
        ):
            raise BadRequestData("throttling must be a number of seconds (0: none)")
        if throttling > 0:
            out["throttling"] = throttling
    return out, {"name": FACE_NAME, "v2": sub}
