"""The query SQL builder against real PostgreSQL + PostGIS: exact id sets per operator/georel.

A throwaway tenant schema is made from tenant.sql; entities are inserted directly in the
storage format (docs/storage.md) with real Saga City coordinates (GSI shelter open data).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from importlib import resources
from typing import Any

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from city_os.ngsild.query.ast import AttrPath, Comparison, Text
from city_os.ngsild.query.geo import parse_geoq
from city_os.ngsild.query.q import parse_q
from city_os.ngsild.query.scope import parse_scopeq
from city_os.ngsild.query.type_selection import parse_type_selection
from city_os.store.postgres.db import migrate
from city_os.store.postgres.query_geo_sql import (
    _HAVERSINE,
    _SPHERE_MARGIN,
    geo_conditions,
    geo_to_sql,
    near_box,
)
from city_os.store.postgres.query_sql import (
    SqlParams,
    id_pattern_to_sql,
    ids_to_sql,
    jsonpath_string,
    q_to_sql,
    scope_to_sql,
    sql_string,
    type_to_sql,
)
from tests.query_cases import (
    ENTITIES,
    GEO_CASES,
    LOCATION,
    Q_CASES,
    S1,
    S2,
    SAGA_STATION,
    SCOPE_CASES,
    ST,
    TYPE_CASES,
    K,
    expand,
)

DSN = os.environ.get("CITYOS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/cityos_test")


@pytest.fixture(scope="module")
async def db() -> AsyncIterator[tuple[asyncpg.Connection, str]]:
    schema = "qtest_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(DSN, server_settings={"timezone": "UTC"})  # as the pool
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        await migrate(conn)  # the cityos.q_number_* functions of value indexes
        ddl = resources.files("city_os.store").joinpath("migrations/tenant.sql").read_text()
        await conn.execute(ddl.replace("{schema}", schema))
        for entity_id, types, scopes, attrs in ENTITIES:
            expanded = {expand(name): instances for name, instances in attrs.items()}
            await conn.execute(
                f"INSERT INTO {schema}.entities (id, types, scopes, attrs, created_at, modified_at)"
                " VALUES ($1, $2, $3, $4::jsonb, now(), now())",
                entity_id,
                [expand(t) for t in types],
                scopes,
                json.dumps(expanded),
            )
            for instance in attrs.get("location", []):
                await conn.execute(
                    f"INSERT INTO {schema}.geo (entity_id, attr, geom) VALUES "
                    "($1, $2, ST_SetSRID(ST_GeomFromGeoJSON($3), 4326))",
                    entity_id,
                    LOCATION,
                    json.dumps(instance["value"]),
                )
        yield conn, schema
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


async def ids(db: tuple[asyncpg.Connection, str], fragment: str, args: list[Any]) -> set[str]:
    conn, schema = db
    rows = await conn.fetch(f"SELECT id FROM {schema}.entities e WHERE {fragment}", *args)
    return {row["id"] for row in rows}


@pytest.mark.parametrize(("q", "expected"), Q_CASES)
async def test_q(db: tuple[asyncpg.Connection, str], q: str, expected: set[str]) -> None:
    fragment, args = q_to_sql(parse_q(q), expand, entities_table=f"{db[1]}.entities")
    assert await ids(db, fragment, args) == expected


@pytest.mark.parametrize(("q", "expected"), Q_CASES)
async def test_q_with_value_indexes(
    db: tuple[asyncpg.Connection, str], q: str, expected: set[str]
) -> None:
    """With ``temperature`` and ``capacity`` value-indexed, number comparisons are written
    with cityos.q_number_bound (and the index built on it is used): same entities."""
    schema = db[1]
    numbers = frozenset({expand("temperature"), expand("capacity")})
    table = f"{schema}.entities"
    fragment, args = q_to_sql(parse_q(q), expand, entities_table=table, numbers=numbers)
    assert await ids(db, fragment, args) == expected


async def test_value_index_serves_the_comparison(db: tuple[asyncpg.Connection, str]) -> None:
    conn, schema = db
    iri = expand("temperature")
    numbers = frozenset({iri})
    fragment, args = q_to_sql(
        parse_q("temperature>25"), expand, params=SqlParams(start=2), numbers=numbers
    )
    assert "cityos.q_number_bound(e.attrs -> E'" in fragment
    await conn.execute(
        f"CREATE INDEX qtest_vi ON {schema}.entities (types, cityos.q_number_bound(attrs -> "
        f"{sql_string(iri)}, true))"
    )
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_seqscan = off")
            plan = await conn.fetch(
                f"EXPLAIN SELECT id FROM {schema}.entities e WHERE e.types = $1 AND {fragment}",
                [expand("Shelter")],
                *args,
            )
    finally:
        await conn.execute(f"DROP INDEX {schema}.qtest_vi")
    assert "qtest_vi" in "\n".join(r[0] for r in plan)


@pytest.mark.parametrize(("georel", "geometry", "coordinates", "expected"), GEO_CASES)
async def test_geo(
    db: tuple[asyncpg.Connection, str],
    georel: str,
    geometry: str,
    coordinates: str,
    expected: set[str],
) -> None:
    geo = parse_geoq(georel, geometry, coordinates, None)
    assert geo is not None
    fragment, args = geo_to_sql(geo, expand, geo_table=f"{db[1]}.geo")
    assert await ids(db, fragment, args) == expected


async def test_geo_other_geoproperty_matches_nothing(db: tuple[asyncpg.Connection, str]) -> None:
    geo = parse_geoq("near;maxDistance==100000", "Point", SAGA_STATION, "observationSpace")
    assert geo is not None
    fragment, args = geo_to_sql(geo, expand, geo_table=f"{db[1]}.geo")
    assert await ids(db, fragment, args) == set()


async def test_near_box_holds_every_point_within_the_distance(
    db: tuple[asyncpg.Connection, str],
) -> None:
    """near_box is only a prefilter: it must hold every point PostGIS finds within
    maxDistance (geodesic, on the spheroid). Points just inside the distance in 16 bearings
    around references from the equator to 80°, for 1 m to 2,000 km, are all inside the box."""
    conn = db[0]
    cases = [
        (lon, lat, d)
        for lon in (-179.0, 0.0, 130.3)
        for lat in (-80.0, -33.26, 0.0, 33.26, 60.0, 80.0)
        for d in (1.0, 2_000.0, 150_000.0, 2_000_000.0)
    ]
    boxed = 0
    for lon, lat, d in cases:
        geo = parse_geoq(f"near;maxDistance=={d}", "Point", json.dumps([lon, lat]), None)
        assert geo is not None
        box = near_box(geo)
        if box is None:
            continue
        boxed += 1
        rows = await conn.fetch(
            "SELECT ST_X(p::geometry) AS x, ST_Y(p::geometry) AS y FROM ("
            " SELECT ST_Project(ST_MakePoint($1, $2)::geography, $3 * 0.9999, radians(b)) AS p"
            " FROM generate_series(0, 359, 22.5) AS b) s",
            lon,
            lat,
            d,
        )
        for row in rows:
            assert box[0] <= row["x"] <= box[2], (lon, lat, d, row["x"], box)
            assert box[1] <= row["y"] <= box[3], (lon, lat, d, row["y"], box)
    assert boxed >= len(cases) // 2  # the box is used for most real queries


async def test_near_on_points_is_exactly_st_dwithin(db: tuple[asyncpg.Connection, str]) -> None:
    """``near`` decides most points by a haversine distance on an index-only scan and leaves
    the 1 % band around maxDistance to ST_DWithin: the answer must be ST_DWithin's, also for
    points a centimetre inside or outside, and for shapes that are not points."""
    conn, schema = db
    probe = expand("probe")
    centre = (130.2978, 33.2642)  # JR Saga station
    await conn.execute(
        f"INSERT INTO {schema}.geo (entity_id, attr, dataset_id, geom)"
        " SELECT 'urn:ngsi-ld:Probe:' || i, $1, '', ST_Project(ST_MakePoint($2, $3)::geography,"
        "   $4 * (0.97 + (i % 61) * 0.001) + (i % 3 - 1) * 0.01, radians(i * 7.3))::geometry"
        " FROM generate_series(1, 600) AS i",
        probe,
        *centre,
        1500.0,
    )
    await conn.execute(
        f"INSERT INTO {schema}.geo (entity_id, attr, dataset_id, geom) VALUES"
        " ('urn:ngsi-ld:Probe:line', $1, '', ST_SetSRID(ST_MakeLine(ST_MakePoint(130.31, 33.26),"
        " ST_MakePoint(130.32, 33.27)), 4326))",
        probe,
    )
    try:
        for reference, geometry in ((list(centre), "Point"), ([list(centre)], "MultiPoint")):
            geo = parse_geoq("near;maxDistance==1500", geometry, json.dumps(reference), "probe")
            assert geo is not None
            params = SqlParams()
            branches = geo_conditions(geo, expand, params=params)
            assert len(branches) == 2
            got = await conn.fetch(
                f"SELECT entity_id FROM {schema}.geo g WHERE {' OR '.join(branches)}",
                *params.args,
            )
            want = await conn.fetch(
                f"SELECT entity_id FROM {schema}.geo g WHERE attr = $1 AND ST_DWithin("
                "g.geom::geography, ST_SetSRID(ST_GeomFromGeoJSON($2), 4326)::geography, 1500)",
                probe,
                json.dumps(geo.geojson()),
            )
            matched = {r["entity_id"] for r in got}
            assert matched == {r["entity_id"] for r in want}
            assert 100 < len(matched) < 600 and "urn:ngsi-ld:Probe:line" in matched
    finally:
        await conn.execute(f"DELETE FROM {schema}.geo WHERE attr = $1", probe)


async def test_the_haversine_stays_within_its_margin_of_the_geodesic(
    db: tuple[asyncpg.Connection, str],
) -> None:
    """The sphere may differ from WGS84 by less than _SPHERE_MARGIN at any place and any
    distance up to the 5,000 km beyond which near_box gives up."""
    conn = db[0]
    worst = await conn.fetchval(
        "SELECT max(abs(h / s - 1)) FROM ("
        " SELECT "
        + _HAVERSINE.format(lon="lon1", lat="lat1")
        .replace("g.pt[0]", "lon2")
        .replace("g.pt[1]", "lat2")
        + " AS h,"
        "  ST_Distance(ST_MakePoint(lon1, lat1)::geography, ST_MakePoint(lon2, lat2)::geography)"
        "  AS s"
        " FROM (SELECT lon1, lat1, lon1 + dlon * scale AS lon2,"
        "   greatest(-85, least(85, lat1 + dlat * scale)) AS lat2 FROM ("
        "   SELECT (i * 7919 % 3600) / 10.0 - 180 AS lon1, (i * 104729 % 1700) / 10.0 - 85 AS lat1,"
        "    sin(i) AS dlon, cos(i * 1.3) AS dlat, power(10, (i % 7) - 4) * 40 AS scale"
        "   FROM generate_series(1, 20000) AS i) r) p) t WHERE s > 1"
    )
    assert 0 < worst < _SPHERE_MARGIN


@pytest.mark.parametrize(("scopeq", "expected"), SCOPE_CASES)
async def test_scope(db: tuple[asyncpg.Connection, str], scopeq: str, expected: set[str]) -> None:
    fragment, args = scope_to_sql(parse_scopeq(scopeq))
    assert await ids(db, fragment, args) == expected


@pytest.mark.parametrize(("selection", "expected"), TYPE_CASES)
async def test_type(db: tuple[asyncpg.Connection, str], selection: str, expected: set[str]) -> None:
    fragment, args = type_to_sql(parse_type_selection(selection), expand)
    assert await ids(db, fragment, args) == expected


async def test_expired_linked_entities_are_invisible(db: tuple[asyncpg.Connection, str]) -> None:
    conn, schema = db
    fragment, args = q_to_sql(
        parse_q("refDistrict{humidity}==40"), expand, entities_table=f"{schema}.entities"
    )
    assert await ids(db, fragment, args) == {S1, ST}
    await conn.execute(
        f"UPDATE {schema}.entities SET expires_at = now() - interval '1 s' WHERE id = $1", K
    )
    try:
        assert await ids(db, fragment, args) == set()
    finally:
        await conn.execute(f"UPDATE {schema}.entities SET expires_at = NULL WHERE id = $1", K)


async def test_ids_and_pattern_share_params(db: tuple[asyncpg.Connection, str]) -> None:
    params = SqlParams()
    by_ids, _ = ids_to_sql([S1, S2, K], params=params)
    by_pattern, _ = id_pattern_to_sql("^urn:ngsi-ld:Shelter:", params=params)
    by_type, args = type_to_sql(parse_type_selection("Shelter"), expand, params=params)
    assert await ids(db, f"{by_ids} AND {by_pattern} AND {by_type}", args) == {S1, S2}


async def test_start_after_callers_args(db: tuple[asyncpg.Connection, str]) -> None:
    conn, schema = db
    params = SqlParams(start=2)
    fragment, args = q_to_sql(parse_q("capacity>100"), expand, params=params)
    rows = await conn.fetch(
        f"SELECT id FROM {schema}.entities e WHERE e.id <> $1 AND {fragment}", S1, *args
    )
    assert {r["id"] for r in rows} == {S2}


# --- fuzzing against PostgreSQL: escaping and "no value ever breaks the SQL" ---------------------


@pytest.fixture(scope="module")
def sync_conn() -> Iterator[tuple[asyncio.AbstractEventLoop, asyncpg.Connection]]:
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(asyncpg.connect(DSN, server_settings={"timezone": "UTC"}))
    yield loop, conn
    loop.run_until_complete(conn.close())
    loop.close()


_PG_TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))


@settings(max_examples=300, deadline=None)
@given(value=_PG_TEXT)
def test_jsonpath_string_round_trips_in_postgres(
    sync_conn: tuple[asyncio.AbstractEventLoop, asyncpg.Connection], value: str
) -> None:
    loop, conn = sync_conn
    literal = jsonpath_string(value)
    result = loop.run_until_complete(
        conn.fetchval("SELECT jsonb_path_query('null'::jsonb, $1::jsonpath)::text", literal)
    )
    assert json.loads(result) == value


@settings(max_examples=150, deadline=None)
@given(attr=_PG_TEXT.filter(bool), value=_PG_TEXT, op=st.sampled_from(["==", "!=", ">", "<="]))
def test_any_attribute_or_string_runs_safely(
    sync_conn: tuple[asyncio.AbstractEventLoop, asyncpg.Connection],
    attr: str,
    value: str,
    op: Any,
) -> None:
    loop, conn = sync_conn
    expr = Comparison(AttrPath((attr, attr), (value,)), op, Text(value))
    fragment, args = q_to_sql(expr, lambda t: t)
    sql = f"SELECT count(*) FROM (VALUES ('{{}}'::jsonb)) AS e(attrs) WHERE {fragment}"
    assert loop.run_until_complete(conn.fetchval(sql, *args)) == 0


# --- value indexes: the number bounds mean exactly what the jsonpath means ----------------------

_SCALARS = st.one_of(
    st.integers(-50, 50),
    st.floats(-50, 50, allow_nan=False, allow_infinity=False),
    st.sampled_from(["30", "abc", True, False, None]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("ab"), inner),
    max_leaves=6,
)
# languageMap: what the API stores there (entity.py checks it): strings or lists of strings.
_LANGUAGE_MAPS = st.dictionaries(
    st.sampled_from(["en", "ja"]),
    st.sampled_from(["30", "abc"]) | st.lists(st.sampled_from(["7", "x"]), min_size=1),
    min_size=1,
)
_INSTANCES = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "value": _VALUES,
            "json": _VALUES,
            "valueList": _VALUES,
            "object": _VALUES,
            "languageMap": _LANGUAGE_MAPS,
            "observedAt": _VALUES,
        },
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(
    instances=_INSTANCES,
    op=st.sampled_from([">", ">=", "<", "<="]),
    low=st.integers(-40, 40),
)
def test_number_bounds_match_the_jsonpath(
    sync_conn: tuple[asyncio.AbstractEventLoop, asyncpg.Connection],
    instances: list[dict[str, Any]],
    op: str,
    low: int,
) -> None:
    """cityos.q_number_bound (migration 0004) against PostgreSQL's own jsonpath, on any
    stored shape: nested arrays, objects, strings that look like numbers, several instances."""
    loop, conn = sync_conn
    loop.run_until_complete(migrate(conn))
    q = f"a{op}{low}"
    expr = parse_q(q)
    plain, plain_args = q_to_sql(expr, lambda t: t, params=SqlParams(start=2))
    bounded, bounded_args = q_to_sql(
        expr, lambda t: t, params=SqlParams(start=2), numbers=frozenset({"a"})
    )
    assert "q_number_bound" in bounded
    row = "(SELECT $1::jsonb AS attrs) AS e"
    attrs = json.dumps({"a": instances})
    got = loop.run_until_complete(
        conn.fetchval(f"SELECT {bounded} FROM {row}", attrs, *bounded_args)
    )
    want = loop.run_until_complete(conn.fetchval(f"SELECT {plain} FROM {row}", attrs, *plain_args))
    assert bool(got) == bool(want), (q, instances)
