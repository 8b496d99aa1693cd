"""JSON-null members of a GeoJSON geometry (IETF RFC 7946 §5, §6.1): read as absent, except the
required type and coordinates — docs/interoperability.md."""

from __future__ import annotations

from typing import Any

import pytest

from city_os.core.contexts import bundled_documents
from city_os.errors import BadRequestData
from city_os.ngsild.attributes import parse_instance
from city_os.ngsild.geometry import check_geometry, without_null_members
from city_os.ngsild.jsonld import TermMap

POINT = {"type": "Point", "coordinates": [130.3, 33.25]}
NOW = "2026-12-01T00:00:00Z"


def test_optional_null_members_are_dropped() -> None:
    assert without_null_members({**POINT, "bbox": None, "crs": None}) == POINT
    assert without_null_members(POINT) is POINT  # nothing to drop: no copy
    kept = without_null_members({"type": None, "coordinates": None, "bbox": None})
    assert kept == {"type": None, "coordinates": None}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({**POINT, "bbox": [1, 2, 3]}, "bbox must be an array of 4 or 6 numbers"),
        ({**POINT, "bbox": [1, 2, 3, True]}, "bbox must be"),
        ({**POINT, "bbox": {"a": 1}}, "bbox must be"),
    ],
)
def test_a_bbox_must_be_numbers(value: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequestData) as info:
        check_geometry("location", value)
    assert message in info.value.detail


def test_valid_bboxes() -> None:
    assert check_geometry("l", {**POINT, "bbox": [130, 33, 131, 34]})["bbox"] == [130, 33, 131, 34]
    assert check_geometry("l", {**POINT, "bbox": [130, 33, 0, 131, 34, 9.5]})


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "GeoProperty", "value": {**POINT, "bbox": None}},
        {"value": {**POINT, "bbox": None}},  # type inferred
        {**POINT, "bbox": None},  # concise
    ],
)
def test_parsed_instance_has_no_null(raw: dict[str, Any]) -> None:
    inst = parse_instance("location", raw, TermMap(None, bundled_documents()), NOW)
    assert inst["type"] == "GeoProperty" and inst["value"] == POINT
