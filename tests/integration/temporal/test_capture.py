"""History capture: every write path records its attribute instances in the same transaction
(triggers of tenant_temporal.sql), read back straight from attr_instances."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from city_os.store.postgres.db import schema_name
from tests.conftest import TEST_DSN

API = "/ngsi-ld/v1"
CORE = "https://uri.etsi.org/ngsi-ld/default-context/"
EID = "urn:ngsi-ld:RiverGauge:1"
Client = TestClient  # type: ignore[type-arg]


async def _rows(tenant: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(TEST_DSN)
    try:
        rows = await conn.fetch(
            f"SELECT attr, dataset_id, num, deleted_at IS NOT NULL AS deleted, inst::text"
            f" FROM {schema_name(tenant)}.attr_instances ORDER BY recorded_at, attr, dataset_id"
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]


async def test_every_write_path_is_recorded(client: Client, tenant: str) -> None:
    h = {"NGSILD-Tenant": tenant}
    entity = {
        "id": EID,
        "type": "RiverGauge",
        "waterLevel": {"type": "Property", "value": 1.5, "observedAt": "2026-11-30T10:00:00Z"},
        "name": {"type": "Property", "value": "Kase"},
    }
    assert (await client.post(f"{API}/entities", json=entity, headers=h)).status == 201
    assert len(await _rows(tenant)) == 2
    patch = {"waterLevel": {"type": "Property", "value": 1.7}}
    r = await client.patch(f"{API}/entities/{EID}/attrs", json=patch, headers=h)
    assert r.status == 204
    rows = await _rows(tenant)
    assert [(x["attr"], x["num"]) for x in rows[2:]] == [(CORE + "waterLevel", 1.7)]
    extra = {"waterLevel": {"type": "Property", "value": 9, "datasetId": "urn:ds:a"}}
    assert (await client.post(f"{API}/entities/{EID}/attrs", json=extra, headers=h)).status == 204
    rows = await _rows(tenant)
    assert (rows[-1]["dataset_id"], rows[-1]["num"]) == ("urn:ds:a", 9.0)
    assert (await client.delete(f"{API}/entities/{EID}/attrs/name", headers=h)).status == 204
    rows = await _rows(tenant)
    assert (rows[-1]["attr"], rows[-1]["deleted"]) == (CORE + "name", True)
    assert len(rows) == 5
    assert (await client.delete(f"{API}/entities/{EID}", headers=h)).status == 204
    rows = await _rows(tenant)
    assert [r["deleted"] for r in rows[5:]] == [True, True]  # both waterLevel instances


async def test_batch_upsert_and_merge_are_recorded(client: Client, tenant: str) -> None:
    h = {"NGSILD-Tenant": tenant}
    batch = [
        {"id": f"urn:ngsi-ld:RiverGauge:{i}", "type": "RiverGauge",
         "waterLevel": {"type": "Property", "value": i}}
        for i in range(3)
    ]  # fmt: skip
    r = await client.post(f"{API}/entityOperations/upsert", json=batch, headers=h)
    assert r.status == 201
    assert sorted(x["num"] for x in await _rows(tenant)) == [0.0, 1.0, 2.0]
    merge = {"waterLevel": {"type": "Property", "value": 5}}
    r = await client.patch(f"{API}/entities/urn:ngsi-ld:RiverGauge:1", json=merge, headers=h)
    assert r.status == 204
    assert (await _rows(tenant))[-1]["num"] == 5.0
