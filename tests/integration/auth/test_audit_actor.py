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


SCHEMAS = {
    name: json.loads((Path(__file__).parents[3] / f"schemas/events/{name}.schema.json").read_text())
    for name in ("entity-change", "subscription-change")
}


async def test_every_write_path_names_the_actor(
    secured: Client, issuer: LocalIssuer, tenant: str
) -> None:
    """Single, batch, purge, NGSIv2 and subscription changes, by a user and by an API key:
    every event of the tenant names who made it and satisfies its contract schema."""
    user = as_user(issuer, tenant, "admin", sub="staff-4", azp="console")
    resp = await secured.post(
        "/cityos/v1/apikeys",
        json={"name": "sensors", "operations": ["read", "create", "update", "delete"]},
        headers=user,
    )
    assert resp.status == 201, await resp.text()
    made = await resp.json()
    key = {"X-API-Key": made["key"], "NGSILD-Tenant": tenant}
    ops = "/ngsi-ld/v1/entityOperations"

    def thing(n: int) -> dict[str, Any]:
        return {"id": f"urn:ngsi-ld:Thing:w{n}", "type": "Thing"}

    value = {"v": {"type": "Property", "value": 1}}
    writes = [
        ("POST", "/ngsi-ld/v1/entities", thing(1), key),
        ("POST", f"{ops}/create", [thing(2), thing(3)], user),
        ("POST", f"{ops}/upsert", [{**thing(2), **value}], key),
        ("POST", f"{ops}/update", [{**thing(3), **value}], user),
        ("POST", f"{ops}/merge", [{**thing(1), **value}], key),
        ("POST", f"{ops}/delete", ["urn:ngsi-ld:Thing:w3"], user),
        ("PUT", "/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:w1", thing(1), key),
        ("DELETE", "/ngsi-ld/v1/entities?type=Thing", None, user),
    ]
    for method, path, body, headers in writes:
        resp = await secured.request(method, path, json=body, headers=headers)
        assert resp.status < 300, (method, path, resp.status, await resp.text())
    v2 = {"Fiware-Service": tenant, "Authorization": user["Authorization"]}
    resp = await secured.post("/v2/entities", json={"id": "Room1", "type": "Room"}, headers=v2)
    assert resp.status == 201, await resp.text()
    batch = {"actionType": "append", "entities": [{"id": "Room1", "type": "Room", "t": 2}]}
    resp = await secured.post("/v2/op/update?options=keyValues", json=batch, headers=v2)
    assert resp.status == 204, await resp.text()
    subscription = {
        "type": "Subscription",
        "entities": [{"type": "Thing"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/n"}},
    }
    resp = await secured.post("/ngsi-ld/v1/subscriptions", json=subscription, headers=key)
    assert resp.status == 201, await resp.text()

    found = await events(tenant)
    kinds = {e["type"].rsplit(".", 1)[1] for e in found}
    assert {"created", "updated", "replaced", "deleted"} <= kinds, kinds
    actors = {e["cityosactor"] for e in found}
    assert actors == {f"oidc:{issuer.url}#staff-4", f"apikey:{made['id']}"}, actors
    for event in found:
        if event["cityosactor"].startswith("oidc:"):
            assert event["cityosclient"] == "console"
        else:
            assert "cityosclient" not in event
        name = "subscription-change" if "subscriptionId" in event["data"] else "entity-change"
        jsonschema.validate(event, SCHEMAS[name])
    assert any("subscriptionId" in e["data"] for e in found)
