"""Version preference (§4.3.6.8): Prefer parsing and reformatting for earlier versions."""

from __future__ import annotations

from typing import Any

import pytest

from city_os.ngsild.versions import for_version, preferred_version


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("ngsi-ld=1.5", (1, 5)),
        ("return=minimal, ngsi-ld=1.9", (1, 9)),
        ("ngsi-ld=2.0", None),
        ("ngsi-ld=one", None),
        ("NGSI-LD=1.0", (1, 0)),  # RFC 9110: the name is case-insensitive
        ('ngsi-ld="1.0"', (1, 0)),  # RFC 7240: a token or a quoted string
        ("ngsi-ld = 1.6 ;q=0.1", (1, 6)),  # parameters after ";"
        ("respond-async, Ngsi-Ld=1.0", (1, 0)),
        ("respond-async", None),
        ("x-ngsi-ld=1.0", None),
    ],
)
def test_preferred_version(header: str | None, expected: tuple[int, int] | None) -> None:
    assert preferred_version(header) == expected


VOCAB = {"type": "VocabProperty", "vocab": "commercial"}


@pytest.mark.parametrize(
    ("attr", "version", "expected"),
    [
        (VOCAB, (1, 5), {"type": "Property", "value": "commercial"}),
        (VOCAB, (1, 9), VOCAB),
        ({"vocab": "x"}, (1, 5), "x"),  # concise
        (
            {"type": "JsonProperty", "json": {"a": 1}},
            (1, 7),
            {"type": "Property", "value": {"a": 1}},
        ),
        (
            {"type": "ListRelationship", "objectList": [{"object": "urn:a"}]},
            (1, 6),
            {"type": "Relationship", "object": ["urn:a"]},
        ),
        ({"type": "Property", "value": 1}, (1, 3), {"type": "Property", "value": 1}),
    ],
)
def test_for_version(attr: Any, version: tuple[int, int], expected: Any) -> None:
    body, altered = for_version({"id": "urn:x", "a": attr}, version)
    assert body == {"id": "urn:x", "a": expected}
    assert altered == (expected != attr)
