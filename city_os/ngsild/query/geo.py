"""Parser of the NGSI-LD Geoquery Language (GS CIM 009 v1.9.1 §4.10) → ``GeoQuery``.

Pure, no I/O. Accepts the GET form (``georel``, ``geometry``, ``coordinates`` as JSON text,
``geoproperty``) and the ``geoQ`` object of POST /entityOperations/query. The reference geometry
is validated per GeoJSON type (RFC 7946: positions of 2 or 3 finite numbers, longitude in
[-180, 180], latitude in [-90, 90], LineStrings of ≥ 2 positions, closed linear rings of ≥ 4
positions). Anything invalid raises ``BadRequestData``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final, cast

from city_os.errors import BadRequestData
from city_os.ngsild.query.ast import GeometryType, GeoQuery, GeoRel

DEFAULT_GEOPROPERTY: Final = "location"
_RELATIONS: Final[frozenset[str]] = frozenset(
    {"within", "contains", "intersects", "disjoint", "equals", "overlaps"}
)
_GEOMETRY_NAMES: Final[tuple[GeometryType, ...]] = (
    "Point",
    "LineString",
    "Polygon",
    "MultiPoint",
    "MultiLineString",
    "MultiPolygon",
)
_GEOMETRIES: Final[dict[str, GeometryType]] = {name.lower(): name for name in _GEOMETRY_NAMES}
# PositiveNumber: a JSON number without minus sign; zero is rejected after parsing.
_NEAR = re.compile(
    r"near;(maxDistance|minDistance)==((?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"
)
_PROPERTY = re.compile(r"[^\s\"'\\]+")
_MAX_COORDINATES_TEXT: Final = 1_000_000


def parse_geoq(
    georel: str | None,
    geometry: str | None,
    coordinates: str | None,
    geoproperty: str | None = None,
) -> GeoQuery | None:
    """The geoquery of a GET request, or None when no geoquery was asked for."""
    given = [p for p in (georel, geometry, coordinates) if p is not None]
    if not given:
        return None
    if len(given) != 3:
        raise BadRequestData("geoquery: georel, geometry and coordinates must be given together")
    assert georel is not None and geometry is not None and coordinates is not None
    return _build(georel, geometry, _parse_coordinates(coordinates), geoproperty)


def geoq_from_json(obj: Any) -> GeoQuery:
    """The ``geoQ`` member of a Query (POST /entityOperations/query, subscriptions)."""
    if not isinstance(obj, dict):
        raise BadRequestData("geoQ: must be a JSON object")
    georel, geometry, coordinates = obj.get("georel"), obj.get("geometry"), obj.get("coordinates")
    geoproperty = obj.get("geoproperty")
    if georel is None or geometry is None or coordinates is None:
        raise BadRequestData("geoQ: georel, geometry and coordinates are required")
    if not isinstance(georel, str) or not isinstance(geometry, str):
        raise BadRequestData("geoQ: georel and geometry must be strings")
    if geoproperty is not None and not isinstance(geoproperty, str):
        raise BadRequestData("geoQ: geoproperty must be a string")
    if isinstance(coordinates, str):
        coordinates = _parse_coordinates(coordinates)
    elif not isinstance(coordinates, list):
        raise BadRequestData("geoQ: coordinates must be an array (or its JSON text)")
    return _build(georel, geometry, coordinates, geoproperty)


def reference_geometry(geometry: Any, coordinates: Any, what: str = "ordering") -> dict[str, Any]:
    """A validated reference geometry (e.g. for ordering by distance, §4.23) as GeoJSON."""
    if not isinstance(geometry, str):
        raise BadRequestData(f"{what}: geometry must be a string")
    if isinstance(coordinates, str):
        coordinates = _parse_coordinates(coordinates)
    if not isinstance(coordinates, list):
        raise BadRequestData(f"{what}: coordinates must be an array (or its JSON text)")
    return _build("intersects", geometry, coordinates, None).geojson()


def _build(georel: str, geometry: str, coordinates: Any, geoproperty: str | None) -> GeoQuery:
    rel, max_distance, min_distance = _parse_georel(georel)
    geometry_type = _GEOMETRIES.get(geometry.lower())
    if geometry_type is None:
        raise BadRequestData(f"geoquery: unsupported geometry {geometry!r}")
    prop = DEFAULT_GEOPROPERTY if geoproperty is None else geoproperty
    if not _PROPERTY.fullmatch(prop):
        raise BadRequestData(f"geoquery: invalid geoproperty {prop!r}")
    checked = _CHECKERS[geometry_type](coordinates)
    return GeoQuery(rel, geometry_type, checked, prop, max_distance, min_distance)


def _parse_georel(text: str) -> tuple[GeoRel, float | None, float | None]:
    if text in _RELATIONS:
        return cast(GeoRel, text), None, None
    m = _NEAR.fullmatch(text)
    if m is None:
        raise BadRequestData(
            f"geoquery: invalid georel {text!r} (expected near;maxDistance==N, "
            "near;minDistance==N, within, contains, intersects, disjoint, equals or overlaps)"
        )
    distance = float(m.group(2))
    if distance == 0 or not math.isfinite(distance):
        raise BadRequestData("geoquery: the distance of near must be a positive number")
    if m.group(1) == "maxDistance":
        return "near", distance, None
    return "near", None, distance


def _parse_coordinates(text: str) -> Any:
    if len(text) > _MAX_COORDINATES_TEXT:
        raise BadRequestData("geoquery: coordinates too long")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadRequestData(f"geoquery: coordinates are not a JSON array: {text[:80]!r}") from exc


# --- validation per geometry type ----------------------------------------------------------------


def _fail(message: str) -> BadRequestData:
    return BadRequestData(f"geoquery: {message}")


def _array(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(f"{what} must be an array")
    return value


def _position(value: Any) -> tuple[float, ...]:
    items = _array(value, "a position")
    if len(items) not in (2, 3):
        raise _fail("a position has 2 or 3 numbers")
    numbers: list[float] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise _fail("a position holds numbers only")
        number = float(item)
        if not math.isfinite(number):
            raise _fail("coordinates must be finite numbers")
        numbers.append(number)
    lon, lat = numbers[0], numbers[1]
    if not -180.0 <= lon <= 180.0:
        raise _fail(f"longitude {lon} out of range [-180, 180]")
    if not -90.0 <= lat <= 90.0:
        raise _fail(f"latitude {lat} out of range [-90, 90]")
    return tuple(numbers)


def _point(value: Any) -> tuple[float, ...]:
    return _position(value)


def _positions(value: Any, minimum: int, what: str) -> tuple[tuple[float, ...], ...]:
    items = _array(value, what)
    if len(items) < minimum:
        raise _fail(f"{what} needs at least {minimum} position(s)")
    return tuple(_position(item) for item in items)


def _multipoint(value: Any) -> tuple[tuple[float, ...], ...]:
    return _positions(value, 1, "a MultiPoint")


def _linestring(value: Any) -> tuple[tuple[float, ...], ...]:
    return _positions(value, 2, "a LineString")


def _polygon(value: Any) -> tuple[tuple[tuple[float, ...], ...], ...]:
    rings = _array(value, "a Polygon")
    if not rings:
        raise _fail("a Polygon needs at least one linear ring")
    checked = []
    for ring in rings:
        positions = _positions(ring, 4, "a linear ring")
        if positions[0] != positions[-1]:
            raise _fail("a linear ring must be closed (first position = last position)")
        checked.append(positions)
    return tuple(checked)


def _multi(value: Any, part: Any, what: str) -> tuple[Any, ...]:
    items = _array(value, what)
    if not items:
        raise _fail(f"{what} needs at least one member")
    return tuple(part(item) for item in items)


_CHECKERS: Final[dict[GeometryType, Any]] = {
    "Point": _point,
    "MultiPoint": _multipoint,
    "LineString": _linestring,
    "MultiLineString": lambda v: _multi(v, _linestring, "a MultiLineString"),
    "Polygon": _polygon,
    "MultiPolygon": lambda v: _multi(v, _polygon, "a MultiPolygon"),
}
