"""The plans PostgreSQL keeps for the entity write statements (store/postgres/entity_sql.py).

asyncpg prepares each statement once per connection, and after five executions PostgreSQL runs
its generic plan. The input rows of an update or delete come from ``jsonb_to_recordset``, which
the planner always estimates at 100 rows; joined with the entities table alone, that made the
generic plan hash the whole table (a sequential scan per PATCH) as soon as ANALYZE had seen a
tenant of a few thousand entities. These tests analyze such a tenant and read the generic plans.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import orjson
import pytest

from city_os.store.postgres.db import Tenants, create_pool, migrate
from city_os.store.postgres.entities import EntityRepository
from city_os.store.postgres.entity_sql import EntityStatements, _encoded
from tests.conftest import TEST_DSN
from tests.integration.writes import created_write

ENTITIES = 3000


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(TEST_DSN, 1, 2)
    async with p.acquire() as conn:
        await migrate(conn)  # a new test database: this test may run first
    yield p
    await p.close()


def _scans(plan: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield plan["Node Type"], plan.get("Relation Name") or plan.get("Index Name", "")
    for child in plan.get("Plans", ()):
        yield from _scans(child)


async def _generic_plan(
    conn: asyncpg.Connection, sql: str, args: list[Any]
) -> set[tuple[str, str]]:
    await conn.execute("SET plan_cache_mode = force_generic_plan")
    try:
        explained = await conn.fetchval("EXPLAIN (FORMAT JSON) " + sql, *args)
    finally:
        await conn.execute("RESET plan_cache_mode")
    return set(_scans(orjson.loads(explained)[0]["Plan"]))


async def test_updates_and_deletes_of_an_analyzed_tenant_use_the_primary_key(
    pool: asyncpg.Pool, tenant: str
) -> None:
    schema = await Tenants(pool).schema(tenant, create=True)
    repo = EntityRepository(pool)
    ids = [f"urn:e:{i}" for i in range(ENTITIES)]
    for start in range(0, ENTITIES, 200):
        chunk = [created_write(tenant, i) for i in ids[start : start + 200]]
        assert len(await repo.insert(schema, chunk)) == len(chunk)
    await repo.waker.close()
    st = EntityStatements(schema)
    write = created_write(tenant, ids[7], version=1)
    row = {
        "id": write.record.id,
        "types": write.record.types,
        "scopes": None,
        "attrs": write.record.attrs,
        "modified_at": write.record.modified_at,
        "expires_at": None,
        "version": 1,
        "geo": False,
    }
    updated = await _encoded([row], [], [write])
    plain = await _encoded([row], None, [write])
    deleted = await _encoded([{"id": write.record.id, "version": 1}], None, [write])
    del deleted[1]  # no geometry parameter in a delete
    async with pool.acquire() as conn:
        await conn.execute(f"ANALYZE {schema}.entities")
        assert await conn.fetchval(
            "SELECT reltuples FROM pg_class WHERE oid = $1::regclass", f"{schema}.entities"
        ) == pytest.approx(ENTITIES, rel=0.1)
        plans = {
            "update": await _generic_plan(conn, st.update, updated),
            "update_plain": await _generic_plan(conn, st.update_plain, plain),
            "delete": await _generic_plan(conn, st.delete, deleted),
        }
        # the statements' own effect is unchanged: the update applies at its version only
        assert await conn.fetchval(st.update_plain, *plain) == write.record.id
        assert await conn.fetchval(st.update_plain, *plain) is None
    for name, scans in plans.items():
        assert ("Seq Scan", "entities") not in scans, (name, sorted(scans))
        assert any(rel == "entities_pkey" for _, rel in scans), (name, sorted(scans))
