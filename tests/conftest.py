"""Shared test fixtures: a real city-os app on a real PostgreSQL/PostGIS test database.

Each test gets its own NGSI-LD tenant (so its own PostgreSQL schema) instead of a wiped database:
tests stay independent and tenancy is exercised all the time.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from city_os.app import create_app
from city_os.config import Settings
from city_os.devstack import TansuProcess, free_port, start_tansu

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
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


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
