"""Shared test fixtures: a real city-os app on a real PostgreSQL/PostGIS test database.

Each test gets its own NGSI-LD tenant (so its own PostgreSQL schema) instead of a wiped database:
tests stay independent and tenancy is exercised all the time.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from city_os.app import create_app
from city_os.config import Settings
from city_os.devstack import TansuProcess, free_port, start_tansu
from city_os.store.postgres.query_sql import check_identifier

TEST_DSN = os.environ.get(
    "CITYOS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/cityos_test"
)


def test_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": TEST_DSN,
        "db_pool_min": 1,
        "db_pool_max": 8,
        "expiry_interval": 0.2,
        "context_fetch_timeout": 2.0,
        "outbound_allow": "loopback",  # the tests' @context and notification servers
        # Only the notifier's own tests run one (it joins a consumer group: seconds on Tansu).
        "notifier_enabled": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def _forget_earlier_runs() -> None:
    """Remove what earlier test runs left in the test database: their tenants (every test
    tenant is named test-…), with their schemas and registry rows, and the outbox (events of
    the apps without Kafka pile up there, and every relay a test starts would publish them).
    Runs and CI share this machine's database, so without this it grows with every run."""
    conn = await asyncpg.connect(TEST_DSN)
    try:
        if not await conn.fetchval("SELECT to_regclass('cityos.tenants') IS NOT NULL"):
            return  # a new database: nothing to forget
        schemas = [
            r["schema_name"]
            for r in await conn.fetch(
                "SELECT schema_name FROM cityos.tenants WHERE name LIKE 'test-%'"
            )
        ]
        # A bounded number of locks per transaction: a tenant schema holds ~40 relations (its
        # temporal history partitions and their indexes included).
        for i in range(0, len(schemas), 10):
            chunk = schemas[i : i + 10]
            async with conn.transaction():
                await conn.execute(
                    "DROP SCHEMA IF EXISTS " + ", ".join(map(check_identifier, chunk)) + " CASCADE"
                )
                await conn.execute(
                    "DELETE FROM cityos.tenants WHERE schema_name = ANY($1::text[])", chunk
                )
                await conn.execute(
                    "DELETE FROM cityos.migrations WHERE name = ANY($1::text[])",
                    ["tenant:" + s for s in chunk],
                )
        if await conn.fetchval("SELECT to_regclass('cityos.snapshots') IS NOT NULL"):
            # the frozen copies of the test tenants' Snapshots (city_os/snapshots/)
            for r in await conn.fetch(
                "DELETE FROM cityos.snapshots WHERE tenant LIKE 'test-%' RETURNING schema_name"
            ):
                await conn.execute(
                    f"DROP SCHEMA IF EXISTS {check_identifier(r['schema_name'])} CASCADE"
                )
                await conn.execute(
                    "DELETE FROM cityos.migrations WHERE name = $1", "tenant:" + r["schema_name"]
                )
        tables = ("value_indexes", "schema_types", "jsonld_contexts", "api_keys", "consents")
        notifier = ("subscription_timers", "notifications")
        for table in (*tables, *notifier, "access_log", "audit_log"):
            if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"cityos.{table}"):
                await conn.execute(f"DELETE FROM cityos.{table} WHERE tenant LIKE 'test-%'")
        await conn.execute("TRUNCATE cityos.outbox")
    finally:
        await conn.close()


@pytest.fixture(scope="session", autouse=True)
def _clean_test_database() -> None:
    asyncio.run(_forget_earlier_runs())


@pytest.fixture(scope="session")
async def client() -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    app = create_app(test_settings())
    async with TestClient(TestServer(app)) as c:
        yield c


@pytest.fixture
async def tansu() -> AsyncIterator[TansuProcess]:
    """A Kafka-protocol broker (Tansu) of the test's own, on a free port."""
    broker = await start_tansu(free_port())
    try:
        yield broker
    finally:
        await broker.stop()


@pytest.fixture
def tenant() -> str:
    return "test-" + uuid.uuid4().hex[:12]
