"""/cityos/v1/indexes: value indexes are built in the tenant's schema, change no query result,
and are listed, retrieved and dropped; bad requests get ProblemDetails."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import asyncpg
from aiohttp.test_utils import TestClient

from city_os.core.indexes import ValueIndexService
from city_os.store.postgres.db import Tenants, create_pool, schema_name
from city_os.store.postgres.indexes import ValueIndexRepository, index_names
from tests.conftest import TEST_DSN

Client = TestClient  # type: ignore[type-arg]
API = "/ngsi-ld/v1"
INDEXES = "/cityos/v1/indexes"
NS = "https://uri.etsi.org/ngsi-ld/default-context/"  # terms without an @context expand here
LEVEL = NS + "level"


def hdr(tenant: str) -> dict[str, str]:
    return {"NGSILD-Tenant": tenant}


def gauge(n: int, level: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Gauge:{n:03d}", "type": "Gauge", "level": level}


LEVELS: list[Any] = [
    {"type": "Property", "value": 1.5},
    {"type": "Property", "value": 4.2},
    [
        {"type": "Property", "value": 0.5, "datasetId": "urn:ngsi-ld:Dataset:a"},
        {"type": "Property", "value": 6.0, "datasetId": "urn:ngsi-ld:Dataset:b"},
    ],
    {"type": "Property", "value": [2.0, 3.5]},
    {"type": "Property", "value": "high"},
    {"type": "Property", "value": 3.0},
]


async def _load(client: Client, tenant: str) -> None:
    for n, level in enumerate(LEVELS):
        resp = await client.post(
            f"{API}/entities",
            json=gauge(n, level),
            headers=hdr(tenant),
        )
        assert resp.status == 201, await resp.text()


async def _ids(client: Client, tenant: str, q: str, count: bool = False) -> tuple[list[str], str]:
    resp = await client.get(
        f"{API}/entities",
        params={"type": "Gauge", "q": q, "limit": "100", "count": str(count).lower()},
        headers=hdr(tenant),
    )
    assert resp.status == 200, await resp.text()
    return [e["id"] for e in await resp.json()], resp.headers.get("NGSILD-Results-Count", "")


QUERIES = ["level>3", "level>=3", "level<1", "level<=2", "level>3;level<5", "level==1..4"]


async def test_index_lifecycle_changes_no_result(client: Client, tenant: str) -> None:
    await _load(client, tenant)
    before = {q: await _ids(client, tenant, q, count=True) for q in QUERIES}
    assert before[QUERIES[0]][0] == [
        "urn:ngsi-ld:Gauge:001",
        "urn:ngsi-ld:Gauge:002",
        "urn:ngsi-ld:Gauge:003",
    ]

    resp = await client.post(
        INDEXES,
        json={"attribute": "level", "kind": "number"},
        headers=hdr(tenant),
    )
    assert resp.status == 202, await resp.text()
    location = resp.headers["Location"]
    assert location == f"{INDEXES}/{quote(LEVEL, safe='')}"
    body = await resp.json()
    assert body == {**body, "attribute": "level", "attributeIri": LEVEL, "status": "building"}
    await _until_ready(client, tenant, location)

    conn = await asyncpg.connect(TEST_DSN)
    try:
        found = await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE schemaname = $1", schema_name(tenant)
        )
        assert set(index_names(LEVEL)) <= {r["indexname"] for r in found}
    finally:
        await conn.close()

    after = {q: await _ids(client, tenant, q, count=True) for q in QUERIES}
    assert after == before

    again = await client.post(INDEXES, json={"attribute": LEVEL}, headers=hdr(tenant))
    assert again.status == 200  # already there: nothing built twice

    listed = await client.get(INDEXES, headers=hdr(tenant))
    assert [i["attributeIri"] for i in await listed.json()] == [LEVEL]
    one = await client.get(f"{INDEXES}/{quote(LEVEL, safe='')}", headers=hdr(tenant))
    assert (await one.json())["kind"] == "number"

    gone = await client.delete(f"{INDEXES}/{quote(LEVEL, safe='')}", headers=hdr(tenant))
    assert gone.status == 204
    assert {q: await _ids(client, tenant, q, count=True) for q in QUERIES} == before
    missing = await client.delete(f"{INDEXES}/{quote(LEVEL, safe='')}", headers=hdr(tenant))
    await _problem(missing, 404, "ResourceNotFound")


async def _until_ready(client: Client, tenant: str, location: str) -> None:
    """Poll the registration until its background build is done (no fixed sleeps)."""
    deadline = time.monotonic() + 60
    while True:
        resp = await client.get(location, headers=hdr(tenant))
        status = (await resp.json())["status"]
        if status != "building":
            assert status == "ready"
            return
        assert time.monotonic() < deadline, "the value index was not built in time"
        await asyncio.sleep(0.05)


async def test_a_build_left_unfinished_is_resumed_on_start(tenant: str) -> None:
    """A process stopped mid-build leaves the registration 'building' (and perhaps an invalid
    index); the next process to start finishes it."""
    pool = await create_pool(TEST_DSN, 1, 2)
    try:
        tenants = Tenants(pool)
        schema = await tenants.schema(tenant, create=True)
        repo = ValueIndexRepository(pool, TEST_DSN)
        await repo.register(tenant, schema, LEVEL, "level", "number")  # never built
        service = ValueIndexService(repo, tenants)
        await service.start()
        deadline = time.monotonic() + 60
        while (found := await repo.get(tenant, LEVEL)) is not None and found.status == "building":
            assert time.monotonic() < deadline, "the build was not resumed"
            await asyncio.sleep(0.05)
        await service.close()
        assert found is not None and found.status == "ready"
        assert await repo.numbers(schema) == frozenset({LEVEL})
        assert await repo.drop(tenant, schema, LEVEL)
    finally:
        await pool.close()


async def _problem(resp: Any, status: int, kind: str) -> None:
    assert resp.status == status, await resp.text()
    body = await resp.json(content_type=None)
    assert body["type"] == "https://uri.etsi.org/ngsi-ld/errors/" + kind
    assert body["detail"]


async def test_bad_requests(client: Client, tenant: str) -> None:
    await _load(client, tenant)
    cases: list[tuple[Any, int, str]] = [
        ({"attribute": LEVEL, "kind": "text"}, 400, "BadRequestData"),
        ({"attribute": 5}, 400, "BadRequestData"),
        ({}, 400, "BadRequestData"),
        ({"attribute": LEVEL, "unique": True}, 400, "BadRequestData"),
        ({"attribute": "bad name"}, 400, "BadRequestData"),
        ([LEVEL], 400, "InvalidRequest"),
    ]
    for payload, status, kind in cases:
        resp = await client.post(INDEXES, json=payload, headers=hdr(tenant))
        await _problem(resp, status, kind)
    resp = await client.get(INDEXES, headers=hdr(tenant))
    assert await resp.json() == []  # nothing half-built


async def test_unknown_tenant_is_404(client: Client, tenant: str) -> None:
    resp = await client.get(INDEXES, headers=hdr(tenant))
    await _problem(resp, 404, "NonexistentTenant")
