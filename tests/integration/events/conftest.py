"""Fixtures for the change-event tests: a real Tansu on a free port, a topic, a pool."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.conftest import TEST_DSN


@pytest.fixture
def topic() -> str:
    return f"test-events-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(TEST_DSN, min_size=1, max_size=4)
    assert p is not None
    yield p
    await p.close()
