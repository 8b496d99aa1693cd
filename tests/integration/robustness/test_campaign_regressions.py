"""500s found by the hostile-input campaign over every route of /openapi.json (issue 16, item
4: U+0000, huge and non-ASCII numbers, deep values, bad time zones, hostile headers), each
now a 4xx ProblemDetails (or the NGSIv2 error of its API) that changes nothing."""

from __future__ import annotations

import asyncio
import random
from typing import Any
from urllib.parse import quote

import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient

from city_os.store.postgres.db import transient, unavailable
from tests.conftest import TEST_DSN
from tests.integration.robustness.support import check_problem, snapshot

Client = TestClient  # type: ignore[type-arg]
YEAR_10000 = "9999-12-31T23:59:59-10:00"  # year 10000 once in UTC: no Python datetime holds it


@pytest.mark.parametrize("name", ["²", "٣", "a\x00b"])
async def test_index_paths_with_odd_attribute_names(client: Client, tenant: str, name: str) -> None:
    headers = {"NGSILD-Tenant": tenant}
    await client.post(
        "/ngsi-ld/v1/entities",
        json={"id": "urn:ngsi-ld:Probe:1", "type": "Probe"},
        headers=headers,
    )
    before = await snapshot(tenant)
    for method in ("GET", "DELETE"):
        resp = await client.request(
            method, "/cityos/v1/indexes/" + quote(name, safe=""), headers=headers
        )
        body = await resp.json()
        assert resp.status in (400, 404), body
        check_problem(resp.status, body, resp.status)
    assert await snapshot(tenant) == before


V2_SUBSCRIPTION: dict[str, Any] = {
    "subject": {"entities": [{"idPattern": ".*"}], "condition": {"attrs": ["t"]}},
    "notification": {"http": {"url": "http://127.0.0.1:9/x"}, "attrs": ["t"]},
}


@pytest.mark.parametrize("stamp", [YEAR_10000, "0001-01-01T00:00:00+01:00"])
async def test_v2_subscription_expiring_beyond_year_9999(
    client: Client, tenant: str, stamp: str
) -> None:
    headers = {"Fiware-Service": tenant, "Content-Type": "application/json"}
    before = await snapshot(tenant)
    resp = await client.post(
        "/v2/subscriptions", data=orjson.dumps({**V2_SUBSCRIPTION, "expires": stamp}),
        headers=headers,
    )  # fmt: skip
    body = await resp.json()
    assert resp.status == 400, body
    assert body["error"] == "BadRequest" and "expires" in body["description"], body
    assert await snapshot(tenant) == before


async def test_api_key_expiring_beyond_year_9999(client: Client, tenant: str) -> None:
    headers = {"NGSILD-Tenant": tenant, "Content-Type": "application/json"}
    body = {"name": "k", "operations": ["read"], "expiresAt": YEAR_10000}
    resp = await client.post("/cityos/v1/apikeys", data=orjson.dumps(body), headers=headers)
    problem = await resp.json()
    check_problem(resp.status, problem, 400, "BadRequestData")
    assert "expiresAt" in problem["detail"], problem


async def test_a_deadlock_that_reaches_the_client_is_a_503() -> None:
    """The campaign's DELETE /cityos/v1/indexes/{attribute}, racing the background build of
    another index (DROP and CREATE INDEX CONCURRENTLY), got PostgreSQL's deadlock as a 500. A
    real deadlock between two connections: its error is transient (503 + Retry-After)."""
    first, second = await asyncpg.connect(TEST_DSN), await asyncpg.connect(TEST_DSN)
    key = random.randrange(2**40)

    async def crossed(conn: asyncpg.Connection, a: int, b: int, held: asyncio.Event,
                      other: asyncio.Event) -> None:  # fmt: skip
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", a)
            held.set()
            await other.wait()
            await conn.execute("SELECT pg_advisory_xact_lock($1)", b)

    try:
        one, two = asyncio.Event(), asyncio.Event()
        outcomes = await asyncio.gather(
            crossed(first, key, key + 1, one, two),
            crossed(second, key + 1, key, two, one),
            return_exceptions=True,
        )
    finally:
        await first.close()
        await second.close()
    errors = [e for e in outcomes if isinstance(e, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], asyncpg.DeadlockDetectedError), outcomes
    assert "40P01" in (transient(errors[0]) or "")
    assert unavailable(errors[0]) is None and transient(ValueError()) is None
