"""In-process evaluation of a geoquery (§4.10) with the SQL engine's meaning.

Layer: ngsild/ (pure, no I/O). The SQL engine tests each GeoProperty instance of the entity (the
rows of the ``geo`` table: every instance, every datasetId, whose value is a geometry) and
matches when any instance stands in the relation (query_geo_sql.geo_conditions):

* ``within``, ``contains``, ``intersects``, ``disjoint``, ``equals``, ``overlaps``: planar
  DE-9IM predicates on SRID 4326 coordinates, PostGIS's ``ST_*`` on GEOS; here shapely 2 on GEOS
  too, with the reference geometry prepared once.
* ``near;maxDistance==d``: ``ST_DWithin(geography)``, metres on the WGS84 spheroid. PostGIS finds
  the nearest points of the two geometries on the sphere (great-circle edges, mean radius
  6,371,008.8 m), answers from that sphere distance when it is clearly below the distance, and
  otherwise measures the geodesic between those two points on the spheroid (GeographicLib,
  Karney's algorithm, which PostGIS uses through PROJ). Mirrored: sphere distances (vertex to
  great-circle edge, both ways) decide everything outside a 1 % band around ``d`` (the sphere is
  within 0.6 % of the spheroid), the geodesic of the nearest pair (geographiclib) decides the band.
  Shapes that intersect are at distance 0; that is decided on the plane here but on the sphere in
  PostGIS, whose edges bulge poleward from the straight lon/lat segment (about a metre for a 10 km
  edge at Saga's latitude): answers can differ only for a shape within that of the distance.
* ``near;minDistance==d``: some instance is not within ``d``.

Geometries that cross the antimeridian are not handled like PostGIS's geography. Invalid shapes
(self-intersecting rings, which the entity parser does not refuse) make GEOS raise in either
engine; here such an instance simply does not match.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from typing import Any, Final

import shapely
from geographiclib.geodesic import Geodesic
from shapely.errors import GEOSException, ShapelyError
from shapely.geometry import shape

from city_os.ngsild.query.ast import GeoQuery
from city_os.ngsild.query.entity_selection import Expand
from city_os.ngsild.representation import EntityRecord

EARTH_RADIUS: Final = 6_371_008.771415  # PostGIS's WGS84 sphere: (2a + b) / 3
_BAND: Final = 0.01
_WGS84: Final = Geodesic.WGS84
Vector = tuple[float, float, float]
GeoTest = Callable[[EntityRecord], bool]
_Relation = Callable[[Any], bool]

# Shapely geometries (and sphere shapes) of stored GeoJSON values, by identity: the notifier
# evaluates one entity against many subscriptions, and building a geometry costs more than
# testing it.
_CACHE: dict[int, _Cached] = {}
_CACHE_SIZE: Final = 4096


class _Cached:
    __slots__ = ("geometry", "shape", "value")

    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value
        self.geometry: Any = None
        self.shape: _Shape | None = None


def _cached(value: dict[str, Any]) -> _Cached:
    key = id(value)
    hit = _CACHE.get(key)
    if hit is not None and hit.value is value:
        return hit
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()
    entry = _CACHE[key] = _Cached(value)
    return entry


def compile_geo(geo: GeoQuery, expand: Expand) -> GeoTest:
    """The geoquery compiled once: a test on an entity's instances of the GeoProperty."""
    iri = expand(geo.geoproperty)
    reference = shape(geo.geojson())
    shapely.prepare(reference)
    relation = _relation(geo, reference)

    def test(record: EntityRecord) -> bool:
        for inst in record.attrs.get(iri, ()):
            value = inst.get("value")
            if inst.get("type") != "GeoProperty" or not isinstance(value, dict):
                continue
            try:
                if relation(value):
                    return True
            except (GEOSException, ShapelyError, ValueError, TypeError, KeyError):
                continue  # not a usable geometry: PostgreSQL would raise, we do not match
        return False

    return test


def geometry(value: dict[str, Any]) -> Any:
    """The shapely geometry of a GeoJSON value (cached by the identity of the dict)."""
    entry = _cached(value)
    if entry.geometry is None:
        entry.geometry = shape(value)
    return entry.geometry


def sphere_shape(value: dict[str, Any]) -> _Shape:
    entry = _cached(value)
    if entry.shape is None:
        entry.shape = _Shape(value)
    return entry.shape


def _relation(geo: GeoQuery, reference: Any) -> _Relation:
    """Whether one stored GeoJSON geometry matches (the prepared reference tested first)."""
    rel = geo.georel
    if rel == "within":
        return lambda v: bool(reference.contains(geometry(v)))
    if rel == "contains":
        return lambda v: bool(reference.within(geometry(v)))
    if rel == "intersects":
        return lambda v: bool(reference.intersects(geometry(v)))
    if rel == "disjoint":
        return lambda v: bool(reference.disjoint(geometry(v)))
    if rel == "equals":
        return lambda v: bool(reference.equals(geometry(v)))
    if rel == "overlaps":
        return lambda v: bool(reference.overlaps(geometry(v)))
    distance = geo.max_distance if geo.max_distance is not None else geo.min_distance
    assert distance is not None
    near = _Near(reference, geo.geojson(), distance)
    if geo.max_distance is not None:
        return near.within
    return lambda v: not near.within(v)


