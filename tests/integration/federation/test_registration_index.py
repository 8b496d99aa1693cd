"""The per-replica registration index (federation/index.py) and the registration change events:
the serving replica sees its own commits at once, another replica through LISTEN/NOTIFY (no
periodic reload), and every change writes one outbox row matching its JSON Schema."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import jsonschema
import pytest
from aiohttp.test_utils import TestClient, TestServer

from city_os.api.keys import CONTEXTS, REGISTRATION_INDEX
from city_os.app import create_app
from city_os.federation.model import Registration
from tests.conftest import TEST_DSN
from tests.conftest import test_settings as settings_for
from tests.integration.federation.support import (
    CONTEXT,
    EX,
    REGS,
    Client,
    create,
    ld,
    registration,
)

SCHEMA = json.loads(
    (
        Path(__file__).resolve().parents[3] / "schemas/events/registration-change.schema.json"
    ).read_text()
)
VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)
SHELTER, VEHICLE, CAPACITY = EX + "Shelter", EX + "Vehicle", EX + "capacity"


@pytest.fixture
async def replica() -> AsyncIterator[Client]:
    """A second API process on the same database (its own pool, index and listener)."""
    async with TestClient(TestServer(create_app(settings_for()))) as c:
        yield c


async def until(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "the index did not catch up in time"
        await asyncio.sleep(0.02)


def found(client: Client, tenant: str, operation: str = "queryEntity", **kw: Any) -> list[str]:
    return [r.id for r in client.app[REGISTRATION_INDEX].matching(tenant, operation, **kw)]


async def test_own_commits_are_seen_at_once(client: Client, tenant: str) -> None:
    rid = await create(client, tenant, registration(id="urn:reg:i1"))
    assert found(client, tenant, types=[SHELTER]) == [rid]  # no wait: refreshed before the 201
    resp = await client.patch(
        f"{REGS}/{rid}",
        json={"information": [{"entities": [{"type": "Vehicle"}]}], "@context": CONTEXT},
        headers=ld(tenant),
    )
    assert resp.status == 204
    assert found(client, tenant, types=[SHELTER]) == []
    assert found(client, tenant, types=[VEHICLE]) == [rid]
    resp = await client.delete(f"{REGS}/{rid}", headers={"NGSILD-Tenant": tenant})
    assert resp.status == 204
    assert found(client, tenant, types=[VEHICLE]) == []


async def test_another_replica_follows_by_notify(
    client: Client, replica: Client, tenant: str
) -> None:
    rid = await create(client, tenant, registration(id="urn:reg:r1"))
    await until(lambda: found(replica, tenant, types=[SHELTER]) == [rid])
    resp = await client.delete(f"{REGS}/{rid}", headers={"NGSILD-Tenant": tenant})
    assert resp.status == 204
    await until(lambda: found(replica, tenant, types=[SHELTER]) == [])


async def test_matching(client: Client, tenant: str) -> None:
    info = [
        {"entities": [{"type": "Shelter", "id": "urn:saga:1"}], "propertyNames": ["capacity"]},
    ]
    await create(
        client,
        tenant,
        registration(
            id="urn:reg:m1",
            information=info,
            operations=["retrieveOps", "updateOps"],
            location={"type": "Point", "coordinates": [130.30, 33.26]},
            scope="/Saga",
            sourceType="sensor",
        ),
    )
    await create(client, tenant, registration(id="urn:reg:m2", mode="auxiliary"))
    assert found(client, tenant, entity_id="urn:saga:1", types=[SHELTER]) == [
        "urn:reg:m1",
        "urn:reg:m2",
    ]
    assert found(client, tenant, "updateAttrs", entity_id="urn:saga:1") == ["urn:reg:m1"]
    assert found(client, tenant, "createEntity") == []
    assert found(client, tenant, entity_id="urn:saga:2", types=[SHELTER]) == ["urn:reg:m2"]
    assert found(client, tenant, types=[SHELTER], attrs=[EX + "name"]) == ["urn:reg:m2"]
    near = {"type": "Point", "coordinates": [130.30, 33.26]}
    far = {"type": "Point", "coordinates": [139.7, 35.7]}
    assert found(client, tenant, types=[SHELTER], geometry=near) == ["urn:reg:m1", "urn:reg:m2"]
    assert found(client, tenant, types=[SHELTER], geometry=far) == ["urn:reg:m2"]  # m2: no space
    assert found(client, tenant, types=[SHELTER], scope="/Saga/#") == ["urn:reg:m1"]
    terms = await client.app[CONTEXTS].term_map(CONTEXT)
    csf = 'sourceType=="sensor"'
    assert found(client, tenant, types=[SHELTER], csf=csf, terms=terms) == ["urn:reg:m1"]
    assert found(client, tenant, types=[SHELTER], csf='sourceType=="model"', terms=terms) == []
    assert found(tenant=tenant + "-none", client=client) == []


async def test_change_events_match_their_schema(client: Client, tenant: str) -> None:
    rid = await create(client, tenant, registration(id="urn:reg:e1"))
    resp = await client.patch(
        f"{REGS}/{rid}", json={"endpoint": "http://127.0.0.1:1/x", "@context": CONTEXT},
        headers=ld(tenant),
    )  # fmt: skip
    assert resp.status == 204
    resp = await client.delete(f"{REGS}/{rid}", headers={"NGSILD-Tenant": tenant})
    assert resp.status == 204
    conn = await asyncpg.connect(TEST_DSN)
    try:
        rows = await conn.fetch(
            "SELECT event_type, entity_id, payload FROM cityos.outbox WHERE tenant = $1"
            " ORDER BY seq",
            tenant,
        )
    finally:
        await conn.close()
    kinds = [r["event_type"] for r in rows]
    assert kinds == [
        "jp.city-os.registration.created",
        "jp.city-os.registration.updated",
        "jp.city-os.registration.deleted",
    ]
    envelopes = [json.loads(r["payload"]) for r in rows]
    for envelope in envelopes:
        VALIDATOR.validate(envelope)
        assert envelope["subject"] == rid
    created, updated, deleted = (e["data"] for e in envelopes)
    assert created["previous"] is None
    assert Registration.from_doc(created["registration"]).information[0].entities[0].types == (
        SHELTER,
    )
    assert updated["previous"]["endpoint"] != updated["registration"]["endpoint"]
    assert deleted["registration"] is None and deleted["previous"]["id"] == rid
