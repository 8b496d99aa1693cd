"""/cityos/v1/schemas: immutable versions, activation, deactivation, deletion, dry runs, tenant
isolation, errors, and the in-memory active schemas following changes made elsewhere (NOTIFY)."""

from __future__ import annotations

from urllib.parse import quote

from city_os.core.contexts import ContextLoader
from city_os.registry.active import ActiveSchemas
from city_os.store.postgres.db import create_pool
from city_os.store.postgres.schemas import SchemaRepository
from tests.conftest import TEST_DSN
from tests.integration.registry.helpers import (
    API,
    CTX,
    SCHEMA_V1,
    SCHEMA_V2,
    SCHEMAS,
    SHELTER,
    SHELTER_PATH,
    Client,
    create,
    eventually,
    hdr,
    ld,
    problem,
    register,
    shelter,
)


async def test_versions_are_immutable_and_any_can_be_active(client: Client, tenant: str) -> None:
    v1 = await register(client, tenant, SCHEMA_V1)
    assert v1 == {**v1, "type": "Shelter", "typeIri": SHELTER, "version": 1, "active": True}
    again = await register(client, tenant, SCHEMA_V1, status=200)  # same content: no new version
    assert again["version"] == 1
    resp = await client.post(
        SCHEMAS,
        json={"type": "Shelter", "schema": SCHEMA_V2, "@context": CTX},
        headers=ld(tenant),
    )
    assert resp.status == 201
    assert resp.headers["Location"] == f"{SHELTER_PATH}/versions/2"
    assert (await resp.json())["active"] is False  # registered, not yet active

    resp = await client.get(f"{SHELTER_PATH}/versions/2", headers=hdr(tenant))
    v2 = await resp.json()
    assert v2["schema"] == SCHEMA_V2 and list(v2["schema"]) == list(SCHEMA_V2)  # as written
    assert v2["@context"] == CTX
    resp = await client.put(f"{SHELTER_PATH}/versions/2", json={}, headers=hdr(tenant))
    await problem(resp, 405, "MethodNotAllowed")

    await create(client, tenant, shelter(1, capacity=150))  # v1 active: fine
    resp = await client.put(f"{SHELTER_PATH}/active", json={"version": 2}, headers=hdr(tenant))
    assert resp.status == 204
    resp = await client.post(f"{API}/entities", json=shelter(2, capacity=150), headers=hdr(tenant))
    await problem(resp, 400, "BadRequestData")
    resp = await client.put(f"{SHELTER_PATH}/active", json={"version": 1}, headers=hdr(tenant))
    assert resp.status == 204  # back to the older version
    await create(client, tenant, shelter(2, capacity=150))

    resp = await client.get(SHELTER_PATH, headers=hdr(tenant))
    summary = await resp.json()
    assert summary["activeVersion"] == 1
    assert [v["version"] for v in summary["versions"]] == [1, 2]
    resp = await client.get(f"{SHELTER_PATH}/active", headers=hdr(tenant))
    assert (await resp.json())["version"] == 1


async def test_deactivate_and_delete(client: Client, tenant: str) -> None:
    await register(client, tenant, SCHEMA_V1)
    await register(client, tenant, SCHEMA_V2, activate=False)
    resp = await client.delete(f"{SHELTER_PATH}/versions/1", headers=hdr(tenant))
    await problem(resp, 409, "Conflict")  # the active version stays until deactivated

    resp = await client.delete(f"{SHELTER_PATH}/active", headers=hdr(tenant))
    assert resp.status == 204
    resp = await client.get(f"{SHELTER_PATH}/active", headers=hdr(tenant))
    await problem(resp, 404, "ResourceNotFound")
    await create(client, tenant, shelter(1, capacity=-1))  # no active schema: not validated

    resp = await client.delete(f"{SHELTER_PATH}/versions/1", headers=hdr(tenant))
    assert resp.status == 204
    resp = await client.get(f"{SHELTER_PATH}/versions/1", headers=hdr(tenant))
    await problem(resp, 404, "ResourceNotFound")
    v3 = await register(client, tenant, SCHEMA_V1)
    assert v3["version"] == 3  # numbers are never reused

    resp = await client.delete(SHELTER_PATH, headers=hdr(tenant))
    assert resp.status == 204
    resp = await client.get(SHELTER_PATH, headers=hdr(tenant))
    await problem(resp, 404, "ResourceNotFound")
    assert await (await client.get(SCHEMAS, headers=hdr(tenant))).json() == []
    await create(client, tenant, shelter(2, capacity=-1))  # deleted: not validated


