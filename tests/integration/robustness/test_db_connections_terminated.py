"""The broker's database connections are terminated under a write load (what a PostgreSQL
restart or failover looks like): requests in flight get 503 with Retry-After (never a 500),
nothing acknowledged is lost, and the same process serves writes again by itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import asyncpg
import orjson

from city_os.store.postgres.db import schema_name
from tests.conftest import TEST_DSN
from tests.integration.robustness.support import API, ERR, Broker, poll, serve

WRITERS = 6
ROUNDS = 40  # terminations at most, waiting for one that a request in flight meets


async def _terminate(broker: Broker) -> int:
    """Terminate the connections of this broker (application_name city-os, opened since it
    started, in the test database): not other engineers' brokers nor the test's own."""
    conn = await asyncpg.connect(TEST_DSN)
    try:
        return int(
            await conn.fetchval(
                """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                   WHERE application_name = 'city-os' AND datname = current_database()
                     AND backend_start >= to_timestamp($1) AND pid <> pg_backend_pid()""",
                broker.started_at,
            )
        )
    finally:
        await conn.close()


async def _writer(
    url: str, tenant: str, w: int, stop: asyncio.Event, outcomes: list[tuple[str, int, Any]]
) -> None:
    headers = {"NGSILD-Tenant": tenant, "Content-Type": "application/json"}
    n = 0
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            n += 1
            if n % 3:
                entity_id = f"urn:ngsi-ld:Sensor:w{w}-{n}"
                path, body = "/entities", {"id": entity_id, "type": "Sensor", "n": n}
                ids = [entity_id]
            else:
                ids = [f"urn:ngsi-ld:Sensor:w{w}-{n}-{i}" for i in range(20)]
                path, body = (
                    "/entityOperations/upsert",
                    [{"id": i, "type": "Sensor", "n": n} for i in ids],
                )
            async with http.post(
                url + API + path, data=orjson.dumps(body), headers=headers
            ) as resp:
                payload = await resp.read()
                problem = orjson.loads(payload) if payload else None
                if resp.status == 503:
                    assert resp.headers.get("Retry-After", "").isdigit(), resp.headers
                outcomes.append((",".join(ids), resp.status, problem))


async def test_terminated_connections_give_503_and_lose_nothing(tenant: str) -> None:
    async with serve(db_pool_max="4", db_acquire_timeout="3", db_retry_after="1") as broker:
        stop = asyncio.Event()
        outcomes: list[tuple[str, int, Any]] = []
        writers = [
            asyncio.create_task(_writer(broker.url, tenant, w, stop, outcomes))
            for w in range(WRITERS)
        ]
        terminated = rounds = 0
        # Terminate until a request in flight has met it (six writers share four connections,
        # so one nearly always is): the 503 path itself must be seen, not assumed.
        while rounds < 4 or (503 not in {s for _, s, _ in outcomes} and rounds < ROUNDS):
            rounds += 1
            before = len(outcomes)

            async def progressed(before: int = before) -> bool:
                return len(outcomes) >= before + 20

            await poll(progressed)
            terminated += await _terminate(broker)
        started = len(outcomes)

        async def recovered() -> bool:  # later writes succeed again, no restart
            return sum(s in (201, 204) for _, s, _ in outcomes[started:]) >= 30

        await poll(recovered)
        stop.set()
        await asyncio.gather(*writers)
        assert broker.process.returncode is None
        log = broker.log()
    assert terminated >= 4, "the broker's connections must have been terminated"
    statuses = {s for _, s, _ in outcomes}
    assert statuses <= {201, 204, 503}, (statuses, log)
    for _, status, problem in outcomes:
        if status == 503:
            assert problem["type"] == ERR + "ServiceUnavailable", problem
            assert problem["detail"]
    assert 503 in statuses, f"no request met any of {rounds} terminations"
    acknowledged = [ids for ids, s, _ in outcomes if s in (201, 204)]
    conn = await asyncpg.connect(TEST_DSN)
    try:
        stored = {
            r["id"] for r in await conn.fetch(f"SELECT id FROM {schema_name(tenant)}.entities")
        }
        evented = {
            r["entity_id"]
            for r in await conn.fetch(
                "SELECT entity_id FROM cityos.outbox WHERE tenant = $1", tenant
            )
        }
    finally:
        await conn.close()
    lost = [i for ids in acknowledged for i in ids.split(",") if i not in stored]
    assert not lost, lost[:5]
    assert stored <= evented  # every stored entity has its outbox row
