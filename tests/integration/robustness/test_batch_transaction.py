"""``EntityRepository.write_batch`` against real PostgreSQL: one transaction per batch request.

A write PostgreSQL refuses (here a timestamp only the store sees, bypassing the checks in front
of it) is found entity by entity under savepoints: the others commit together, the refused one
leaves no row and no outbox event. A conflict (an insert of an id that exists, an update of a
stale version) rolls the whole batch back. And the HTTP batch endpoints report exactly what
was stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from city_os.store.postgres.db import Tenants, create_pool
from city_os.store.postgres.entities import BatchWrites, EntityRepository
from tests.conftest import TEST_DSN
from tests.integration.robustness.support import API, snapshot
from tests.integration.writes import created_write

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(TEST_DSN, 1, 2)
    yield p
    await p.close()


_write = created_write


async def test_a_refused_write_is_named_and_the_others_commit(
    pool: asyncpg.Pool, tenant: str
) -> None:
    schema = await Tenants(pool).schema(tenant, create=True)
    repo = EntityRepository(pool)
    writes = [_write(tenant, f"urn:e:{i}") for i in range(5)]
    writes[2] = _write(tenant, "urn:e:2", expires="not a time")  # PostgreSQL refuses it
    outcome = await repo.write_batch(schema, BatchWrites(inserts=writes))
    assert outcome.committed
    assert set(outcome.failed) == {"urn:e:2"}
    assert outcome.failed["urn:e:2"][0].startswith("22")  # a data exception
    assert outcome.written == {"urn:e:0", "urn:e:1", "urn:e:3", "urn:e:4"}
    entities, outbox = await snapshot(tenant)
    assert [e[0] for e in entities] == ["urn:e:0", "urn:e:1", "urn:e:3", "urn:e:4"]
    assert sorted(o[1] for o in outbox) == ["urn:e:0", "urn:e:1", "urn:e:3", "urn:e:4"]
    await repo.waker.close()


async def test_a_conflict_rolls_the_whole_batch_back(pool: asyncpg.Pool, tenant: str) -> None:
    schema = await Tenants(pool).schema(tenant, create=True)
    repo = EntityRepository(pool)
    assert await repo.insert(schema, [_write(tenant, "urn:e:old")])
    before = await snapshot(tenant)
    batch = BatchWrites(
        inserts=[_write(tenant, "urn:e:new"), _write(tenant, "urn:e:old")],  # exists: conflict
        updates=[_write(tenant, "urn:e:old", version=99)],  # stale version: conflict
    )
    outcome = await repo.write_batch(schema, batch)
    assert not outcome.committed and outcome.conflicts >= {"urn:e:old"}
    assert await snapshot(tenant) == before  # urn:e:new was not kept
    await repo.waker.close()


async def test_batch_create_reports_exactly_what_was_stored(client: Client, tenant: str) -> None:
    headers = {"NGSILD-Tenant": tenant, "Content-Type": "application/json"}
    first = [{"id": f"urn:ngsi-ld:T:{i}", "type": "T", "p": i} for i in range(3)]
    resp = await client.post(f"{API}/entityOperations/create", json=first, headers=headers)
    assert resp.status == 201
    mixed = [
        {"id": "urn:ngsi-ld:T:10", "type": "T", "expiresAt": "2030-01-01T00:00:00+1700"},
        {"id": "urn:ngsi-ld:T:11", "type": "T", "p": 11},
    ]
    resp = await client.post(f"{API}/entityOperations/upsert", json=mixed, headers=headers)
    result = await resp.json()
    assert resp.status == 207
    assert result["success"] == ["urn:ngsi-ld:T:11"]
    assert [e["entityId"] for e in result["errors"]] == ["urn:ngsi-ld:T:10"]
    entities, outbox = await snapshot(tenant)
    assert {e[0] for e in entities} == {f"urn:ngsi-ld:T:{i}" for i in (0, 1, 2, 11)}
    assert len(outbox) == 4
