"""The notifier's pure parts: what a change fires for a subscription, and what it shows."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from city_os.core.contexts import bundled_documents
from city_os.events.model import attribute_changes, change_event
from city_os.ngsild.jsonld import TermMap
from city_os.ngsild.representation import RenderOptions
from city_os.notifier.compile import Selector, Subscription
from city_os.notifier.match import Change, change_of, notified, reason, selected
from city_os.notifier.render import View, entities, notification, null_instance

EX = "https://example.org/ns#"
NAME, CAP = EX + "name", EX + "capacity"
TERMS = TermMap(
    {"ex": EX, "Shelter": "ex:Shelter", "name": "ex:name", "capacity": "ex:capacity"},
    bundled_documents(),
)
NOW = "2026-12-01T09:00:00Z"


def entity(**attrs: Any) -> dict[str, Any]:
    return {
        "id": "urn:ngsi-ld:Shelter:1",
        "types": [EX + "Shelter"],
        "scopes": None,
        "attrs": attrs,
        "createdAt": NOW,
        "modifiedAt": NOW,
        "expiresAt": None,
    }


def prop(value: Any, **more: Any) -> list[dict[str, Any]]:
    return [{"type": "Property", "value": value, **more}]


def change(kind: Any, before: dict[str, Any] | None, after: dict[str, Any] | None) -> Change:
    row = change_event(
        kind=kind,
        tenant="",
        entity_id="urn:ngsi-ld:Shelter:1",
        types=[EX + "Shelter"],
        changes=attribute_changes(
            before["attrs"] if before else None, after["attrs"] if after else None
        ),
        entity=after or before,
        time=NOW,
        source="http://127.0.0.1:1026",
    )
    found = change_of(row["payload"])
    assert found is not None
    return found


def sub(asked: set[str], watched: set[str] | None = None, show: bool = False) -> Subscription:
    expanded = set(asked - {"entityUpdated"})
    if "entityUpdated" in asked:
        expanded |= {"attributeCreated", "attributeUpdated", "attributeDeleted"}
    view = View(
        TERMS, RenderOptions(), show_changes=show, deleted_as_null="attributeDeleted" in expanded
    )
    return Subscription(
        tenant="",
        id="urn:ngsi-ld:Subscription:1",
        doc={},
        created=0,
        expires=None,
        active=True,
        periodic=None,
        throttle=None,
        selectors=(),
        watched=frozenset(watched) if watched else None,
        triggers=frozenset(expanded),
        asked=frozenset(asked),
        selection=None,  # type: ignore[arg-type]
        names=None,
        compiled=None,
        filtered=False,
        view=view,
        endpoint=None,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("asked", "kind", "expected"),
    [
        ({"entityCreated"}, "created", "entityCreated"),
        ({"attributeCreated"}, "created", "attributeCreated"),
        ({"entityUpdated"}, "created", None),  # a new entity is no update
        ({"attributeUpdated"}, "updated", "attributeUpdated"),
        ({"entityUpdated"}, "updated", "entityUpdated"),
        ({"attributeDeleted"}, "deleted", "attributeDeleted"),
        ({"entityDeleted"}, "purged", "entityDeleted"),
        ({"entityUpdated"}, "expired", None),
    ],
)
def test_triggers(asked: set[str], kind: str, expected: str | None) -> None:
    before = entity(**{CAP: prop(1)}) if kind != "created" else None
    after = entity(**{CAP: prop(2)}) if kind in ("created", "updated") else None
    assert reason(sub(asked), change(kind, before, after)) == expected


def test_watched_attributes_narrow_attribute_triggers() -> None:
    c = change(
        "updated",
        entity(**{CAP: prop(1), NAME: prop("a")}),
        entity(**{CAP: prop(1), NAME: prop("b")}),
    )
    assert reason(sub({"attributeUpdated"}, {CAP}), c) is None
    assert reason(sub({"attributeUpdated"}, {NAME}), c) == "attributeUpdated"


def test_instances_are_compared_per_dataset() -> None:
    b = prop(1) + prop(2, datasetId="urn:ds:b") + prop(3, datasetId="urn:ds:c")
    a = prop(1) + prop(5, datasetId="urn:ds:b") + prop(9, datasetId="urn:ds:d")
    c = change("updated", entity(**{CAP: b}), entity(**{CAP: a}))
    assert (c.created, c.updated, c.deleted) == ({CAP}, {CAP}, {CAP})
    assert [i["value"] for i in c.removed[CAP]] == [3]
    assert sorted(i["value"] for i in c.before[CAP]) == [2, 3]


def test_a_deleted_instance_shows_as_null_and_with_its_previous_value() -> None:
    c = change("updated", entity(**{CAP: prop(1), NAME: prop("a")}), entity(**{CAP: prop(2)}))
    s = sub({"attributeUpdated", "attributeDeleted"}, show=True)
    data = entities(s.view, notified(s, c, "attributeUpdated"), None, NOW)
    assert data[0]["capacity"] == {"type": "Property", "value": 2, "previousValue": 1}
    assert data[0]["name"] == {
        "type": "Property",
        "value": "urn:ngsi-ld:null",
        "previousValue": "a",
    }


def test_a_deleted_entity() -> None:
    c = change("deleted", entity(**{CAP: prop(1)}), None)
    plain = sub({"entityDeleted"})
    body = entities(plain.view, notified(plain, c, "entityDeleted"), None, NOW)[0]
    assert body == {"id": "urn:ngsi-ld:Shelter:1", "type": "Shelter", "deletedAt": NOW}
    shown = sub({"entityDeleted"}, show=True)
    body = entities(shown.view, notified(shown, c, "entityDeleted"), None, NOW)[0]
    assert body["capacity"] == {"type": "Property", "value": "urn:ngsi-ld:null", "previousValue": 1}


@pytest.mark.parametrize(
    ("instance", "member", "null"),
    [
        ({"type": "Property", "value": 1}, "value", "urn:ngsi-ld:null"),
        ({"type": "Relationship", "object": "urn:a"}, "object", "urn:ngsi-ld:null"),
        (
            {"type": "LanguageProperty", "languageMap": {"ja": "佐賀"}},
            "languageMap",
            {"@none": "urn:ngsi-ld:null"},
        ),
        ({"type": "ListProperty", "valueList": [1]}, "valueList", ["urn:ngsi-ld:null"]),
    ],
)
def test_null_instances(instance: dict[str, Any], member: str, null: Any) -> None:
    out = null_instance({**instance, "createdAt": NOW, "datasetId": "urn:ds:1"}, NOW, True)
    assert out[member] == null and out["datasetId"] == "urn:ds:1" and out["deletedAt"] == NOW


def test_selectors_by_type_and_id() -> None:
    c = change("created", None, entity(**{CAP: prop(1)}))
    s = sub({"entityCreated"})
    s.selectors = (Selector(frozenset(), None, (frozenset({EX + "Other"}),)),)
    assert not selected(s, c)
    s.selectors = (
        Selector(frozenset({"urn:ngsi-ld:Shelter:1"}), None, (frozenset({EX + "Shelter"}),)),
    )
    assert selected(s, c)


def test_notification_envelope() -> None:
    view = View(
        TERMS,
        RenderOptions(),
        accept="application/ld+json",
        context_url="http://c/x",
        tenant="saga",
        receiver_info=(("X-Key", "v"),),
    )
    event = "0b9c1a4e-6f1d-4c53-9d55-3a3f1e0f7a10"
    nid, headers, body = notification(
        view, "urn:ngsi-ld:Subscription:1", [{"id": "e"}], [], None, event
    )
    assert nid.startswith("urn:ngsi-ld:Notification:")
    # the same change to the same subscription always gets the same id (redeliveries)
    again, _, _ = notification(view, "urn:ngsi-ld:Subscription:1", [{"id": "e"}], [], None, event)
    other, _, _ = notification(view, "urn:ngsi-ld:Subscription:2", [{"id": "e"}], [], None, event)
    assert again == nid != other
    assert headers == {"Content-Type": "application/ld+json", "NGSILD-Tenant": "saga", "X-Key": "v"}
    sent = orjson.loads(body)
    assert sent["id"] == nid and sent["data"] == [{"id": "e", "@context": "http://c/x"}]
