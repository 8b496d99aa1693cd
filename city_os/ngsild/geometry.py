"""GeoJSON geometries of GeoProperty values (§4.7): shape and position checks.

Layer: ngsild/ (pure). The recursion over coordinate arrays is as deep as the geometry type
says (a MultiPolygon: four levels), whatever the input's nesting.
"""

from __future__ import annotations

from typing import Any

from city_os.errors import BadRequestData

GEO_TYPES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
)


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
        if (
            not isinstance(coords, list)
            or len(coords) not in (2, 3)
            or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coords)
        ):
            raise BadRequestData(f"GeoProperty {name!r}: invalid position {coords!r:.80}")
        lon, lat = coords[0], coords[1]
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise BadRequestData(f"GeoProperty {name!r}: position {coords!r:.80} out of range")
        return
    if not isinstance(coords, list) or not coords:
        raise BadRequestData(f"GeoProperty {name!r}: coordinates are not nested correctly")
    for item in coords:
        _check_positions(name, item, depth - 1)