class _Shape:
    """A geometry as the sphere sees it: its vertices and its great-circle edges."""

    __slots__ = ("edges", "vertices")

    def __init__(self, geojson: dict[str, Any]) -> None:
        kind, coords = geojson["type"], geojson["coordinates"]
        lines: list[Any]
        if kind == "Point":
            lines = [[coords]]
        elif kind in ("MultiPoint", "LineString"):
            lines = [coords] if kind == "LineString" else [[c] for c in coords]
        elif kind in ("MultiLineString", "Polygon"):
            lines = coords
        else:  # MultiPolygon
            lines = [ring for polygon in coords for ring in polygon]
        self.vertices = [_unit(p) for line in lines for p in line]
        self.edges = [(_unit(a), _unit(b)) for line in lines for a, b in itertools.pairwise(line)]

    @property
    def is_point(self) -> bool:
        return not self.edges


class _Near:
    """``ST_DWithin(geography)`` against one reference geometry."""

    def __init__(self, reference: Any, geojson: dict[str, Any], distance: float) -> None:
        self.reference = reference
        self.shape = _Shape(geojson)
        self.distance = distance
        self.sure = distance * (1 - _BAND) / EARTH_RADIUS  # radians: surely within
        self.beyond = distance * (1 + _BAND) / EARTH_RADIUS  # surely beyond

    def within(self, value: dict[str, Any]) -> bool:
        other = sphere_shape(value)
        if (
            self.shape.is_point
            and other.is_point
            and len(self.shape.vertices) == 1 == len(other.vertices)
        ):
            p, q = self.shape.vertices[0], other.vertices[0]
            angle = _angle(p, q)
        elif self.reference.intersects(geometry(value)):
            return True
        else:
            angle, p, q = min(_pairs(self.shape, other), key=lambda t: t[0])
        if angle <= self.sure:
            return True
        if angle > self.beyond:
            return False
        (lat1, lon1), (lat2, lon2) = _lat_lon(p), _lat_lon(q)
        metres = _WGS84.Inverse(lat1, lon1, lat2, lon2, Geodesic.DISTANCE)["s12"]
        return bool(metres <= self.distance)


def _pairs(a: _Shape, b: _Shape) -> Iterator[tuple[float, Vector, Vector]]:
    """(angle, point on a, point on b) for every vertex against the other's vertices and edges:
    two shapes that do not cross are nearest at a vertex of one of them."""
    for shape_1, shape_2, swap in ((a, b, False), (b, a, True)):
        for v in shape_1.vertices:
            targets = (
                ((v, w) for w in shape_2.vertices)
                if shape_2.is_point
                else ((v, _nearest_on_edge(v, e)) for e in shape_2.edges)
            )
            for p, q in targets:
                yield (_angle(p, q), q, p) if swap else (_angle(p, q), p, q)
        if shape_1.is_point and shape_2.is_point:
            return  # vertex pairs: one direction suffices


def _unit(position: Any) -> Vector:
    lon, lat = math.radians(position[0]), math.radians(position[1])
    c = math.cos(lat)
    return (c * math.cos(lon), c * math.sin(lon), math.sin(lat))


def _lat_lon(v: Vector) -> tuple[float, float]:
    return math.degrees(math.asin(max(-1.0, min(1.0, v[2])))), math.degrees(math.atan2(v[1], v[0]))


def _cross(a: Vector, b: Vector) -> Vector:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _dot(a: Vector, b: Vector) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _angle(a: Vector, b: Vector) -> float:
    """The central angle between two unit vectors (atan2: accurate at every size)."""
    c = _cross(a, b)
    return math.atan2(math.sqrt(_dot(c, c)), _dot(a, b))


def _nearest_on_edge(p: Vector, edge: tuple[Vector, Vector]) -> Vector:
    """The point of the great-circle arc a→b nearest to p."""
    a, b = edge
    n = _cross(a, b)
    norm = math.sqrt(_dot(n, n))
    if norm < 1e-15:  # a degenerate edge
        return a
    n = (n[0] / norm, n[1] / norm, n[2] / norm)
    k = _dot(p, n)
    q = (p[0] - k * n[0], p[1] - k * n[1], p[2] - k * n[2])
    size = math.sqrt(_dot(q, q))
    if size > 1e-15:
        q = (q[0] / size, q[1] / size, q[2] / size)
        if _dot(_cross(a, q), n) >= 0 and _dot(_cross(q, b), n) >= 0:
            return q
    return a if _angle(p, a) <= _angle(p, b) else b
