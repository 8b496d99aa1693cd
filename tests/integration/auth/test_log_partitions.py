"""The access and audit logs stay bounded: monthly partitions are made ahead (this month and the
next two) and those wholly past the retention are dropped; an insert into a month with no
partition yet creates it."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from city_os.store.postgres.auth_log import AccessEntry, LogPartitions, record_access
from city_os.store.postgres.db import create_pool
from tests.conftest import TEST_DSN


async def partitions(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'cityos.access_log'::regclass"
    )
    return {r["relname"] for r in rows}


async def test_partitions_ahead_and_dropped_after_retention(tenant: str) -> None:
    pool = await create_pool(TEST_DSN, 1, 2)
    try:
        logs = LogPartitions(pool, retention_days=400)
        await logs.maintain(datetime(2020, 11, 15, tzinfo=UTC))
        async with pool.acquire() as conn:
            made = await partitions(conn)
            assert {"access_log_p202011", "access_log_p202012", "access_log_p202101"} <= made
            # a month nobody prepared: the insert makes its partition and goes through
            entry = AccessEntry(
                tenant, "https://idp", "c-1", "app", "oidc:x#y", None, "urn:e:1", "read"
            )
            await record_access(conn, [entry], at=datetime(2019, 6, 1, tzinfo=UTC))
            assert "access_log_p201906" in await partitions(conn)
        dropped = await logs.maintain()
        assert {"access_log_p201906", "access_log_p202011", "audit_log_p202011"} <= set(dropped)
        async with pool.acquire() as conn:
            left = await partitions(conn)
            now = datetime.now(UTC)
            assert f"access_log_p{now:%Y%m}" in left
            assert not {p for p in left if p < "access_log_p2021"}
    finally:
        await pool.close()
