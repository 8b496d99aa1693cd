"""parse_geoq / geoq_from_json (GS CIM 009 §4.10): relations, geometries, validation errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from city_os.errors import BadRequestData
from city_os.ngsild.query.ast import GeoQuery
from city_os.ngsild.query.geo import geoq_from_json, parse_geoq
from city_os.store.postgres.query_geo_sql import geo_to_sql, near_box

SQUARE = "[[[130.30,33.30],[130.33,33.30],[130.33,33.32],[130.30,33.32],[130.30,33.30]]]"
SQUARE_T = ((130.30, 33.30), (130.33, 33.30), (130.33, 33.32), (130.30, 33.32), (130.30, 33.30))


def test_nothing_asked() -> None:
    assert parse_geoq(None, None, None, None) is None
    assert parse_geoq(None, None, None, "location") is None


VALID: list[tuple[tuple[str, str, str, str | None], GeoQuery]] = [
    (
        ("near;maxDistance==2000", "Point", "[8,40]", "observationSpace"),
        GeoQuery("near", "Point", (8.0, 40.0), "observationSpace", 2000.0, None),
    ),
    (
        ("near;minDistance==0.5", "Point", "[130.297, 33.264]", None),
        GeoQuery("near", "Point", (130.297, 33.264), "location", None, 0.5),
    ),
    (
        ("near;maxDistance==1e3", "Point", "[8,40,100]", None),
        GeoQuery("near", "Point", (8.0, 40.0, 100.0), "location", 1000.0, None),
    ),
    (("within", "Polygon", SQUARE, None), GeoQuery("within", "Polygon", (SQUARE_T,))),
    (("contains", "point", "[1,2]", None), GeoQuery("contains", "Point", (1.0, 2.0))),
    (("intersects", "Polygon", SQUARE, None), GeoQuery("intersects", "Polygon", (SQUARE_T,))),
    (("disjoint", "Point", "[-180,-90]", None), GeoQuery("disjoint", "Point", (-180.0, -90.0))),
    (("equals", "Point", "[180,90]", None), GeoQuery("equals", "Point", (180.0, 90.0))),
    (("overlaps", "Polygon", SQUARE, None), GeoQuery("overlaps", "Polygon", (SQUARE_T,))),
    (
        ("intersects", "LineString", "[[1,2],[3,4]]", None),
        GeoQuery("intersects", "LineString", ((1.0, 2.0), (3.0, 4.0))),
    ),
    (
        ("within", "MultiPoint", "[[1,2]]", None),
        GeoQuery("within", "MultiPoint", ((1.0, 2.0),)),
    ),
    (
        ("intersects", "MultiLineString", "[[[1,2],[3,4]],[[5,6],[7,8]]]", None),
        GeoQuery(
            "intersects",
            "MultiLineString",
            (((1.0, 2.0), (3.0, 4.0)), ((5.0, 6.0), (7.0, 8.0))),
        ),
    ),
    (
        ("within", "MultiPolygon", "[" + SQUARE + "]", None),
        GeoQuery("within", "MultiPolygon", ((SQUARE_T,),)),
    ),
]


@pytest.mark.parametrize(("args", "expected"), VALID)
def test_parses(args: tuple[str, str, str, str | None], expected: GeoQuery) -> None:
    assert parse_geoq(*args) == expected


def test_geojson() -> None:
    geo = parse_geoq("within", "Polygon", SQUARE, None)
    assert geo is not None
    assert geo.geojson() == {"type": "Polygon", "coordinates": [[list(p) for p in SQUARE_T]]}


ERRORS: list[tuple[tuple[str | None, str | None, str | None], str]] = [
    (("within", None, None), "must be given together"),
    ((None, "Point", "[1,2]"), "must be given together"),
    (("within", "Point", None), "must be given together"),
    (("near", "Point", "[1,2]"), "invalid georel"),
    (("near;maxDistance==0", "Point", "[1,2]"), "positive"),
    (("near;maxDistance==-5", "Point", "[1,2]"), "invalid georel"),
    (("near;maxDistance=5", "Point", "[1,2]"), "invalid georel"),
    (("near;distance==5", "Point", "[1,2]"), "invalid georel"),
    (("near;maxDistance==1e999", "Point", "[1,2]"), "positive"),
    (("coveredBy", "Point", "[1,2]"), "invalid georel"),
    (("within", "GeometryCollection", "[1,2]"), "unsupported geometry"),
    (("within", "Circle", "[1,2]"), "unsupported geometry"),
    (("within", "Point", "1,2"), "not a JSON array"),
    (("within", "Point", "[1,2"), "not a JSON array"),
    (("within", "Point", "[1]"), "2 or 3 numbers"),
    (("within", "Point", "[1,2,3,4]"), "2 or 3 numbers"),
    (("within", "Point", '["1",2]'), "numbers only"),
    (("within", "Point", "[true,2]"), "numbers only"),
    (("within", "Point", "[181,2]"), "longitude"),
    (("within", "Point", "[1,-91]"), "latitude"),
    (("within", "Point", "[[1,2]]"), "2 or 3 numbers"),
    (("within", "Point", "{}"), "must be an array"),
    (("within", "LineString", "[[1,2]]"), "at least 2"),
    (("within", "LineString", "[1,2]"), "must be an array"),
    (("within", "MultiPoint", "[]"), "at least 1"),
    (("within", "Polygon", "[]"), "at least one linear ring"),
    (("within", "Polygon", "[[[1,2],[3,4],[1,2]]]"), "at least 4"),
    (("within", "Polygon", "[[[1,2],[3,4],[5,6],[7,8]]]"), "closed"),
    (("within", "Polygon", "[[1,2],[3,4],[5,6],[1,2]]"), "at least 4"),
    (("within", "Polygon", "[[1,2,3,4]]"), "must be an array"),
    (("within", "MultiPolygon", "[]"), "at least one member"),
    (("within", "MultiPolygon", SQUARE), "at least 4"),
    (("within", "MultiLineString", "[[1,2]]"), "must be an array"),
]


@pytest.mark.parametrize(("args", "message"), ERRORS)
def test_errors(args: tuple[str | None, str | None, str | None], message: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_geoq(*args, None)
    assert message in info.value.detail


def test_invalid_geoproperty() -> None:
    with pytest.raises(BadRequestData, match="geoproperty"):
        parse_geoq("within", "Point", "[1,2]", "has space")


JSON_VALID: list[tuple[Any, GeoQuery]] = [
    (
        {"georel": "near;maxDistance==10", "geometry": "Point", "coordinates": [1, 2]},
        GeoQuery("near", "Point", (1.0, 2.0), "location", 10.0),
    ),
    (
        {"georel": "within", "geometry": "Polygon", "coordinates": SQUARE, "geoproperty": "area"},
        GeoQuery("within", "Polygon", (SQUARE_T,), "area"),
    ),
]


@pytest.mark.parametrize(("obj", "expected"), JSON_VALID)
def test_from_json(obj: Any, expected: GeoQuery) -> None:
    assert geoq_from_json(obj) == expected


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], "must be a JSON object"),
        ({"georel": "within", "geometry": "Point"}, "required"),
        ({"georel": 1, "geometry": "Point", "coordinates": [1, 2]}, "must be strings"),
        ({"georel": "within", "geometry": "Point", "coordinates": 5}, "must be an array"),
        (
            {"georel": "within", "geometry": "Point", "coordinates": [1, 2], "geoproperty": 3},
            "geoproperty must be a string",
        ),
    ],
)
def test_from_json_errors(obj: Any, message: str) -> None:
    with pytest.raises(BadRequestData) as info:
        geoq_from_json(obj)
    assert message in info.value.detail


@given(st.text(max_size=30), st.text(max_size=12), st.text(max_size=30))
def test_any_text_parses_or_is_bad_request(georel: str, geometry: str, coordinates: str) -> None:
    try:
        parse_geoq(georel, geometry, coordinates, None)
    except BadRequestData:
        pass


@given(
    st.floats(-180, 180),
    st.floats(-90, 90),
    st.floats(0.001, 1e7),
    st.sampled_from(["maxDistance", "minDistance"]),
)
def test_sql_text_never_depends_on_values(lon: float, lat: float, d: float, kind: str) -> None:
    geo = parse_geoq(f"near;{kind}=={d!r}".replace("e+", "e"), "Point", f"[{lon!r},{lat!r}]")
    assert geo is not None
    sql, args = geo_to_sql(geo, lambda t: "https://x/" + t)
    # Two shapes only: with the lon/lat box of near_box (maxDistance, where one exists) or
    # without; every value is a bound argument either way.
    boxed = kind == "maxDistance" and near_box(geo) is not None
    reference = parse_geoq(f"near;{kind}==1", "Point", "[0,0]" if boxed else "[0,89.9]")
    assert reference is not None
    assert sql == geo_to_sql(reference, lambda t: "https://x/" + t)[0]
    assert "ST_DWithin(g.geom::geography" in sql
    assert len(args) == (9 if boxed else 3)  # + box corners and the reference lon, lat
