"""federation/distributed_subscriptions.py and subscription_relay.py, their pure parts: the
reduced copy sent to a source, the watch's selection, the merge of a notified fragment."""

from __future__ import annotations

from typing import Any

import pytest

from city_os.federation.distributed_subscriptions import _watched, remote_copy, watch_id
from city_os.federation.subscription_relay import merged
from city_os.ngsild.representation import EntityRecord

URI = "http://broker.example/ngsi-ld/ex/remote-notify"
RENDERED: dict[str, Any] = {
    "id": "urn:ngsi-ld:Subscription:local",
    "type": "Subscription",
    "subscriptionName": "mine",
    "entities": [{"type": "Vehicle"}],
    "watchedAttributes": ["speed"],
    "q": "speed>50",
    "geoQ": {"georel": "near;maxDistance==10", "geometry": "Point", "coordinates": [1, 2]},
    "scopeQ": "/Saga",
    "notification": {
        "attributes": ["speed"],
        "format": "keyValues",
        "endpoint": {"uri": "http://subscriber.example/notify", "accept": "application/ld+json"},
        "status": "ok",
        "timesSent": 3,
    },
    "jsonldContext": "http://subscriber.example/context.jsonld",
    "status": "active",
}


def test_copy_keeps_the_selection_and_points_here() -> None:
    copy = remote_copy(RENDERED, "urn:ngsi-ld:Subscription:remote", URI)
    assert copy == {
        "id": "urn:ngsi-ld:Subscription:remote",
        "type": "Subscription",
        "entities": [{"type": "Vehicle"}],
        "watchedAttributes": ["speed"],
        "q": "speed>50",
        "geoQ": RENDERED["geoQ"],
        "scopeQ": "/Saga",
        "notification": {
            "format": "normalized",
            "attributes": ["speed"],
            "endpoint": {"uri": URI, "accept": "application/json"},
        },
        "localOnly": True,
    }
    assert "subscriber.example" not in str(copy)


def test_split_copy_leaves_the_filters_here() -> None:
    copy = remote_copy({**RENDERED, "splitEntities": True}, "urn:x:r", URI)
    assert not {"q", "geoQ", "scopeQ"} & set(copy)
    assert copy["splitEntities"] is True and "attributes" not in copy["notification"]


@pytest.mark.parametrize(
    ("doc", "selection"),
    [
        ({"entities": [{"type": [["A", "B"], ["C"]]}]},
         {"entities": [{"type": "A"}, {"type": "B"}, {"type": "C"}]}),
        ({"entities": [{"id": "urn:x:1", "type": [["A"]]}, {"type": [["A"]]}]},
         {"entities": [{"id": "urn:x:1", "type": "A"}, {"type": "A"}]}),
        ({"watchedAttributes": ["https://example.org/speed"]},
         {"watchedAttributes": ["https://example.org/speed"]}),
        ({"q": "speed>1"}, None),
    ],
)  # fmt: skip
def test_watch_selection(doc: dict[str, Any], selection: dict[str, Any] | None) -> None:
    assert _watched(doc) == selection


def test_watch_id_is_stable_per_tenant() -> None:
    assert watch_id("a", "urn:s:1") == watch_id("a", "urn:s:1") != watch_id("b", "urn:s:1")


def _record(attrs: dict[str, Any], types: list[str], modified: str) -> EntityRecord:
    return EntityRecord("urn:x:1", types, attrs, None, "2026-01-01T00:00:00Z", modified)


def test_merge_notified_attributes_win() -> None:
    local = _record({"a": [{"value": 1}], "b": [{"value": 2}]}, ["T"], "2026-01-02T00:00:00Z")
    notified = _record({"b": [{"value": 3}]}, ["T", "U"], "")
    out = merged(local, notified)
    assert out.attrs == {"a": [{"value": 1}], "b": [{"value": 3}]}
    assert out.types == ["T", "U"] and out.modified_at == "2026-01-02T00:00:00Z"
    assert merged(None, notified) is notified
