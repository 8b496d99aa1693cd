"""Outbox → Kafka: one event per committed change, none for refused ones, per-entity order."""

from __future__ import annotations

import asyncio
import random

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from city_os.app import create_relay_app
from city_os.devstack import TansuProcess, free_port
from tests.conftest import test_settings as settings_for
from tests.integration.events.support import (
    API,
    TopicReader,
    create,
    create_topic,
    hdr,
    outbox_ids,
    poll,
    relay_client,
    sensor,
    set_level,
    unpublished,
)

Client = TestClient  # type: ignore[type-arg]


async def test_each_committed_change_yields_exactly_one_event(
    tansu: TansuProcess, topic: str, tenant: str, pool: asyncpg.Pool
) -> None:
    await create_topic(tansu.bootstrap, topic)
    async with relay_client(tansu.bootstrap, topic) as client:
        await create(client, tenant, 1)
        await create(client, tenant, 2)
        await set_level(client, tenant, 1, 2.5)
        resp = await client.delete(
            f"{API}/entities/urn:ngsi-ld:WaterObserved:2", headers={"NGSILD-Tenant": tenant}
        )
        assert resp.status == 204
        # Refused writes: 409 (exists), 400 (bad id, bad fragment), 404 (gone) — no event.
        resp = await client.post(f"{API}/entities", json=sensor(1), headers=hdr(tenant))
        assert resp.status == 409
        bad = {"id": "not a uri", "type": "WaterObserved"}
        resp = await client.post(f"{API}/entities", json=bad, headers=hdr(tenant))
        assert resp.status == 400
        resp = await client.patch(
            f"{API}/entities/urn:ngsi-ld:WaterObserved:1/attrs", json=[1], headers=hdr(tenant)
        )
        assert resp.status == 400
        resp = await client.patch(
            f"{API}/entities/urn:ngsi-ld:WaterObserved:2/attrs",
            json={"waterLevel": {"type": "Property", "value": 1}},
            headers=hdr(tenant),
        )
        assert resp.status == 404

        async def drained() -> bool:
            return await unpublished(pool, tenant) == 0

        await poll(drained)
        expected = await outbox_ids(pool, tenant)
        assert len(expected) == 4
        async with TopicReader(tansu.bootstrap, topic, tenant) as reader:
            await reader.read_until(lambda r: r.ids() >= set(expected))
        assert reader.ids() == set(expected)
        assert len(reader.records) == len(expected)  # no repeats in normal operation
        by_entity: dict[str, list[str]] = {}
        for env in reader.first_seen():
            by_entity.setdefault(env["subject"], []).append(env["type"].rsplit(".", 1)[1])
        assert by_entity == {
            "urn:ngsi-ld:WaterObserved:1": ["created", "updated"],
            "urn:ngsi-ld:WaterObserved:2": ["created", "deleted"],
        }
        update = next(e for e in reader.first_seen() if e["type"].endswith("updated"))
        (change,) = update["data"]["changes"].values()
        assert change["previous"][0]["value"] == 1.0
        assert change["new"][0]["value"] == 2.5

        text = await (await client.get("/metrics")).text()
        assert f'cityos_entities_written_total{{operation="created",tenant="{tenant}"}} 2.0' in text
        assert f'cityos_entities_written_total{{operation="deleted",tenant="{tenant}"}} 1.0' in text
        route = "/ngsi-ld/v1/entities/{entityId}/attrs"
        assert f'route="{route}",status="400"' in text
        assert "cityos_events_published_total" in text
        assert "cityos_outbox_backlog_events" in text
        assert 'cityos_db_pool_connections{state="max"} 8.0' in text
        ready = await client.get("/ready")
        body = await ready.json()
        assert ready.status == 200, body
        assert body["components"]["postgresql"]["status"] == "up"
        assert body["components"]["kafka"]["status"] == "up"


