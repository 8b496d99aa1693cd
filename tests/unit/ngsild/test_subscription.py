"""The Subscription data type, pure: parsing and expansion, bad input naming the member, updates,
status and rendering in another request's terms."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from city_os.core.contexts import bundled_documents
from city_os.errors import BadRequestData
from city_os.ngsild.jsonld import TermMap
from city_os.ngsild.query.type_selection import type_text
from city_os.ngsild.subscription import (
    check_rules,
    merge,
    parse_members,
    parse_subscription,
    status,
)
from city_os.ngsild.subscription_render import DeliveryStatus, render_subscription

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
EX = "https://example.org/ns#"
CONTEXT = {"ex": EX, "Shelter": "ex:Shelter", "Tower": "ex:Tower", "capacity": "ex:capacity"}
DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"


@pytest.fixture(scope="module")
def tm() -> TermMap:
    return TermMap(CONTEXT, bundled_documents())


@pytest.fixture(scope="module")
def core() -> TermMap:
    return TermMap(None, bundled_documents())


def body(**members: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "Subscription",
        "entities": [{"type": "Shelter"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:18061/notify"}},
    }
    for key, value in members.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def notification(**members: Any) -> dict[str, Any]:
    return {"endpoint": {"uri": "http://127.0.0.1:18061/notify"}, **members}


def endpoint(**members: Any) -> dict[str, Any]:
    return {"endpoint": {"uri": "http://127.0.0.1:18061/notify", **members}}


def test_names_are_expanded_and_expressions_kept(tm: TermMap) -> None:
    doc = parse_subscription(
        body(
            entities=[{"type": "(Shelter;Tower)|Shelter", "idPattern": "^urn:a:.*"}],
            watchedAttributes=["capacity", "name"],
            q="capacity>10",
            geoQ={
                "georel": "near;maxDistance==100",
                "geometry": "Point",
                "coordinates": [130.3, 33.26],
                "geoproperty": "capacity",
            },
            notification=notification(attributes=["capacity"]),
        ),
        tm,
        NOW,
    )
    assert doc["entities"] == [
        {"idPattern": "^urn:a:.*", "type": [[EX + "Shelter", EX + "Tower"], [EX + "Shelter"]]}
    ]
    assert doc["watchedAttributes"] == [EX + "capacity", DEFAULT + "name"]
    assert doc["q"] == "capacity>10"
    assert doc["geoQ"]["geoproperty"] == EX + "capacity"
    assert doc["notification"]["attributes"] == [EX + "capacity"]


def test_type_text_round_trip() -> None:
    assert type_text([["A", "B"], ["C"]], lambda iri: iri.lower()) == "(a;b)|c"


# (members of the body to change, member the detail must name)
BAD: list[tuple[dict[str, Any], str]] = [
    ({"type": "Entity"}, "type"),
    ({"type": None}, "type"),
    ({"id": "not a uri"}, "id"),
    ({"id": ""}, "id"),
    ({"colour": "red"}, "colour"),
    ({"temporalQ": {}}, "temporalQ"),
    ({"entities": []}, "entities"),
    ({"entities": [{"id": "urn:a:b"}]}, "entities"),
    ({"entities": [{"type": "Shelter", "color": 1}]}, "entities"),
    ({"entities": [{"type": "(Shelter"}]}, "type"),
    ({"entities": [{"type": "Shelter", "id": "x y"}]}, "entities: id"),
    ({"entities": None}, "entities or watchedAttributes"),
    ({"watchedAttributes": []}, "watchedAttributes"),
    ({"watchedAttributes": ["bad name"]}, "attribute name"),
    ({"notificationTrigger": ["entityChanged"]}, "notificationTrigger"),
    ({"notificationTrigger": []}, "notificationTrigger"),
    ({"timeInterval": 0}, "timeInterval"),
    ({"timeInterval": "5"}, "timeInterval"),
    ({"throttling": -1}, "throttling"),
    ({"timeInterval": 10, "throttling": 5}, "timeInterval"),
    ({"timeInterval": 10, "watchedAttributes": ["a"]}, "timeInterval"),
    ({"q": "((capacity"}, "q"),
    ({"q": 5}, "q"),
    ({"csf": "(("}, "csf"),
    ({"scopeQ": "no-slash"}, "scopeQ"),
    ({"geoQ": {"georel": "near", "geometry": "Point", "coordinates": [1, 2]}}, "geoQ"),
    ({"geoQ": {"georel": "within", "geometry": "Circle", "coordinates": [1, 2]}}, "geoQ"),
    ({"geoQ": {"georel": "within", "geometry": "Point", "coordinates": [1, 2], "x": 1}}, "geoQ"),
    ({"isActive": "yes"}, "isActive"),
    ({"expiresAt": "2000-01-01T00:00:00Z"}, "expiresAt"),
    ({"expiresAt": "tomorrow"}, "expiresAt"),
    ({"lang": 3}, "lang"),
    ({"datasetId": ["not a uri"]}, "datasetId"),
    ({"datasetId": []}, "datasetId"),
    ({"jsonldContext": "unknownContext"}, "jsonldContext"),
    ({"subscriptionName": ""}, "subscriptionName"),
    ({"description": {"a": 1}}, "description"),
    ({"notification": None}, "notification"),
    ({"notification": {}}, "notification"),
    ({"notification": notification(colour=1)}, "notification"),
    ({"notification": notification(attributes=[])}, "notification.attributes"),
    ({"notification": notification(format="compact")}, "notification.format"),
    ({"notification": notification(sysAttrs="true")}, "notification.sysAttrs"),
    ({"notification": notification(format="keyValues", showChanges=True)}, "showChanges"),
    ({"notification": notification(format="simplified", showChanges=True)}, "showChanges"),
    ({"notification": notification(pick=[])}, "notification.pick"),
    ({"notification": notification(omit=[])}, "notification.omit"),
    ({"notification": notification(pick=["id"], omit=["id"])}, "notification.pick"),
    ({"notification": notification(pick=["id"], attributes=["id"])}, "notification.attributes"),
    ({"notification": notification(pick=["a{b"])}, "notification.pick"),
    ({"notification": notification(join="deep")}, "notification.join"),
    ({"notification": notification(joinLevel=2)}, "notification.joinLevel"),
    ({"notification": notification(join="flat", joinLevel=0)}, "notification.joinLevel"),
    ({"notification": {"endpoint": {}}}, "notification.endpoint"),
    ({"notification": {"endpoint": {"uri": "relative/notify"}}}, "notification.endpoint.uri"),
    ({"notification": {"endpoint": {"uri": "ftp://h/x"}}}, "notification.endpoint.uri"),
    ({"notification": {"endpoint": {"uri": "http:notify"}}}, "notification.endpoint.uri"),
    ({"notification": endpoint(accept="text/plain")}, "notification.endpoint.accept"),
    ({"notification": endpoint(timeout=0)}, "notification.endpoint.timeout"),
    ({"notification": endpoint(cooldown=-5)}, "notification.endpoint.cooldown"),
    ({"notification": endpoint(colour=1)}, "notification.endpoint"),
    ({"notification": endpoint(receiverInfo=[{"key": "K", "value": 42}])}, "receiverInfo"),
    ({"notification": endpoint(notifierInfo=[{"key": "K", "value": {"a": 1}}])}, "notifierInfo"),
    ({"notification": endpoint(receiverInfo=[{"key": "K"}])}, "receiverInfo"),
    ({"notification": endpoint(receiverInfo=[{"key": 5, "value": "v"}])}, "receiverInfo"),
    ({"notification": endpoint(receiverInfo=[])}, "receiverInfo"),
    ({"notification": {"endpoint": {"uri": "http://h/\u0000"}}}, "notification.endpoint.uri"),
    ({"id": "urn:ngsi-ld:Subscription:\u0001"}, "id"),
    ({"description": "a\u0000b"}, "description"),
    ({"q": 'name=="\u0000"'}, "q"),
    ({"notification": endpoint(receiverInfo=[{"key": "K", "value": "\u0000"}])}, "receiverInfo"),
    ({"jsonldContext": "http://c/\u0000.jsonld"}, "jsonldContext"),
]


@pytest.mark.parametrize(("members", "named"), BAD, ids=[str(m) for m, _ in BAD])
def test_bad_subscriptions_name_the_member(
    tm: TermMap, members: dict[str, Any], named: str
) -> None:
    with pytest.raises(BadRequestData) as err:
        parse_subscription(body(**members), tm, NOW)
    assert named in err.value.detail


def test_not_an_object(tm: TermMap) -> None:
    with pytest.raises(BadRequestData):
        parse_subscription([body()], tm, NOW)


def test_read_only_members_are_ignored(tm: TermMap) -> None:
    sent = body(status="expired", createdAt="2020-01-01T00:00:00Z")
    sent["notification"]["timesSent"] = 42
    doc = parse_subscription(sent, tm, NOW)
    assert "status" not in doc and "createdAt" not in doc
    assert "timesSent" not in doc["notification"]


def test_every_trigger_and_endpoint_member(tm: TermMap) -> None:
    triggers = [
        "entityCreated",
        "entityUpdated",
        "entityDeleted",
        "attributeCreated",
        "attributeUpdated",
        "attributeDeleted",
    ]
    info = [{"key": "Authorization", "value": "Bearer abc"}]
    doc = parse_subscription(
        body(
            notificationTrigger=triggers,
            notification=endpoint(
                accept="application/ld+json",
                timeout=500,
                cooldown=1000,
                receiverInfo=info,
                notifierInfo=[{"key": "MQTT-QoS", "value": "1"}],
            ),
        ),
        tm,
        NOW,
    )
    assert doc["notificationTrigger"] == triggers
    assert doc["notification"]["endpoint"]["receiverInfo"] == info
    assert doc["notification"]["endpoint"]["timeout"] == 500


def test_mqtt_endpoints_are_accepted(tm: TermMap) -> None:
    sent = body(notification={"endpoint": {"uri": "mqtt://user:pw@127.0.0.1:1883/topic"}})
    assert parse_subscription(sent, tm, NOW)["notification"]["endpoint"]["uri"].startswith("mqtt")


def test_update_replaces_members_and_null_removes(tm: TermMap) -> None:
    stored = parse_subscription(body(q="capacity>1", throttling=5), tm, NOW)
    fragment = parse_members({"q": None, "isActive": False}, tm, NOW, update=True)
    merged = merge(stored, fragment)
    assert "q" not in merged and merged["isActive"] is False and merged["throttling"] == 5


@pytest.mark.parametrize(
    ("fragment", "named"),
    [
        ({"notification": None}, "notification"),
        ({"notification": {"format": "keyValues", "endpoint": None}}, "notification"),
        ({"notification": {"format": "keyValues"}}, "notification"),
        ({"type": "Entity"}, "type"),
        ({"expiresAt": "2020-08-01T22:07:00Z"}, "expiresAt"),
    ],
)
def test_bad_updates(tm: TermMap, fragment: dict[str, Any], named: str) -> None:
    with pytest.raises(BadRequestData) as err:
        parse_members(fragment, tm, NOW, update=True)
    assert named in err.value.detail


def test_rules_hold_after_an_update(tm: TermMap) -> None:
    stored = parse_subscription(body(timeInterval=10), tm, NOW)
    merged = merge(stored, parse_members({"throttling": 5}, tm, NOW, update=True))
    with pytest.raises(BadRequestData, match="timeInterval"):
        check_rules(merged)
    removed = merge(stored, parse_members({"entities": None}, tm, NOW, update=True))
    with pytest.raises(BadRequestData, match="entities or watchedAttributes"):
        check_rules(removed)


def test_status() -> None:
    future = (NOW + timedelta(hours=1)).isoformat()
    past = (NOW - timedelta(hours=1)).isoformat()
    assert status({}, NOW) == "active"
    assert status({"isActive": False}, NOW) == "paused"
    assert status({"isActive": True, "expiresAt": future}, NOW) == "active"
    assert status({"isActive": False, "expiresAt": past}, NOW) == "expired"
    assert status({"expiresAt": past}, NOW) == "expired"


def test_q_is_percent_decoded_for_evaluation_only(tm: TermMap) -> None:
    doc = parse_subscription(body(q='name=="Eiffel%20Tower"'), tm, NOW)
    assert doc["q"] == 'name=="Eiffel%20Tower"'


def test_render_compacts_with_the_readers_terms(tm: TermMap, core: TermMap) -> None:
    doc = parse_subscription(
        body(
            watchedAttributes=["capacity"],
            isActive=False,
            notification=notification(attributes=["capacity"], format="keyValues"),
        ),
        tm,
        NOW,
    )
    doc = {"id": "urn:ngsi-ld:Subscription:1", **doc}
    original = copy.deepcopy(doc)
    mine = render_subscription(doc, tm, status="paused", jsonld_context="http://c/x.jsonld")
    assert mine["entities"] == [{"type": "Shelter"}]
    assert mine["watchedAttributes"] == ["capacity"]
    assert mine["notification"]["attributes"] == ["capacity"]
    assert mine["notificationTrigger"] == ["attributeCreated", "attributeUpdated"]
    assert mine["isActive"] is False and mine["status"] == "paused"
    assert "timesSent" not in mine["notification"] and "createdAt" not in mine
    theirs = render_subscription(doc, core, status="paused", jsonld_context="http://c/x.jsonld")
    assert theirs["entities"] == [{"type": EX + "Shelter"}]
    assert theirs["watchedAttributes"] == [EX + "capacity"]
    assert doc == original


def test_render_delivery_status_and_system_members(tm: TermMap) -> None:
    doc = {"id": "urn:ngsi-ld:Subscription:1", **parse_subscription(body(), tm, NOW)}
    delivery = DeliveryStatus(
        times_sent=3,
        times_failed=1,
        last_notification="2026-12-01T09:00:03Z",
        last_success="2026-12-01T09:00:02Z",
        last_failure="2026-12-01T09:00:03Z",
        last_failure_reason="HTTP 500",
        failing=True,
    )
    out = render_subscription(
        doc,
        tm,
        status="active",
        jsonld_context="x",
        delivery=delivery,
        system=("2026-12-01T08:00:00Z", "2026-12-01T08:30:00Z"),
    )
    n = out["notification"]
    assert (n["status"], n["timesSent"], n["timesFailed"]) == ("failed", 3, 1)
    assert n["lastFailureReason"] == "HTTP 500"
    assert out["createdAt"] == "2026-12-01T08:00:00Z"
