"""/cityos/v1/indexes: value indexes are built in the tenant's schema, change no query result,
and are listed, retrieved and dropped; bad requests get ProblemDetails."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import asyncpg
from aiohttp.test_utils import TestClient

from city_os.store.postgres.db import schema_name
from city_os.store.postgres.indexes import index_names
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
    assert resp.status == 201, await resp.text()
    assert resp.headers["Location"] == f"{INDEXES}/{quote(LEVEL, safe='')}"
    body = await resp.json()
    assert body == {**body, "attribute": "level", "attributeIri": LEVEL, "status": "ready"}

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
