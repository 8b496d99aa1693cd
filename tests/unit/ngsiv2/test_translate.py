"""v2 attributes <-> NGSI-LD instances: the documented mapping rules, rule by rule."""

from __future__ import annotations

from typing import Any

import pytest

from city_os.errors import BadRequestData
from city_os.ngsiv2.ids import id_pattern, ld_id, v2_id
from city_os.ngsiv2.translate import V2_TYPE, attr_to_ld, implied_type


@pytest.mark.parametrize(
    ("name", "v2", "ld"),
    [
        ("t", {"value": 1}, {"type": "Property", "value": 1}),
        ("t", {"type": "Number", "value": None},
         {"type": "Property", "value": "", V2_TYPE: {"type": "Property", "value": "None"}}),
        ("t", {"type": "Integer", "value": 1},
         {"type": "Property", "value": 1, V2_TYPE: {"type": "Property", "value": "Integer"}}),
        ("loc", {"type": "geo:json", "value": {"type": "Point", "coordinates": [1, 2]}},
         {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}}),
        ("loc", {"type": "geo:point", "value": "33.2, 130.3"},
         {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [130.3, 33.2]},
          V2_TYPE: {"type": "Property", "value": "geo:point"}}),
        ("owner", {"type": "Relationship", "value": "City1"},
         {"type": "Relationship", "object": "urn:ngsiv:City1"}),
        ("refCity", {"value": "urn:ngsi-ld:City:1"},
         {"type": "Relationship", "object": "urn:ngsi-ld:City:1"}),
        ("d", {"type": "DateTime", "value": "2026-12-01T10:00:00+09:00"},
         {"type": "Property",
          "value": {"@type": "DateTime", "@value": "2026-12-01T01:00:00.000Z"}}),
        ("t", {"value": 2,
               "metadata": {"TimeInstant": {"type": "DateTime", "value": "2026-12-01T00:00:00Z"},
                            "unitCode": {"value": "CEL"}, "acc": {"value": 0.1}}},
         {"type": "Property", "value": 2, "observedAt": "2026-12-01T00:00:00.000Z",
          "unitCode": "CEL", "acc": {"type": "Property", "value": 0.1}}),
    ],
)  # fmt: skip
def test_attribute_rules(name: str, v2: dict[str, Any], ld: dict[str, Any]) -> None:
    assert attr_to_ld(name, v2) == ld


@pytest.mark.parametrize(
    ("name", "v2"),
    [
        ("t", {"value": "a<b"}),
        ("t", 5),
        ("id", {"value": 1}),
        ("bad name", {"value": 1}),
        ("t", {"value": 1, "extra": 2}),
        ("t", {"value": 1, "metadata": {"value": {"value": 1}}}),
    ],
)
def test_refused(name: str, v2: Any) -> None:
    with pytest.raises(BadRequestData):
        attr_to_ld(name, v2)


def test_ids_and_types() -> None:
    assert ld_id("Room1") == "urn:ngsiv:Room1"
    assert ld_id("urn:ngsi-ld:Room:1") == "urn:ngsi-ld:Room:1"
    assert v2_id(ld_id("Room1")) == "Room1"
    assert id_pattern("^Room") == "^(?:urn:ngsiv:)?(?:Room)"
    assert id_pattern("Room") == "Room"
    assert [implied_type(v) for v in (1, 1.5, "x", True, {}, [])] == [
        "Number", "Number", "Text", "Boolean", "StructuredValue", "StructuredValue",
    ]  # fmt: skip
