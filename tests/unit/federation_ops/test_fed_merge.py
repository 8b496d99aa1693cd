"""Merging of entity fragments by registration mode (federation/merge.py)."""

from __future__ import annotations

from typing import Any

import pytest

from city_os.federation.merge import Fragment, Origin, group_by_id, merge_entity
from city_os.ngsild.representation import EntityRecord

SPEED = "https://uri.fiware.org/ns/data-models#speed"
BRAND = "https://uri.fiware.org/ns/data-models#brandName"
VEHICLE = "https://uri.fiware.org/ns/data-models#Vehicle"
CAR = "https://uri.fiware.org/ns/data-models#Car"


def record(
    attrs: dict[str, list[dict[str, Any]]],
    *,
    types: list[str] | None = None,
    scopes: list[str] | None = None,
    created: str = "2026-01-01T00:00:00Z",
    modified: str = "2026-01-01T00:00:00Z",
) -> EntityRecord:
    return EntityRecord(
        "urn:ngsi-ld:Vehicle:1", types or [VEHICLE], attrs, scopes, created, modified
    )


def prop(value: Any, **members: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **members}


def frag(rec: EntityRecord, origin: Origin = "local", owned: set[str] | None = None) -> Fragment:
    return Fragment(rec, origin, frozenset(owned) if owned is not None else None)


def test_single_fragment_is_returned_as_is() -> None:
    rec = record({SPEED: [prop(1)]})
    assert merge_entity([frag(rec)]) is rec


def test_inclusive_adds_attributes_types_and_scopes() -> None:
    local = record({SPEED: [prop(1)]}, scopes=["/Saga"])
    remote = record({BRAND: [prop("Mercedes")]}, types=[CAR], scopes=["/Ogi", "/Saga"])
    merged = merge_entity([frag(local), frag(remote, "inclusive")])
    assert merged.attrs == {SPEED: [prop(1)], BRAND: [prop("Mercedes")]}
    assert merged.types == [VEHICLE, CAR]
    assert merged.scopes == ["/Saga", "/Ogi"]


@pytest.mark.parametrize(
    ("local_members", "remote_members", "winner"),
    [
        ({"observedAt": "2026-01-01T00:00:00Z"}, {"observedAt": "2026-02-01T00:00:00Z"}, "remote"),
        ({"observedAt": "2026-03-01T00:00:00Z"}, {"observedAt": "2026-02-01T00:00:00Z"}, "local"),
        ({}, {"observedAt": "2026-02-01T00:00:00Z"}, "remote"),
        ({"observedAt": "2026-02-01T00:00:00Z"}, {}, "local"),
        ({"modifiedAt": "2026-01-01T00:00:00Z"}, {"modifiedAt": "2026-02-01T00:00:00Z"}, "remote"),
        ({"modifiedAt": "2026-05-01T00:00:00Z"}, {"modifiedAt": "2026-02-01T00:00:00Z"}, "local"),
        ({}, {}, "local"),  # a tie: the first fragment (the local store) wins
    ],
)
def test_same_dataset_most_recent_instance_wins(
    local_members: dict[str, str], remote_members: dict[str, str], winner: str
) -> None:
    local = record({SPEED: [prop("local", **local_members)]})
    remote = record({SPEED: [prop("remote", **remote_members)]})
    merged = merge_entity([frag(local), frag(remote, "inclusive")])
    assert [i["value"] for i in merged.attrs[SPEED]] == [winner]


def test_distinct_datasets_are_all_kept() -> None:
    local = record({SPEED: [prop(1), prop(2, datasetId="urn:ds:a")]})
    remote = record({SPEED: [prop(3, datasetId="urn:ds:b"), prop(4, datasetId="urn:ds:a")]})
    merged = merge_entity([frag(local), frag(remote, "inclusive")])
    by_ds = {i.get("datasetId"): i["value"] for i in merged.attrs[SPEED]}
    assert by_ds == {None: 1, "urn:ds:a": 2, "urn:ds:b": 3}


def test_exclusive_owns_its_attributes_even_when_older() -> None:
    local = record(
        {SPEED: [prop("stale", observedAt="2026-09-01T00:00:00Z")], BRAND: [prop("local")]}
    )
    remote = record({SPEED: [prop("owned", observedAt="2026-01-01T00:00:00Z")], BRAND: [prop("x")]})
    merged = merge_entity([frag(local), frag(remote, "exclusive", {SPEED})])
    assert merged.attrs[SPEED] == [prop("owned", observedAt="2026-01-01T00:00:00Z")]
    # brandName is not registered by the exclusive source: normal rules (tie → local)
    assert merged.attrs[BRAND] == [prop("local")]


def test_redirect_without_attribute_list_owns_everything_it_sends() -> None:
    local = record({SPEED: [prop("local", observedAt="2026-09-01T00:00:00Z")]})
    remote = record({SPEED: [prop("redirected")]})
    merged = merge_entity([frag(local), frag(remote, "redirect")])
    assert merged.attrs[SPEED] == [prop("redirected")]


def test_auxiliary_only_fills_gaps() -> None:
    local = record({SPEED: [prop("local")]})
    aux = record(
        {SPEED: [prop("aux", observedAt="2030-01-01T00:00:00Z")], BRAND: [prop("aux-brand")]}
    )
    merged = merge_entity([frag(local), frag(aux, "auxiliary")])
    assert merged.attrs == {SPEED: [prop("local")], BRAND: [prop("aux-brand")]}


def test_auxiliary_alone_is_returned() -> None:
    aux = record({BRAND: [prop("aux")]})
    assert merge_entity([frag(aux, "auxiliary")]).attrs == {BRAND: [prop("aux")]}


def test_system_timestamps_span_the_fragments() -> None:
    a = record({}, created="2026-02-01T00:00:00Z", modified="2026-02-02T00:00:00Z")
    b = record({}, created="2026-01-01T00:00:00Z", modified="2026-03-01T00:00:00Z")
    merged = merge_entity([frag(a), frag(b, "inclusive")])
    assert (merged.created_at, merged.modified_at) == (
        "2026-01-01T00:00:00Z",
        "2026-03-01T00:00:00Z",
    )


def test_group_by_id_keeps_first_seen_order() -> None:
    def rec(entity_id: str) -> Fragment:
        return frag(EntityRecord(entity_id, [VEHICLE], {}, None, "", ""))

    groups = group_by_id([rec("urn:b"), rec("urn:a"), rec("urn:b")])
    assert [[f.record.id for f in g] for g in groups] == [["urn:b", "urn:b"], ["urn:a"]]
