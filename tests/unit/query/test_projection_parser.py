"""parse_projection: pick/omit lists with nested Linked Entity selections (§4.21, §4.5.23)."""

from __future__ import annotations

import pytest

from city_os.errors import BadRequestData
from city_os.ngsild.query.projection import Projection, parse_projection

VALID: list[tuple[str, Projection]] = [
    ("name", (("name", None),)),
    ("id,name", (("id", None), ("name", None))),
    ("id|name", (("id", None), ("name", None))),
    (" id , name ", (("id", None), ("name", None))),
    ("locatedAt{name}", (("locatedAt", (("name", None),)),)),
    (
        "id,locatedAt{id,name,isInCountry{id,description}}",
        (
            ("id", None),
            (
                "locatedAt",
                (
                    ("id", None),
                    ("name", None),
                    ("isInCountry", (("id", None), ("description", None))),
                ),
            ),
        ),
    ),
    ("a{b},c", (("a", (("b", None),)), ("c", None))),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_parses(text: str, expected: Projection) -> None:
    assert parse_projection(text) == expected


ERRORS: list[tuple[str, str]] = [
    ("", "expected a name, found end of input at position 1"),
    ("a,,b", "expected a name, found ',' at position 3"),
    ("a,", "expected a name, found end of input"),
    ("a{}", "expected a name, found '}' at position 3"),
    ("{a}", "expected a name, found '{' at position 1"),
    ("a{b", "expected '}', found end of input"),
    ("a}", "unexpected '}' at position 2"),
    ("a{b}c", "unexpected 'c' at position 5"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_projection(text, "pick")
    assert message in info.value.detail
    assert info.value.detail.startswith("pick: ")
