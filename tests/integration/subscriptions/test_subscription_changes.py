"""Every subscription change writes its outbox event, its cluster timers and its NOTIFY in the
transaction of the change; a refused request writes none of them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import jsonschema
import orjson
import pytest

from city_os.store.postgres.subscriptions import CHANNEL
from tests.conftest import TEST_DSN
from tests.integration.subscriptions.support import SUBS, Client, create, hdr, subscription

SCHEMA = json.loads(
    (
        Path(__file__).resolve().parents[3] / "schemas/events/subscription-change.schema.json"
    ).read_text()
)
VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)


@pytest.fixture
async def db() -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(TEST_DSN)
    yield conn
    await conn.close()


async def events(db: asyncpg.Connection, tenant: str) -> list[dict[str, object]]:
    rows = await db.fetch(
        "SELECT event_type, entity_id, payload::text AS payload FROM cityos.outbox"
        " WHERE tenant = $1 ORDER BY seq",
        tenant,
    )
    out = []
    for row in rows:
        payload = orjson.loads(row["payload"])
        assert not [e.message for e in VALIDATOR.iter_errors(payload)]
        assert payload["type"] == row["event_type"] and payload["subject"] == row["entity_id"]
        out.append(payload)
    return out


async def timers(db: asyncpg.Connection, tenant: str) -> dict[str, float]:
    rows = await db.fetch(
        "SELECT kind, period FROM cityos.subscription_timers WHERE tenant = $1", tenant
    )
    return {r["kind"]: r["period"] for r in rows}


async def test_changes_go_through_the_outbox(
    client: Client, tenant: str, db: asyncpg.Connection
) -> None:
    sid = await create(client, tenant, subscription(throttling=5))
    resp = await client.patch(f"{SUBS}/{sid}", json={"isActive": False}, headers=hdr(tenant))
    assert resp.status == 204
    assert (await client.delete(f"{SUBS}/{sid}", headers=hdr(tenant))).status == 204
    seen = await events(db, tenant)
    assert [e["type"] for e in seen] == [
        "jp.city-os.subscription.created",
        "jp.city-os.subscription.updated",
        "jp.city-os.subscription.deleted",
    ]
    created, updated, deleted = (e["data"] for e in seen)
    assert created["subscription"]["id"] == sid  # type: ignore[index]
    assert updated["subscription"]["isActive"] is False  # type: ignore[index]
    assert deleted == {"tenant": tenant, "subscriptionId": sid, "subscription": None}


async def test_refused_requests_write_no_event(
    client: Client, tenant: str, db: asyncpg.Connection
) -> None:
    sid = await create(client, tenant, subscription())
    bad = await client.patch(f"{SUBS}/{sid}", json={"throttling": -1}, headers=hdr(tenant))
    assert bad.status == 400
    again = await client.post(
        SUBS,
        json=subscription(id=sid),
        headers={**hdr(tenant), "Content-Type": "application/ld+json"},
    )
    assert again.status == 409
    assert len(await events(db, tenant)) == 1


async def test_every_change_is_announced(
    client: Client, tenant: str, db: asyncpg.Connection
) -> None:
    heard: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    await db.add_listener(CHANNEL, lambda *args: heard.put_nowait(orjson.loads(args[3])))
    sid = await create(client, tenant, subscription())
    assert await asyncio.wait_for(heard.get(), 10) == {"tenant": tenant, "id": sid}
    resp = await client.patch(f"{SUBS}/{sid}", json={"isActive": False}, headers=hdr(tenant))
    assert resp.status == 204
    assert await asyncio.wait_for(heard.get(), 10) == {"tenant": tenant, "id": sid}


async def test_cluster_timers_follow_the_subscription(
    client: Client, tenant: str, db: asyncpg.Connection
) -> None:
    sid = await create(client, tenant, subscription(timeInterval=30))
    assert await timers(db, tenant) == {"interval": 30.0}
    patch = {"timeInterval": None, "throttling": 2}
    resp = await client.patch(f"{SUBS}/{sid}", json=patch, headers=hdr(tenant))
    assert resp.status == 204, await resp.text()
    assert await timers(db, tenant) == {"throttle": 2.0}
    assert (await client.delete(f"{SUBS}/{sid}", headers=hdr(tenant))).status == 204
    assert await timers(db, tenant) == {}
