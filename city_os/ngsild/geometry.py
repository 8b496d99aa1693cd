"""GeoJSON geometries of GeoProperty values (§4.7): shape and position checks.

Layer: ngsild/ (pure). The recursion over coordinate arrays is as deep as the geometry type
says (a MultiPolygon: four levels), whatever the input's nesting.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from city_os.errors import BadRequestData

GEO_TYPES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
)


_REQUIRED = frozenset({"type", "coordinates"})


def without_null_members(value: dict[str, Any]) -> dict[str, Any]:
    """The geometry without its JSON-null optional members (``"bbox": null``).

    IETF RFC 7946 defines an optional member (bbox, §5; foreign members, §6.1) as present with
    a value or absent, and gives null no meaning; clients that serialize unset optional fields
    as null send it. Read as absent (docs/interoperability.md).
    A null ``type`` or ``coordinates`` is kept, so that check_geometry refuses it.
    """
    if None not in value.values():
        return value
    return {k: v for k, v in value.items() if v is not None or k in _REQUIRED}


def check_geometry(name: str, value: object) -> dict[str, Any]:
    """A GeoJSON geometry with valid positions (§4.7); raises BadRequestData otherwise."""
    if not isinstance(value, dict):
        raise BadRequestData(f"GeoProperty {name!r} must be a GeoJSON geometry object")
    kind = value.get("type")
    coords = value.get("coordinates")
    if kind not in GEO_TYPES or coords is None:
        raise BadRequestData(f"GeoProperty {name!r}: {kind!r} is not a valid GeoJSON geometry")
    depth = {
        "Point": 0,
        "MultiPoint": 1,
        "LineString": 1,
        "MultiLineString": 2,
        "Polygon": 2,
        "MultiPolygon": 3,
    }[kind]
    _check_positions(name, coords, depth)
    bbox = value.get("bbox")
    if bbox is not None and (
        not isinstance(bbox, list)
        or len(bbox) not in (4, 6)
        or not set(map(type, bbox)) <= _NUMBERS
    ):
        raise BadRequestData(f"GeoProperty {name!r}: bbox must be an array of 4 or 6 numbers")
    if kind == "LineString" and len(coords) < 2:
        raise BadRequestData(f"GeoProperty {name!r}: a LineString needs two positions or more")
    if kind in ("Polygon", "MultiPolygon"):
        polygons = [coords] if kind == "Polygon" else coords
        for polygon in polygons:
            for ring in polygon:
                if len(ring) < 4 or ring[0] != ring[-1]:
                    raise BadRequestData(
                        f"GeoProperty {name!r}: polygon rings must be closed with ≥ 4 positions"
                    )
    return value


def _check_positions(name: str, coords: object, depth: int) -> None:
    if depth == 0:
        _check_run(name, [coords])
        return
    if not isinstance(coords, list) or not coords:
        raise BadRequestData(f"GeoProperty {name!r}: coordinates are not nested correctly")
    if depth == 1:
        _check_run(name, coords)
        return
    for item in coords:
        _check_positions(name, item, depth - 1)


_NUMBERS = frozenset({int, float})


def _check_run(name: str, positions: list[Any]) -> None:
    """A run of positions (a ring, a line, one point), checked with C-level scans (``map``,
    ``min``/``max``, slices): an 80,000-position ring costs milliseconds, not a Python loop."""
    if set(map(type, positions)) != {list}:
        raise BadRequestData(f"GeoProperty {name!r}: invalid position in {positions!r:.80}")
    size = min(map(len, positions))
    if size not in (2, 3) or max(map(len, positions)) != size:
        raise BadRequestData(
            f"GeoProperty {name!r}: positions must have 2 or 3 numbers each, in {positions!r:.80}"
        )
    flat = list(chain.from_iterable(positions))
    if not set(map(type, flat)) <= _NUMBERS:  # bool is its own type: refused here too
        raise BadRequestData(f"GeoProperty {name!r}: a position holds a non-number")
    lons, lats = flat[0::size], flat[1::size]
    if min(lons) < -180 or max(lons) > 180 or min(lats) < -90 or max(lats) > 90:
        raise BadRequestData(f"GeoProperty {name!r}: a position is out of range")
