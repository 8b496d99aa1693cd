"""SQL for geoqueries (§4.10): a ``GeoQuery`` → conditions on the tenant's ``geo`` table.

Store layer, pure (no I/O). Split from ``query_sql`` (same conventions: every request value a
bound parameter through ``SqlParams``); the ``geo`` table holds one row per GeoProperty instance
with its geometry and, for points, ``pt`` (docs/storage.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any, Final

from city_os.ngsild.query.ast import GeoQuery
from city_os.ngsild.query.entity_selection import Expand
from city_os.store.postgres.query_sql import SqlParams, check_identifier

# --- geoQ ---------------------------------------------------------------------------------------

_GEO_FUNCTIONS: Final = {
    "within": "ST_Within",
    "contains": "ST_Contains",
    "intersects": "ST_Intersects",
    "disjoint": "ST_Disjoint",
    "equals": "ST_Equals",
    "overlaps": "ST_Overlaps",
}


def geo_to_sql(
    geo: GeoQuery,
    expand: Expand,
    *,
    params: SqlParams | None = None,
    alias: str = "e",
    geo_table: str = "geo",
) -> tuple[str, list[Any]]:
    """Condition for a geoquery against the ``geo`` table (``schema.geo``): an EXISTS over
    the entity's rows there (see ``geo_conditions``)."""
    params = params if params is not None else SqlParams()
    table = check_identifier(geo_table)
    alias = check_identifier(alias)
    branches = geo_conditions(geo, expand, params=params)
    condition = branches[0] if len(branches) == 1 else "(" + " OR ".join(branches) + ")"
    sql = f"EXISTS (SELECT 1 FROM {table} AS g WHERE g.entity_id = {alias}.id AND {condition})"
    return sql, params.args


# Haversine distance in metres between the point ``g.pt`` and ($lon, $lat) on a sphere of the
# mean Earth radius (6,371,008.8 m); within 0.6 % of the WGS84 geodesic distance that
# ST_DWithin on geography measures (a property test checks this), hence _SPHERE_MARGIN.
_HAVERSINE: Final = (
    "12742017.6 * asin(least(1.0, sqrt(power(sin(radians(g.pt[1] - {lat}) / 2), 2)"
    " + cos(radians(g.pt[1])) * cos(radians({lat}))"
    " * power(sin(radians(g.pt[0] - {lon}) / 2), 2))))"
)
_SPHERE_MARGIN: Final = 0.01


def geo_conditions(geo: GeoQuery, expand: Expand, *, params: SqlParams) -> list[str]:
    """Conditions on one row ``g`` of the ``geo`` table, alternatives of which any may hold:
    its GeoProperty is the query's and its geometry stands in the relation to the reference
    geometry.

    ``near`` compares in metres on geography with ``ST_DWithin`` so that the
    ``geom::geography`` GiST index applies (``minDistance`` is its negation). With
    ``maxDistance`` and a lon/lat box around the reference (``near_box``), points and other
    shapes are two alternatives, each for an index of its own: points (``g.pt``) through the
    ``geo_points`` GiST index, which holds all the query needs (an index-only scan), and,
    for a Point reference, a haversine distance that decides every point but those within 1 %
    of ``maxDistance``, which ST_DWithin decides, so the answer is exactly ST_DWithin's at a
    fraction of its cost; other shapes through the ``geom`` GiST index. The other relations are
    PostGIS functions with index support of their own.
    """
    attr = params.add(expand(geo.geoproperty))
    # A scalar subquery (an InitPlan: evaluated once per statement). Written inline, a generic
    # plan of the prepared statement would parse the GeoJSON again for every candidate row.
    geometry = (
        f"ST_SetSRID(ST_GeomFromGeoJSON({params.add(json.dumps(geo.geojson()))}::text), 4326)"
    )
    reference = f"(SELECT {geometry})"
    if geo.georel != "near":
        return [f"g.attr = {attr} AND {_GEO_FUNCTIONS[geo.georel]}(g.geom, {reference})"]
    distance = geo.max_distance if geo.max_distance is not None else geo.min_distance
    assert distance is not None
    metres = params.add(float(distance))
    geography = f"(SELECT {geometry}::geography)"
    within = f"ST_DWithin(g.geom::geography, {geography}, {metres}::float8)"
    if geo.max_distance is None:
        return [f"g.attr = {attr} AND NOT {within}"]
    box = near_box(geo)
    if box is None:
        return [f"g.attr = {attr} AND {within}"]
    xmin, ymin, xmax, ymax = (f"{params.add(c)}::float8" for c in box)
    point = "ST_SetSRID(ST_MakePoint(g.pt[0], g.pt[1]), 4326)::geography"
    exact = f"ST_DWithin({point}, {geography}, {metres}::float8)"
    if geo.geometry == "Point":
        lon, lat = (f"{params.add(float(c))}::float8" for c in geo.coordinates[:2])
        haversine = _HAVERSINE.format(lon=lon, lat=lat)
        # One haversine per row: bucket 0 is surely within, 2 surely beyond, 1 the band.
        band = f"{metres}::float8 * {1 - _SPHERE_MARGIN}, {metres}::float8 * {1 + _SPHERE_MARGIN}"
        exact = (
            f"CASE width_bucket({haversine}, {band}, 1)"
            f" WHEN 0 THEN true WHEN 2 THEN false ELSE {exact} END"
        )
    return [
        f"g.attr = {attr} AND g.pt IS NOT NULL"
        f" AND g.pt <@ box(point({xmin}, {ymin}), point({xmax}, {ymax})) AND {exact}",
        f"g.attr = {attr} AND g.pt IS NULL"
        f" AND g.geom && ST_MakeEnvelope({xmin}, {ymin}, {xmax}, {ymax}, 4326) AND {within}",
    ]