async def test_dry_run_counts_and_examples(client: Client, tenant: str) -> None:
    await register(client, tenant, SCHEMA_V1)
    for n, capacity in enumerate([50, 150, 200, 100], start=1):
        await create(client, tenant, shelter(n, capacity=capacity))
    await register(client, tenant, SCHEMA_V2, activate=False)

    resp = await client.post(f"{SHELTER_PATH}/versions/2/dryRun", headers=hdr(tenant))
    report = await resp.json()
    assert resp.status == 200, report
    assert (report["checked"], report["invalid"], report["version"]) == (4, 2, 2)
    assert [e["id"] for e in report["examples"]] == [
        "urn:ngsi-ld:Shelter:2",
        "urn:ngsi-ld:Shelter:3",
    ]
    assert report["examples"][0]["violations"][0]["pointer"] == "/capacity"

    resp = await client.post(f"{SHELTER_PATH}/versions/2/dryRun?examples=1", headers=hdr(tenant))
    assert len((await resp.json())["examples"]) == 1
    resp = await client.post(f"{SHELTER_PATH}/versions/1/dryRun", headers=hdr(tenant))
    assert (await resp.json())["invalid"] == 0

    # a candidate that is not registered at all
    strict = {**SCHEMA_V1, "required": [*SCHEMA_V1["required"], "dateCreated"]}
    resp = await client.post(
        f"{SCHEMAS}/dryRun",
        json={"type": "Shelter", "schema": strict, "@context": CTX},
        headers=ld(tenant),
    )
    report = await resp.json()
    assert (report["checked"], report["invalid"], report["version"]) == (4, 4, None)
    assert [v["pointer"] for v in report["examples"][0]["violations"]] == ["/dateCreated"]
    summary = await (await client.get(SHELTER_PATH, headers=hdr(tenant))).json()
    assert [v["version"] for v in summary["versions"]] == [1, 2]  # the candidate was not stored


async def test_tenants_are_isolated(client: Client, tenant: str) -> None:
    other = tenant + "-b"
    await register(client, tenant, SCHEMA_V1)
    await create(client, other, shelter(1, capacity=-1))  # tenant B has no schema
    assert await (await client.get(SCHEMAS, headers=hdr(other))).json() == []
    resp = await client.get(SHELTER_PATH, headers=hdr(other))
    await problem(resp, 404, "ResourceNotFound")
    resp = await client.post(f"{API}/entities", json=shelter(1, capacity=-1), headers=hdr(tenant))
    await problem(resp, 400, "BadRequestData")
    listed = await (await client.get(SCHEMAS, headers=hdr(tenant))).json()
    assert [(t["typeIri"], t["activeVersion"]) for t in listed] == [(SHELTER, 1)]


async def test_errors(client: Client, tenant: str) -> None:
    bad_schema = {"type": "object", "properties": {"capacity": {"minimum": "zero"}}}
    body = await register(client, tenant, bad_schema, status=400)
    assert body["type"].endswith("BadRequestData") and "Invalid JSON Schema" in body["detail"]
    unresolvable = {"$ref": "https://example.org/nowhere.json"}
    body = await register(client, tenant, unresolvable, status=400)
    assert "Unresolvable $ref" in body["detail"]
    assert await (await client.get(SCHEMAS, headers=hdr(tenant))).json() == []  # nothing stored

    resp = await client.post(
        SCHEMAS, json={"type": "Shelter", "schema": SCHEMA_V1}, headers=ld(tenant)
    )
    await problem(resp, 400, "BadRequestData")  # ld+json without @context
    resp = await client.post(SCHEMAS, json={"type": 3, "schema": {}}, headers=hdr(tenant))
    await problem(resp, 400, "BadRequestData")
    resp = await client.post(
        SCHEMAS, json={"type": "Shelter", "schema": {}, "extra": 1}, headers=hdr(tenant)
    )
    await problem(resp, 400, "BadRequestData")

    await register(client, tenant, SCHEMA_V1)
    resp = await client.put(f"{SHELTER_PATH}/active", json={"version": 7}, headers=hdr(tenant))
    await problem(resp, 404, "ResourceNotFound")
    resp = await client.put(f"{SHELTER_PATH}/active", json={"version": "1"}, headers=hdr(tenant))
    await problem(resp, 400, "BadRequestData")
    resp = await client.get(f"{SHELTER_PATH}/versions/x", headers=hdr(tenant))
    await problem(resp, 400, "BadRequestData")
    resp = await client.post(f"{SHELTER_PATH}/versions/9/dryRun", headers=hdr(tenant))
    await problem(resp, 404, "ResourceNotFound")
    unknown = f"{SCHEMAS}/{quote('https://example.org/ns#Nothing', safe='')}"
    for method in ("GET", "DELETE"):
        resp = await client.request(method, unknown, headers=hdr(tenant))
        await problem(resp, 404, "ResourceNotFound")


async def test_other_processes_follow_changes(client: Client, tenant: str) -> None:
    """A second ActiveSchemas (as in another broker process) learns of changes via NOTIFY."""
    pool = await create_pool(TEST_DSN, 1, 2)
    contexts = ContextLoader()
    elsewhere = ActiveSchemas(SchemaRepository(pool), contexts, TEST_DSN)
    try:
        await elsewhere.start()
        assert elsewhere.get(tenant, SHELTER) is None
        await register(client, tenant, SCHEMA_V1)

        async def has_version(n: int | None) -> bool:
            active = elsewhere.get(tenant, SHELTER)
            return (active.info.version if active else None) == n

        await eventually(lambda: has_version(1))
        await register(client, tenant, SCHEMA_V2, activate=False)
        resp = await client.put(f"{SHELTER_PATH}/active", json={"version": 2}, headers=hdr(tenant))
        assert resp.status == 204
        await eventually(lambda: has_version(2))
        await client.delete(f"{SHELTER_PATH}/active", headers=hdr(tenant))
        await eventually(lambda: has_version(None))
    finally:
        await elsewhere.close()
        await contexts.close()
        await pool.close()
