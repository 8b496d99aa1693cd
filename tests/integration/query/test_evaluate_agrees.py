"""The in-process evaluator and the SQL query engine select the same entities (issue #9).

Generated NGSI-LD entities (strategies.py) go through the real write path (``EntityService``:
the entity parser, the store's one statement, the outbox) into a tenant of their own; the
evaluator is given each entity as the notifier will see it, from the change event in the outbox.
Generated selections (q, geoQ, scopeQ, type selections, ids and idPatterns, attrs), parsed by the
real parsers, then run through ``QueryRepository.ids`` (the SQL of every query) and through
``compile_selection(...).matches``: the ids must be the same.

``near`` is decided in metres on the spheroid, where two correct float computations may land on
either side of the distance when an entity is within floating-point error of it: entities
whose PostGIS distance is within 0.1 % (+1 cm) of the distance are left out of that comparison
(the other entities still count). Everything else must agree exactly.

Examples per test: ``CITYOS_PROPERTY_PROFILE=long`` runs about ten times as many (strategies.py).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from city_os.core.contexts import bundled_documents
from city_os.core.entities import EntityService, RequestContext
from city_os.core.query import names
from city_os.ngsild.entity import now_iso
from city_os.ngsild.jsonld import CORE_CONTEXT_URL, TermMap
from city_os.ngsild.query.entity_selection import EntitySelector, Selection
from city_os.ngsild.query.evaluate import compile_selection
from city_os.ngsild.query.geo import parse_geoq
from city_os.ngsild.query.q import parse_q
from city_os.ngsild.query.scope import parse_scopeq
from city_os.ngsild.query.type_selection import parse_type_selection
from city_os.ngsild.representation import EntityRecord
from city_os.store.postgres.db import Tenants, create_pool, migrate
from city_os.store.postgres.entities import EntityRepository
from city_os.store.postgres.query import QueryRepository
from tests.conftest import TEST_DSN
from tests.integration.query import strategies as gen

# Python's re (the q parser's syntax check) warns about ARE bracket classes like [[:upper:]].
pytestmark = pytest.mark.filterwarnings("ignore:Possible nested set:FutureWarning")
BAND = 0.001  # relative, around near's distance
NEAR_MARGIN_M = 0.01


@dataclass
class Engines:
    loop: asyncio.AbstractEventLoop
    entities: EntityService
    queries: QueryRepository
    ctx: RequestContext
    schema: str

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)


@pytest.fixture(scope="module")
def engines() -> Iterator[Engines]:
    loop = asyncio.new_event_loop()
    pool = loop.run_until_complete(create_pool(TEST_DSN, 1, 2))
    loop.run_until_complete(_migrate(pool))
    tenants = Tenants(pool)
    service = EntityService(EntityRepository(pool), tenants, "urn:test:evaluate")
    terms = TermMap(CORE_CONTEXT_URL, bundled_documents())
    ctx = RequestContext("test-" + uuid.uuid4().hex[:12], terms, now_iso())
    schema = loop.run_until_complete(service.schema(ctx, write=True))
    yield Engines(loop, service, QueryRepository(pool), ctx, schema)
    loop.run_until_complete(service.repo.waker.close())
    loop.run_until_complete(pool.close())
    loop.close()


async def _migrate(pool: Any) -> None:
    async with pool.acquire() as conn:
        await migrate(conn)


def store(engines: Engines, bodies: tuple[dict[str, Any], ...]) -> dict[str, EntityRecord]:
    """Write the entities (after removing the previous example's) and return each as its
    change event carries it."""
    pool = engines.queries._pool
    s, tenant = engines.schema, engines.ctx.tenant

    async def write() -> list[str]:
        async with pool.acquire() as conn:
            await conn.execute(f"DELETE FROM {s}.entities; DELETE FROM {s}.geo")
            await conn.execute("DELETE FROM cityos.outbox WHERE tenant = $1", tenant)
        result = await engines.entities.batch_create(engines.ctx, list(bodies))
        assert not result.errors, result.errors  # the generators write valid entities only
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT payload::text FROM cityos.outbox WHERE tenant = $1", tenant
            )
        return [r[0] for r in rows]

    records = {}
    for payload in engines.run(write()):
        e = orjson.loads(payload)["data"]["entity"]
        records[e["id"]] = EntityRecord(
            e["id"],
            e["types"],
            e["attrs"],
            e["scopes"],
            e["createdAt"],
            e["modifiedAt"],
            e["expiresAt"],
        )
    assert len(records) == len(bodies)
    return records


def assert_same(
    engines: Engines, records: dict[str, EntityRecord], sel: Selection, skip: set[str] = frozenset()
) -> None:  # type: ignore[assignment]
    n = names(engines.ctx)
    sql = set(engines.run(engines.queries.ids(engines.schema, sel, n))) - skip
    compiled = compile_selection(sel, n)
    local = {i for i, r in records.items() if compiled.matches(r, linked=records.get)} - skip
    assert local == sql, (sel, sorted(local ^ sql))


@settings(gen.PROFILE)
@given(bodies=gen.ENTITIES, queries=st.lists(gen.q_text(), min_size=1, max_size=6))
def test_q_agrees(engines: Engines, bodies: tuple[dict[str, Any], ...], queries: list[str]) -> None:
    records = store(engines, bodies)
    for text in queries:
        assert_same(engines, records, Selection(q=parse_q(text)))


@st.composite
def _selector(draw: st.DrawFn) -> EntitySelector:
    types = draw(st.none() | gen.TYPEQ.map(parse_type_selection))
    ids = tuple(draw(st.lists(st.sampled_from(gen.IDS), max_size=3)))
    pattern = draw(st.none() | gen.ID_PATTERNS)
    return EntitySelector(types=types, ids=ids, id_pattern=pattern)


@settings(gen.PROFILE)
@given(
    bodies=gen.ENTITIES,
    selections=st.lists(
        st.builds(
            Selection,
            selectors=st.lists(_selector(), max_size=2).map(tuple),
            attrs=st.lists(st.sampled_from([*gen.ATTRS, "rel", "area"]), max_size=2).map(
                lambda a: tuple(f"https://uri.etsi.org/ngsi-ld/default-context/{n}" for n in a)
            ),
            scope=st.none() | gen.SCOPEQ.map(parse_scopeq),
            q=st.none() | gen.q_text().map(parse_q),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_selectors_scope_and_attrs_agree(
    engines: Engines, bodies: tuple[dict[str, Any], ...], selections: list[Selection]
) -> None:
    records = store(engines, bodies)
    for sel in selections:
        assert_same(engines, records, sel)


@st.composite
def _geo(draw: st.DrawFn, stored: list[dict[str, Any]]) -> tuple[str, str, str, str]:
    georel = draw(gen.GEOREL)
    if stored and draw(st.booleans()):  # a stored geometry itself: equals, overlaps…
        geometry = draw(st.sampled_from(stored))
        kind, coordinates = geometry["type"], geometry["coordinates"]
    else:
        kind, coordinates = draw(gen.REFERENCE)
    return georel, kind, json.dumps(coordinates), draw(st.sampled_from(["location", "area"]))


@settings(gen.PROFILE)
@given(bodies=gen.ENTITIES, data=st.data())
def test_geo_agrees(
    engines: Engines, bodies: tuple[dict[str, Any], ...], data: st.DataObject
) -> None:
    records = store(engines, bodies)
    stored = [
        i["value"]
        for b in bodies
        for name in ("location", "area")
        if name in b
        for i in (b[name] if isinstance(b[name], list) else [b[name]])
    ]
    for _ in range(4):
        georel, kind, coordinates, prop = data.draw(_geo(stored))
        geo = parse_geoq(georel, kind, coordinates, prop)
        assert geo is not None
        skip = _near_the_distance(engines, geo) if geo.georel == "near" else set()
        assert_same(engines, records, Selection(geo=geo), skip)


def _near_the_distance(engines: Engines, geo: Any) -> set[str]:
    """Entities with an instance whose PostGIS distance is within the band around d."""
    distance = geo.max_distance if geo.max_distance is not None else geo.min_distance
    iri = names(engines.ctx).attr(geo.geoproperty)
    rows = engines.run(
        engines.queries._fetch(
            f"SELECT entity_id FROM {engines.schema}.geo WHERE attr = $1 AND abs(ST_Distance("
            "geom::geography, ST_SetSRID(ST_GeomFromGeoJSON($2), 4326)::geography) - $3) <= $4",
            iri,
            json.dumps(geo.geojson()),
            distance,
            distance * BAND + NEAR_MARGIN_M,
        )
    )
    return {r["entity_id"] for r in rows}
