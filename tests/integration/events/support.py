"""Helpers for the change-event tests: apps with a relay, a raw topic reader, polling.

The session ``client`` app has no Kafka, so its writes pile up in the shared outbox; the relays
started here publish those too. Every assertion therefore looks at one test's tenant only.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import jsonschema
import orjson
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from city_os.app import create_app
from city_os.events.model import EVENT_TYPE_PREFIX
from tests.conftest import test_settings

API = "/ngsi-ld/v1"
TIMEOUT = 60.0  # seconds for anything awaited in these tests
SCHEMA_PATH = Path(__file__).resolve().parents[3] / "schemas/events/entity-change.schema.json"
Client = TestClient  # type: ignore[type-arg]

_validator = jsonschema.Draft202012Validator(
    json.loads(SCHEMA_PATH.read_text("utf-8")),
    format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
)


def check_event(envelope: dict[str, Any]) -> None:
    """Every event a test sees must match the published contract."""
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _validator.iter_errors(envelope)]
    assert not errors, errors


async def poll(check: Callable[[], Awaitable[bool]], within: float = TIMEOUT) -> None:
    """Wait until ``check()`` is true (a timeout fails the test); no fixed sleeps."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def create_topic(bootstrap: str, topic: str, partitions: int = 4) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


@asynccontextmanager
async def relay_client(bootstrap: str, topic: str, **settings: Any) -> AsyncIterator[Client]:
    """An app (API + relay) publishing to ``topic`` on ``bootstrap``."""
    values: dict[str, Any] = {"relay_poll_interval": 0.2, "kafka_publish_timeout": 3.0}
    values.update(settings)
    app = create_app(test_settings(kafka_bootstrap=bootstrap, kafka_topic=topic, **values))
    async with TestClient(TestServer(app)) as client:
        yield client


async def unpublished(pool: asyncpg.Pool, tenant: str) -> int:
    n = await pool.fetchval(
        "SELECT count(*) FROM cityos.outbox WHERE tenant = $1 AND published_at IS NULL", tenant
    )
    return int(n)


async def outbox_ids(pool: asyncpg.Pool, tenant: str) -> list[str]:
    """Event ids of the tenant's changes, in outbox (commit per entity) order."""
    rows = await pool.fetch(
        "SELECT event_id::text FROM cityos.outbox WHERE tenant = $1 ORDER BY seq", tenant
    )
    return [r["event_id"] for r in rows]


class TopicReader:
    """Reads a topic from the beginning (no group: Tansu's JoinGroup costs seconds), keeping
    every record of one tenant in arrival order, duplicates included."""

    def __init__(self, bootstrap: str, topic: str, tenant: str) -> None:
        self.tenant = tenant
        self.records: list[tuple[int, bytes, dict[str, Any]]] = []  # (partition, key, envelope)
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            metadata_max_age_ms=500,
        )

    async def __aenter__(self) -> TopicReader:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def read_until(self, done: Callable[[TopicReader], bool]) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not done(self):
            assert time.monotonic() < deadline, f"only {len(self.ids())} events arrived"
            batch = await self._consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                for r in records:
                    envelope = orjson.loads(r.value or b"")
                    entity_change = envelope["type"].startswith(EVENT_TYPE_PREFIX)
                    if entity_change and envelope["data"]["tenant"] == self.tenant:
                        check_event(envelope)
                        assert r.key == f"{self.tenant}/{envelope['subject']}".encode()
                        self.records.append((tp.partition, r.key, envelope))

    def ids(self) -> set[str]:
        return {env["id"] for _, _, env in self.records}

    def first_seen(self) -> list[dict[str, Any]]:
        """Events in arrival order, repeats dropped (what a de-duplicating consumer sees)."""
        seen: set[str] = set()
        out = []
        for _, _, env in self.records:
            if env["id"] not in seen:
                seen.add(env["id"])
                out.append(env)
        return out


def hdr(tenant: str) -> dict[str, str]:
    return {"NGSILD-Tenant": tenant, "Content-Type": "application/json"}


def sensor(n: int, level: float = 1.0) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:WaterObserved:{n}",
        "type": "WaterObserved",
        "waterLevel": {"type": "Property", "value": level},
    }


async def create(client: Client, tenant: str, n: int, level: float = 1.0) -> None:
    resp = await client.post(f"{API}/entities", json=sensor(n, level), headers=hdr(tenant))
    assert resp.status == 201, await resp.text()


async def set_level(client: Client, tenant: str, n: int, level: float) -> None:
    resp = await client.patch(
        f"{API}/entities/urn:ngsi-ld:WaterObserved:{n}/attrs",
        json={"waterLevel": {"type": "Property", "value": level}},
        headers=hdr(tenant),
    )
    assert resp.status == 204, await resp.text()
