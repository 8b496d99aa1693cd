"""Retention drops whole monthly partitions (never rows one by one); capture can be off."""

from __future__ import annotations

import asyncpg

from city_os.api.keys import TEMPORAL
from city_os.store.postgres.db import schema_name
from city_os.temporal.lifecycle import maintain_once
from tests.conftest import TEST_DSN
from tests.integration.temporal.helpers import Client, create, get, vehicle

EID = "urn:ngsi-ld:Vehicle:1"


async def _partitions(conn: asyncpg.Connection, schema: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = $1::regclass ORDER BY 1",
        f"{schema}.attr_instances",
    )
    return [r["relname"] for r in rows]


async def test_retention_drops_old_partitions_whole(client: Client, tenant: str) -> None:
    await create(client, tenant, vehicle(EID, [1.0, 2.0]))  # recorded now: kept
    schema = schema_name(tenant)
    conn = await asyncpg.connect(TEST_DSN)
    try:
        # History recorded two years ago, in its own monthly partition.
        await conn.execute(
            f"CREATE TABLE {schema}.attr_instances_200001 PARTITION OF {schema}.attr_instances"
            " FOR VALUES FROM ('2000-01-01Z') TO ('2000-02-01Z')"
        )
        await conn.execute(
            f"INSERT INTO {schema}.attr_instances (entity_id, attr, created_at, modified_at,"
            " observed_at, num, inst, recorded_at)"
            " SELECT $1, 'https://uri.etsi.org/ngsi-ld/default-context/speed',"
            ' t, t, t, 0, \'{"type": "Property", "value": 0}\', t'
            " FROM generate_series('2000-01-02Z'::timestamptz, '2000-01-30Z', '1 day') t",
            EID,
        )
        rollups = f"SELECT count(*) FROM {schema}.attr_rollups WHERE month = '2000-01-01'"
        assert await conn.fetchval(rollups) == 29  # one hourly bucket a day
        service = client.app[TEMPORAL]
        await service.repo.configure(tenant, schema, capture=True, retention_days=365)
        before = await _partitions(conn, schema)
        assert "attr_instances_200001" in before
        assert await maintain_once(service) >= 1
        after = await _partitions(conn, schema)
        assert "attr_instances_200001" not in after
        assert set(after) == set(before) - {"attr_instances_200001"}
        assert await conn.fetchval(rollups) == 0  # the partition's rollups went with it
    finally:
        await conn.close()
    status, body, _ = await get(client, tenant, f"/entities/{EID}")
    assert status == 200 and [i["value"] for i in body["speed"]] == [1.0, 2.0]


async def test_capture_off_records_nothing(client: Client, tenant: str) -> None:
    h = {"NGSILD-Tenant": tenant}
    entity = {"id": EID, "type": "Vehicle", "speed": {"type": "Property", "value": 1}}
    assert (await client.post("/ngsi-ld/v1/entities", json=entity, headers=h)).status == 201
    service = client.app[TEMPORAL]
    schema = schema_name(tenant)
    await service.repo.configure(tenant, schema, capture=False, retention_days=None)
    patch = {"speed": {"type": "Property", "value": 2}}
    assert (
        await client.patch(f"/ngsi-ld/v1/entities/{EID}/attrs", json=patch, headers=h)
    ).status == 204
    _, body, _ = await get(client, tenant, f"/entities/{EID}")
    assert [i["value"] for i in body["speed"]] == [1]
    await service.repo.configure(tenant, schema, capture=True, retention_days=None)
    patch = {"speed": {"type": "Property", "value": 3}}
    assert (
        await client.patch(f"/ngsi-ld/v1/entities/{EID}/attrs", json=patch, headers=h)
    ).status == 204
    _status, body, _ = await get(client, tenant, f"/entities/{EID}")
    assert [i["value"] for i in body["speed"]] == [1, 3]
