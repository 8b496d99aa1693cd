"""Audit: every change event names its actor (CloudEvents extension attributes cityosactor and
cityosclient) — a token's issuer and subject, an API key, or 'local' with authentication off —
and the envelope still satisfies the contract schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import jsonschema
from aiohttp.test_utils import TestClient

from tests.conftest import TEST_DSN
from tests.integration.auth.conftest import as_user
from tests.integration.auth.issuer import LocalIssuer

Client = TestClient  # type: ignore[type-arg]
SCHEMA = json.loads(
    (Path(__file__).parents[3] / "schemas/events/entity-change.schema.json").read_text()
)


async def events(tenant: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(TEST_DSN)
    try:
        rows = await conn.fetch(
            "SELECT payload FROM cityos.outbox WHERE tenant = $1 ORDER BY seq", tenant
        )
    finally:
        await conn.close()
    return [json.loads(r["payload"]) for r in rows]


async def test_a_users_change_names_the_user(
    secured: Client, issuer: LocalIssuer, tenant: str
) -> None:
    writer = as_user(issuer, tenant, "writer", sub="staff-3", azp="dashboard")
    entity = {"id": "urn:ngsi-ld:Shelter:actor-1", "type": "Shelter"}
    assert (await secured.post("/ngsi-ld/v1/entities", json=entity, headers=writer)).status == 201
    patch = {"capacity": {"type": "Property", "value": 40}}
    resp = await secured.post(
        f"/ngsi-ld/v1/entities/{entity['id']}/attrs", json=patch, headers=writer
    )
    assert resp.status == 204
    found = await events(tenant)
    assert [e["type"].rsplit(".", 1)[1] for e in found] == ["created", "updated"]
    for event in found:
        assert event["cityosactor"] == f"oidc:{issuer.url}#staff-3"
        assert event["cityosclient"] == "dashboard"
        jsonschema.validate(event, SCHEMA)


async def test_authentication_off_is_local(client: Client, tenant: str) -> None:
    entity = {"id": "urn:ngsi-ld:Shelter:actor-2", "type": "Shelter"}
    headers = {"NGSILD-Tenant": tenant}
    assert (await client.post("/ngsi-ld/v1/entities", json=entity, headers=headers)).status == 201
    (event,) = await events(tenant)
    assert event["cityosactor"] == "local"
    assert "cityosclient" not in event
    jsonschema.validate(event, SCHEMA)