def selective_geo(geo: GeoQuery) -> bool:
    """True if only geometries near or on the reference can match (every relation except
    ``disjoint`` and ``near;minDistance``): then the matching ``geo`` rows, found through a
    GiST index, are a good place to start a query from."""
    return geo.georel != "disjoint" and not (geo.georel == "near" and geo.max_distance is None)


# Bounds for the lon/lat box around ``near`` (see ``near_box``): the fewest metres a degree of
# latitude spans (at the equator, 110,574 m) less a margin, and the smallest Earth radius (polar).
_METRES_PER_LAT_DEGREE: Final = 110_000.0
_MIN_EARTH_RADIUS: Final = 6_350_000.0
_MAX_BOX_LATITUDE: Final = 85.0


def near_box(geo: GeoQuery) -> tuple[float, float, float, float] | None:
    """A lon/lat box (xmin, ymin, xmax, ymax) holding every point within ``maxDistance`` of
    the reference geometry, or None where no such plain box exists (near a pole, across the
    antimeridian, or a distance of a sizeable part of the globe).

    Why: ``ST_DWithin`` on geography finds its candidates through the ``geom::geography``
    GiST index with a loose 3-D box, then computes a spheroid distance per candidate. ANDing
    this planar box (``geom && box``, served by the ``geom`` GiST index) leaves about a fifth
    fewer candidates to recheck; the exact geography test stays, so the box only has to be
    large enough, never exact: latitude by the shortest degree, longitude by the spherical
    bound ``asin(sin δ / cos φ)`` at the box's highest latitude with the smallest radius.
    """
    assert geo.max_distance is not None
    points = list(_points(geo.coordinates))
    if not points:
        return None
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    margin_lat = geo.max_distance / _METRES_PER_LAT_DEGREE
    ymin, ymax = min(ys) - margin_lat, max(ys) + margin_lat
    top = max(abs(ymin), abs(ymax))
    if top >= _MAX_BOX_LATITUDE:
        return None
    angle = geo.max_distance / _MIN_EARTH_RADIUS
    ratio = math.sin(angle) / math.cos(math.radians(top)) if angle < math.pi / 4 else 2.0
    if ratio >= 1.0:
        return None
    margin_lon = math.degrees(math.asin(ratio)) * 1.01
    xmin, xmax = min(xs) - margin_lon, max(xs) + margin_lon
    if xmin < -180.0 or xmax > 180.0:
        return None
    return (xmin, ymin, xmax, ymax)


def _points(coordinates: Any) -> Iterator[tuple[float, float]]:
    """Every position of a geometry's (nested) coordinates."""
    if coordinates and isinstance(coordinates[0], int | float):
        yield (float(coordinates[0]), float(coordinates[1]))
        return
    for item in coordinates:
        yield from _points(item)