async def test_per_entity_order_holds_under_concurrent_writes_and_two_relays(
    tansu: TansuProcess, topic: str, tenant: str, pool: asyncpg.Pool
) -> None:
    """Concurrent updates of the same entities through two apps (two relays): each entity's
    events arrive in commit order — every ``previous`` is the ``new`` of the event before."""
    await create_topic(tansu.bootstrap, topic)
    entities, updates = 6, 15
    async with (
        relay_client(tansu.bootstrap, topic) as one,
        relay_client(tansu.bootstrap, topic, relay_batch_size=7) as two,
    ):
        await asyncio.gather(*(create(one, tenant, n, 0.0) for n in range(entities)))
        rng = random.Random(7)
        writes = [
            set_level(rng.choice((one, two)), tenant, n, float(k))
            for n in range(entities)
            for k in range(1, updates + 1)
        ]
        rng.shuffle(writes)
        await asyncio.gather(*writes)

        async def drained() -> bool:
            return await unpublished(pool, tenant) == 0

        await poll(drained)
    expected = await outbox_ids(pool, tenant)
    assert len(expected) == entities * (updates + 1)
    async with TopicReader(tansu.bootstrap, topic, tenant) as reader:
        await reader.read_until(lambda r: r.ids() >= set(expected))
    assert len(reader.records) == len(expected)  # the relays never published a row twice
    chains: dict[str, list[dict[str, object]]] = {}
    for env in reader.first_seen():
        chains.setdefault(env["subject"], []).append(env)
    for events in chains.values():
        assert events[0]["type"] == "jp.city-os.entity.created"
        level = 0.0
        for env in events[1:]:
            data = env["data"]
            assert isinstance(data, dict)
            (change,) = data["changes"].values()
            assert change["previous"][0]["value"] == level
            level = change["new"][0]["value"]
        assert len(events) == updates + 1


async def test_relay_process_is_not_ready_without_kafka() -> None:
    """``city-os relay`` (Kafka required): 503 naming Kafka, PostgreSQL up; alive all the same."""
    nowhere = f"127.0.0.1:{free_port()}"
    app = create_relay_app(settings_for(kafka_bootstrap=nowhere, kafka_publish_timeout=1.0))
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/health")).status == 200

        async def kafka_down() -> bool:
            resp = await client.get("/ready")
            body = await resp.json()
            return resp.status == 503 and body["components"]["kafka"]["status"] == "down"

        await poll(kafka_down)
        body = await (await client.get("/ready")).json()
        assert body["components"]["postgresql"] == {"status": "up", "required": True}
        assert body["status"] == "not ready"
        assert (await client.get("/ngsi-ld/v1/entities")).status == 404  # no API here


async def test_a_commit_wakes_the_relay_without_waiting_for_its_poll(
    tansu: TansuProcess, topic: str, tenant: str
) -> None:
    """Writes NOTIFY the relay after they commit: with a 10-minute poll interval, the event
    still arrives within the test timeout."""
    await create_topic(tansu.bootstrap, topic)
    async with (
        relay_client(tansu.bootstrap, topic, relay_poll_interval=600.0) as client,
        TopicReader(tansu.bootstrap, topic, tenant) as reader,
    ):
        await create(client, tenant, 1)
        await reader.read_until(lambda r: len(r.ids()) == 1)
        await set_level(client, tenant, 1, 3.0)
        await reader.read_until(lambda r: len(r.ids()) == 2)
    kinds = [env["type"] for env in reader.first_seen()]
    assert kinds == ["jp.city-os.entity.created", "jp.city-os.entity.updated"]


async def test_an_oversized_event_goes_out_as_a_claim_check_and_nothing_waits(
    tansu: TansuProcess, topic: str, tenant: str
) -> None:
    """An event over kafka_max_message_bytes would be refused by Kafka forever; it is sent
    without its data (a dataref instead) and the events after it flow as usual."""
    await create_topic(tansu.bootstrap, topic)
    async with (
        relay_client(tansu.bootstrap, topic, kafka_max_message_bytes=4096) as client,
        TopicReader(tansu.bootstrap, topic, tenant) as reader,
    ):
        big = {**sensor(1), "note": {"type": "Property", "value": "x" * 5000}}
        resp = await client.post(f"{API}/entities", json=big, headers=hdr(tenant))
        assert resp.status == 201, await resp.text()
        await create(client, tenant, 2)  # small events, after it in the outbox
        await set_level(client, tenant, 2, 2.5)
        await reader.read_until(lambda r: len(r.ids()) == 3)
    events = reader.first_seen()
    (oversized,) = [e for e in events if e["subject"] == "urn:ngsi-ld:WaterObserved:1"]
    assert oversized["type"] == "jp.city-os.entity.created"
    assert oversized["data"]["omitted"] == ["entity"]  # a created event has no changes (events 2)
    assert "entity" not in oversized["data"] and "changes" not in oversized["data"]
    assert oversized["dataref"].endswith("/ngsi-ld/v1/entities/urn%3Angsi-ld%3AWaterObserved%3A1")
    created, updated = [e for e in events if e["subject"] == "urn:ngsi-ld:WaterObserved:2"]
    assert created["data"]["entity"]["id"] == "urn:ngsi-ld:WaterObserved:2"
    assert next(iter(updated["data"]["changes"].values()))["new"][0]["value"] == 2.5
