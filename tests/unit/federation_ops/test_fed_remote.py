"""federation/remote.py: the fast reading of a source's entity gives exactly the record the full
parser gives (or None exactly where the parser refuses), for plain and unusual shapes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from city_os.core.contexts import bundled_documents
from city_os.core.request import RequestContext
from city_os.errors import NgsiLdError
from city_os.federation.remote import Reader, _parsed, remote_record
from city_os.ngsild.jsonld import CORE_CONTEXT_URL, TermMap

CTX = RequestContext("t", TermMap(CORE_CONTEXT_URL, bundled_documents()), "2030-01-01T00:00:00Z")
T1, T2 = "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"
POINT = {"type": "Point", "coordinates": [130.3, 33.2]}


def _entity(**attrs: Any) -> dict[str, Any]:
    return {"id": "urn:ngsi-ld:Site:1", "type": "Site", **attrs}


VALID = [
    _entity(),
    _entity(createdAt=T1, modifiedAt=T2),
    _entity(rank={"type": "Property", "value": 3}),
    _entity(rank={"type": "Property", "value": 3.5, "createdAt": T1, "modifiedAt": T2}),
    _entity(flag={"type": "Property", "value": False}, name={"type": "Property", "value": "x"}),
    _entity(near={"type": "Relationship", "object": "urn:ngsi-ld:Site:2", "modifiedAt": T2}),
    _entity(location={"type": "GeoProperty", "value": POINT, "createdAt": T1}),
    _entity(area={"type": "GeoProperty", "value": POINT}),
    _entity(location={"type": "GeoProperty", "value": {**POINT, "bbox": [1, 2, 3, 4]}}),
    _entity(location={"type": "GeoProperty", "value": {**POINT, "bbox": None}}),
    # the parser's shapes: concise, structured values, members, sub-attributes, datasets
    _entity(rank=3, name="plain"),
    _entity(rank={"value": 3}),
    _entity(info={"type": "Property", "value": {"a": [1, 2]}}),
    _entity(rank={"type": "Property", "value": 3, "unitCode": "C62", "observedAt": T1}),
    _entity(rank={"type": "Property", "value": 3, "accuracy": {"type": "Property", "value": 1}}),
    _entity(
        rank=[
            {"type": "Property", "value": 1},
            {"type": "Property", "value": 2, "datasetId": "urn:d:2"},
        ]
    ),
    _entity(near={"type": "Relationship", "object": ["urn:a:1", "urn:a:2"]}),
    _entity(label={"type": "LanguageProperty", "languageMap": {"ja": "佐賀", "en": "Saga"}}),
    _entity(scope="/Saga/Ogi", rank={"type": "Property", "value": 1}),
    _entity(expiresAt="2031-01-01T00:00:00Z", rank={"type": "Property", "value": 1}),
    {"@id": "urn:ngsi-ld:Site:1", "@type": "Site"},
    _entity(type=["Site", "Shelter"]),
]

INVALID = [
    {"type": "Site"},
    {"id": "not a uri", "type": "Site"},
    {"id": "urn:ngsi-ld:Site:1"},
    _entity(rank={"type": "Property", "value": None}),
    _entity(rank={"type": "Property", "value": "urn:ngsi-ld:null"}),
    _entity(rank={"type": "Property"}),
    _entity(rank={"type": "Unknown", "value": 1}),
    _entity(near={"type": "Relationship", "object": "no uri"}),
    _entity(near={"type": "Relationship", "object": "urn:ngsi-ld:null"}),
    _entity(location={"type": "Property", "value": 1}),
    _entity(location={"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1]}}),
    _entity(location={"type": "GeoProperty", "value": {"type": "Circle", "coordinates": [1, 2]}}),
    _entity(observedAt={"type": "Property", "value": 1}),
    _entity(previousValue={"type": "Property", "value": 1}),
    _entity(**{"bad name": {"type": "Property", "value": 1}}),
]


def _reference(body: dict[str, Any]) -> Any:
    try:
        return _parsed(CTX, copy.deepcopy(body))
    except NgsiLdError:
        return None


@pytest.mark.parametrize("body", VALID, ids=range(len(VALID)))
def test_same_record_as_the_parser(body: dict[str, Any]) -> None:
    expected = _reference(body)
    assert expected is not None
    assert remote_record(CTX, body) == expected


@pytest.mark.parametrize("body", INVALID, ids=range(len(INVALID)))
def test_refused_where_the_parser_refuses(body: dict[str, Any]) -> None:
    assert _reference(body) is None
    assert remote_record(CTX, body) is None


def test_source_times_kept_and_none_invented() -> None:
    body = _entity(
        rank={"type": "Property", "value": 3, "createdAt": T1},
        seen={"type": "Property", "value": 1, "observedAt": T1, "modifiedAt": T2},
    )
    record = remote_record(CTX, body)
    assert record is not None
    rank, seen = (record.attrs[CTX.terms.expand_attr(n) or ""][0] for n in ("rank", "seen"))
    assert rank == {"type": "Property", "value": 3, "createdAt": T1}
    assert seen["modifiedAt"] == T2 and "createdAt" not in seen
    assert (record.created_at, record.modified_at) == ("", "")


def test_not_an_object() -> None:
    assert remote_record(CTX, ["urn:x"]) is None


def test_one_reader_for_a_whole_answer() -> None:
    """Names and types checked once per answer: a later entity with a bad member is still
    refused, and every entity gets a record of its own."""
    reader = Reader(CTX)
    bodies = [
        _entity(id=f"urn:ngsi-ld:Site:{n}", rank={"type": "Property", "value": n}) for n in range(3)
    ]
    bodies.append(_entity(observedAt={"type": "Property", "value": 1}))
    records = [reader.record(b) for b in bodies]
    assert [r.id if r else None for r in records] == [
        "urn:ngsi-ld:Site:0",
        "urn:ngsi-ld:Site:1",
        "urn:ngsi-ld:Site:2",
        None,
    ]
    assert records[0] is not None and records[1] is not None
    assert records[0].types is not records[1].types
    assert records[0] == _reference(bodies[0])


@pytest.mark.parametrize(
    "coordinates", [[180, 90], [-180.0, -90, 12.5], [181, 0], [0, 91], [True, 0], [1], [1, 2, 3, 4]]
)
def test_points_checked_like_the_parser(coordinates: list[Any]) -> None:
    body = _entity(
        location={"type": "GeoProperty", "value": {"type": "Point", "coordinates": coordinates}}
    )
    assert remote_record(CTX, body) == _reference(body)
