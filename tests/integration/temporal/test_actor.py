"""Audit in the temporal history (issue #10): every captured or provisioned instance records
who made the change (attr_instances.actor / client, the cityosactor / cityosclient of the
request), shown with options=sysAttrs; NULL for authentication off and the broker itself, and a
pooled connection's next transaction does not inherit the previous actor."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from city_os.events.model import change_event
from city_os.ngsild.representation import EntityRecord
from city_os.store.postgres.db import Tenants, create_pool, schema_name
from city_os.store.postgres.entities import EntityRepository
from city_os.store.postgres.entity_sql import Write
from tests.conftest import TEST_DSN
from tests.integration.auth.conftest import as_user, citizens, secured
from tests.integration.auth.issuer import LocalIssuer

__all__ = ["citizens", "secured"]  # the auth room's fixtures, used here (issuer: tests/integration)
API = "/ngsi-ld/v1"
Client = TestClient  # type: ignore[type-arg]


async def _actors(tenant: str, entity_id: str) -> list[tuple[str | None, str | None]]:
    conn = await asyncpg.connect(TEST_DSN)
    try:
        rows = await conn.fetch(
            f"SELECT actor, client FROM {schema_name(tenant)}.attr_instances"
            " WHERE entity_id = $1 ORDER BY recorded_at, attr",
            entity_id,
        )
    finally:
        await conn.close()
    return [(r["actor"], r["client"]) for r in rows]


async def _write_all_ways(secured: Client, headers: dict[str, str], n: str) -> list[str]:
    """A create, a partial update, a batch upsert and a temporal provision; their ids."""
    one, two, three = (f"urn:ngsi-ld:Gauge:{n}-{i}" for i in range(3))
    level = {"type": "Property", "value": 1.5, "observedAt": "2026-11-30T10:00:00Z"}
    early = {**level, "observedAt": "2026-11-30T09:00:00Z"}  # provisioned, not the current state
    steps: list[tuple[str, Any, int]] = [
        (f"{API}/entities", {"id": one, "type": "Gauge", "level": level}, 201),
        (f"{API}/entities/{one}/attrs", {"level": {"type": "Property", "value": 2}}, 204),
        (f"{API}/entityOperations/upsert", [{"id": two, "type": "Gauge", "level": level}], 201),
        (f"{API}/temporal/entities", {"id": three, "type": "Gauge", "level": [early, level]}, 201),
    ]
    for path, body, status in steps:
        if path.endswith("/attrs"):
            resp = await secured.patch(path, json=body, headers=headers)
        else:
            resp = await secured.post(path, json=body, headers=headers)
        assert resp.status == status, (path, resp.status, await resp.text())
    return [one, two, three]


async def test_users_and_keys_are_recorded(
    secured: Client, issuer: LocalIssuer, tenant: str
) -> None:
    admin = as_user(issuer, tenant, "admin", sub="staff-9", azp="console")
    resp = await secured.post(
        "/cityos/v1/apikeys",
        json={"name": "gauges", "operations": ["read", "create", "update"]},
        headers=admin,
    )
    assert resp.status == 201, await resp.text()
    made = await resp.json()
    key = {"X-API-Key": made["key"], "NGSILD-Tenant": tenant}
    by_user = await _write_all_ways(secured, admin, "u")
    by_key = await _write_all_ways(secured, key, "k")
    user = (f"oidc:{issuer.url}#staff-9", "console")
    for eid in by_user:
        found = await _actors(tenant, eid)
        assert found and set(found) == {user}, (eid, found)
    assert len(await _actors(tenant, by_user[0])) == 2  # the create and the partial update
    assert len(await _actors(tenant, by_user[2])) == 2  # the current state and the earlier one
    for eid in by_key:
        found = await _actors(tenant, eid)
        assert found and set(found) == {(f"apikey:{made['id']}", None)}, (eid, found)

    # Shown with options=sysAttrs only, as city-os extension members of each instance.
    path = f"{API}/temporal/entities/{by_user[0]}"
    resp = await secured.get(path, params={"options": "sysAttrs"}, headers=admin)
    assert resp.status == 200, await resp.text()
    instances = (await resp.json())["level"]
    assert len(instances) == 2
    for inst in instances:
        assert (inst["cityosactor"], inst["cityosclient"]) == user, inst
    resp = await secured.get(path, headers=admin)
    assert all("cityosactor" not in i for i in (await resp.json())["level"])

    # The CSV has the two audit columns with sysAttrs, and only then.
    csv = {**admin, "Accept": "text/csv"}
    resp = await secured.get(path, params={"options": "sysAttrs"}, headers=csv)
    assert resp.status == 200, await resp.text()
    head, *lines = (await resp.text()).splitlines()
    assert head == "entityId,attribute,datasetId,time,value,actor,client"
    assert len(lines) == 2
    assert all(line.endswith(f",{user[0]},console") for line in lines), lines
    resp = await secured.get(path, headers=csv)
    assert (await resp.text()).splitlines()[0] == "entityId,attribute,datasetId,time,value"

    # A deletion is recorded (as deletion records) by whoever deleted.
    resp = await secured.delete(f"{API}/entities/{by_key[1]}", headers=admin)
    assert resp.status == 204, await resp.text()
    assert await _actors(tenant, by_key[1]) == [(f"apikey:{made['id']}", None), user]

    # A modified instance (§5.6.16) is recorded as made by whoever modified it.
    resp = await secured.get(f"{API}/temporal/entities/{by_key[2]}", headers=admin)
    inst = (await resp.json())["level"][0]  # the earlier one, stored by the provision itself
    level = {"type": "Property", "value": 3, "observedAt": "2026-11-30T09:00:00Z"}
    resp = await secured.patch(
        f"{API}/temporal/entities/{by_key[2]}/attrs/level/{inst['instanceId']}",
        json={"level": level},
        headers=admin,
    )
    assert resp.status == 204, await resp.text()
    assert await _actors(tenant, by_key[2]) == [(f"apikey:{made['id']}", None), user]


async def test_authentication_off_records_null(client: Client, tenant: str) -> None:
    headers = {"NGSILD-Tenant": tenant}
    ids = await _write_all_ways(client, headers, "off")
    for eid in ids:
        found = await _actors(tenant, eid)
        assert found and set(found) == {(None, None)}, (eid, found)
    path = f"{API}/temporal/entities/{ids[0]}"
    resp = await client.get(path, params={"options": "sysAttrs"}, headers=headers)
    assert resp.status == 200, await resp.text()
    instances = (await resp.json())["level"]
    assert len(instances) == 2 and all("modifiedAt" in i for i in instances)
    assert not any({"cityosactor", "cityosclient"} & set(i) for i in instances), instances


def _write(tenant: str, eid: str, actor: dict[str, str] | None) -> Write:
    record = EntityRecord(
        id=eid,
        types=["https://uri.etsi.org/ngsi-ld/default-context/Gauge"],
        attrs={"https://uri.etsi.org/ngsi-ld/default-context/level": [{"value": 1}]},
        scopes=None,
        created_at="2026-12-01T00:00:00Z",
        modified_at="2026-12-01T00:00:00Z",
    )
    event = change_event(
        kind="created",
        tenant=tenant,
        entity_id=eid,
        types=record.types,
        changes={},
        entity=None,
        time=record.created_at,
        source="/test",
        actor=actor,
    )
    return Write(record, event)


async def test_a_pooled_connection_forgets_the_actor(tenant: str) -> None:
    """One connection in the pool: the write after a user's write (the broker's own, no
    actor) records NULL, also after a batch transaction."""
    pool = await create_pool(TEST_DSN, 1, 1)
    try:
        schema = await Tenants(pool).schema(tenant, create=True)
        repo = EntityRepository(pool)
        alice = {"cityosactor": "oidc:https://idp.example#alice", "cityosclient": "app"}
        assert await repo.insert(schema, [_write(tenant, "urn:ngsi-ld:Gauge:p1", alice)])
        assert await repo.insert(schema, [_write(tenant, "urn:ngsi-ld:Gauge:p2", None)])
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT set_config('cityos.actor', 'bob', true)")
        assert await repo.insert(schema, [_write(tenant, "urn:ngsi-ld:Gauge:p3", None)])
        async with pool.acquire() as conn:
            leftover = await conn.fetchval("SELECT current_setting('cityos.actor', true)")
    finally:
        await pool.close()
    assert await _actors(tenant, "urn:ngsi-ld:Gauge:p1") == [
        ("oidc:https://idp.example#alice", "app")
    ]
    assert await _actors(tenant, "urn:ngsi-ld:Gauge:p2") == [(None, None)]
    assert await _actors(tenant, "urn:ngsi-ld:Gauge:p3") == [(None, None)]
    assert leftover == ""
