"""Backup and restore as deploy/README.md documents it: ``pg_dump`` of the broker's schemas,
``pg_restore`` into a fresh database, and a broker on that database finds every entity, with
its geometry still queryable (the PostGIS column and its GiST index come back too)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from city_os.app import create_app
from city_os.store.postgres.db import DEFAULT_SCHEMA
from tests.conftest import TEST_DSN
from tests.conftest import test_settings as settings_for_tests

N = 25


async def _run(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, f"{args[0]}: {err.decode()[-2000:]}"


def _dsn(database: str) -> str:
    parts = urlsplit(TEST_DSN)
    return urlunsplit(parts._replace(path="/" + database))


@pytest.fixture
async def fresh_database() -> AsyncIterator[str]:
    name = "cityos_restore_" + uuid.uuid4().hex[:10]
    admin = await asyncpg.connect(_dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _entity(i: int) -> dict[str, object]:
    return {
        "id": f"urn:ngsi-ld:Shelter:backup-{i}",
        "type": "https://city-os.jp/ns/EvacuationShelter",
        "https://city-os.jp/ns/capacity": {"type": "Property", "value": 100 + i},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [130.29 + i / 1000, 33.25]},
        },
    }


async def test_a_dump_restored_into_a_fresh_database_has_every_entity(
    client: TestClient,  # type: ignore[type-arg]
    tenant: str,
    fresh_database: str,
    tmp_path: Path,
) -> None:
    headers = {"NGSILD-Tenant": tenant}
    for i in range(N):
        resp = await client.post("/ngsi-ld/v1/entities", json=_entity(i), headers=headers)
        assert resp.status == 201, await resp.text()
    query = {"type": "https://city-os.jp/ns/EvacuationShelter", "limit": "100"}
    before = await (await client.get("/ngsi-ld/v1/entities", params=query, headers=headers)).json()
    assert len(before) == N

    conn = await asyncpg.connect(TEST_DSN)
    try:
        schema = await conn.fetchval(
            "SELECT schema_name FROM cityos.tenants WHERE name = $1", tenant
        )
    finally:
        await conn.close()
    dump = tmp_path / "cityos.dump"
    # The documented procedure dumps the whole database; the test database holds every other
    # test's tenants too, so only this tenant's schema and the broker's own are dumped here.
    await _run("pg_dump", "--format=custom", "--schema=cityos", f"--schema={DEFAULT_SCHEMA}",
               f"--schema={schema}", f"--file={dump}", TEST_DSN)  # fmt: skip
    target = _dsn(fresh_database)
    restored = await asyncpg.connect(target)
    try:
        await restored.execute("CREATE EXTENSION IF NOT EXISTS postgis")  # lives in public
    finally:
        await restored.close()
    await _run("pg_restore", "--no-owner", "--exit-on-error", f"--dbname={target}", str(dump))

    app = create_app(settings_for_tests(database_url=target))
    async with TestClient(TestServer(app)) as other:
        after = await (
            await other.get("/ngsi-ld/v1/entities", params=query, headers=headers)
        ).json()
        assert sorted(after, key=lambda e: e["id"]) == sorted(before, key=lambda e: e["id"])
        near = {**query, "georel": "near;maxDistance==420", "geometry": "Point",
                "coordinates": "[130.29,33.25]"}  # fmt: skip
        # 1/1000 degree of longitude is 93 m here: ids 0-4 are within 420 m, 5 (465 m) is not.
        resp = await other.get("/ngsi-ld/v1/entities", params=near, headers=headers)
        found = await resp.json()
        assert {e["id"] for e in found} == {f"urn:ngsi-ld:Shelter:backup-{i}" for i in range(5)}
