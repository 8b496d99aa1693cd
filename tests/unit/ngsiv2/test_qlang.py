"""The v2 Simple Query Language and geo parameters, rewritten into NGSI-LD (table-driven)."""

from __future__ import annotations

import pytest

from city_os.errors import BadRequestData
from city_os.ngsiv2.qlang import parse_v2_geo, to_ngsild_q


@pytest.mark.parametrize(
    ("q", "mq", "expected"),
    [
        ("temperature>20", None, "temperature>20"),
        ("a==1..5", None, "a==1..5"),
        ("a==x,y", None, 'a=="x","y"'),
        ("name==Pepe", None, 'name=="Pepe"'),
        ("name=='a;b'", None, 'name=="a;b"'),
        ("name:Pepe", None, 'name=="Pepe"'),
        ("!flag;flag2", None, "!flag;flag2"),
        ("when>2026-01-01T00:00:00Z", None, "when>2026-01-01T00:00:00Z"),
        ("when>2026-01-01", None, "when>2026-01-01T00:00:00Z"),
        ("when<2026-01-01T10:00:00", None, "when<2026-01-01T10:00:00Z"),
        ("ok==true", None, "ok==true"),
        ("address.city==Saga", None, 'address[city]=="Saga"'),
        ("name~=^Sa.a", None, 'name~="^Sa.a"'),
        ("refRoom==Room1", None, 'refRoom=="Room1",urn:ngsiv:Room1'),
        (None, "temperature.accuracy>0.5", "temperature.accuracy>0.5"),
        (None, "temperature.TimeInstant>2026-01-01", "temperature.observedAt>2026-01-01T00:00:00Z"),
        ("a>1", "a.m.k==x", 'a>1;a.m[k]=="x"'),
        (None, None, None),
    ],
)
def test_rewrite(q: str | None, mq: str | None, expected: str | None) -> None:
    assert to_ngsild_q(q, mq) == expected


@pytest.mark.parametrize(
    ("q", "mq"), [("a==", None), ("a=='open", None), (None, "justattr"), ("a b>1", None)]
)
def test_refused(q: str | None, mq: str | None) -> None:
    with pytest.raises(BadRequestData):
        to_ngsild_q(q, mq)


def test_geo() -> None:
    near = parse_v2_geo("near;maxDistance:1000", "point", "33.25,130.3")
    assert near is not None
    assert (near.georel, near.max_distance, near.coordinates) == ("near", 1000.0, (130.3, 33.25))
    box = parse_v2_geo("coveredBy", "box", "33,130;34,131")
    assert box is not None
    assert box.georel == "within"
    assert box.geojson()["coordinates"] == [
        [[130.0, 33.0], [131.0, 33.0], [131.0, 34.0], [130.0, 34.0], [130.0, 33.0]]
    ]
    assert parse_v2_geo(None, None, None) is None
    with pytest.raises(BadRequestData):
        parse_v2_geo("near", "circle", "1,2")
    with pytest.raises(BadRequestData):
        parse_v2_geo("intersects", "point", "1;2")
