"""/cityos/v1/permissions: tenant admins create, list, read and withdraw permissions; others get
403 (anonymous too); an entity's sharer grants on that entity only; bad bodies are 400s naming
the problem; every change is in the audit log; another process's cache learns of changes by
NOTIFY."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from aiohttp.test_utils import TestClient

from city_os.auth.permissions import PermissionService
from city_os.store.postgres.auth_permissions import PermissionRepository
from city_os.store.postgres.db import Tenants, create_pool
from tests.conftest import TEST_DSN
from tests.integration.auth.conftest import as_user
from tests.integration.auth.issuer import LocalIssuer

Client = TestClient  # type: ignore[type-arg]
PERMISSIONS = "/cityos/v1/permissions"
NS = "https://uri.etsi.org/ngsi-ld/default-context/"
PUBLIC_AEDS = {
    "assignee": {"kind": "public"},
    "action": "read",
    "target": {"types": ["AED"], "scopes": ["/Saga/#"]},
}


async def test_admin_lifecycle(secured: Client, issuer: LocalIssuer, tenant: str) -> None:
    admin = as_user(issuer, tenant, "admin", sub="admin-1")
    resp = await secured.post(PERMISSIONS, json=PUBLIC_AEDS, headers=admin)
    created = await resp.json()
    assert resp.status == 201, created
    assert created["id"].startswith("urn:cityos:Permission:")
    assert resp.headers["Location"].endswith(created["id"].replace(":", "%3A"))
    assert created["target"] == {"types": ["AED"], "scopes": ["/Saga/#"]}
    assert created["assignee"] == {"kind": "public"}
    assert created["createdBy"] == f"oidc:{issuer.url}#admin-1"

    listed = await (await secured.get(PERMISSIONS, headers=admin)).json()
    assert [p["id"] for p in listed] == [created["id"]]
    one = await secured.get(f"{PERMISSIONS}/{created['id']}", headers=admin)
    assert (await one.json())["action"] == "read"

    assert (await secured.delete(f"{PERMISSIONS}/{created['id']}", headers=admin)).status == 204
    gone = await secured.get(f"{PERMISSIONS}/{created['id']}", headers=admin)
    assert gone.status == 404

    conn = await asyncpg.connect(TEST_DSN)
    try:
        actions = [
            r["action"]
            for r in await conn.fetch(
                "SELECT action FROM cityos.audit_log WHERE tenant = $1 ORDER BY at", tenant
            )
        ]
    finally:
        await conn.close()
    assert actions == ["permission.created", "permission.deleted"]


async def test_only_admins_manage(secured: Client, issuer: LocalIssuer, tenant: str) -> None:
    for headers in (
        as_user(issuer, tenant, "writer"),
        as_user(issuer, tenant, "steward"),
        as_user(issuer, "another-tenant", "admin") | {"NGSILD-Tenant": tenant},
        {"NGSILD-Tenant": tenant},
    ):
        resp = await secured.post(PERMISSIONS, json=PUBLIC_AEDS, headers=headers)
        body = await resp.json()
        assert resp.status == 403, body
        assert body["type"] == "https://uri.etsi.org/ngsi-ld/errors/AccessDenied"
        assert "needs the role admin" in body["detail"]


async def test_entity_sharing(secured: Client, issuer: LocalIssuer, tenant: str) -> None:
    admin = as_user(issuer, tenant, "admin")
    entity = {"id": "urn:ngsi-ld:Shelter:share-1", "type": "Shelter"}
    assert (await secured.post("/ngsi-ld/v1/entities", json=entity, headers=admin)).status == 201

    def grant(action: str, sub: str) -> dict[str, object]:
        return {
            "assignee": {"kind": "subject", "value": sub, "issuer": issuer.url},
            "action": action,
            "target": {"entity": entity["id"]},
        }

    resp = await secured.post(PERMISSIONS, json=grant("admin", "manager"), headers=admin)
    assert resp.status == 201, await resp.json()
    manager = as_user(issuer, tenant, sub="manager")
    # the manager may share this entity (up to admin) but not own it, nor grant on types
    resp = await secured.post(PERMISSIONS, json=grant("write", "helper"), headers=manager)
    assert resp.status == 201, await resp.json()
    resp = await secured.post(PERMISSIONS, json=grant("own", "helper"), headers=manager)
    assert resp.status == 403
    assert (await secured.post(PERMISSIONS, json=PUBLIC_AEDS, headers=manager)).status == 403
    helper = as_user(issuer, tenant, sub="helper")
    assert (await secured.post(PERMISSIONS, json=grant("read", "x"), headers=helper)).status == 403
    listed = await secured.get(PERMISSIONS, params={"entity": entity["id"]}, headers=admin)
    assert len(await listed.json()) == 2
    missing = {**grant("read", "x"), "target": {"entity": "urn:ngsi-ld:Shelter:none"}}
    assert (await secured.post(PERMISSIONS, json=missing, headers=admin)).status == 404


async def test_bad_bodies(secured: Client, issuer: LocalIssuer, tenant: str) -> None:
    admin = as_user(issuer, tenant, "admin")
    cases = [
        ({**PUBLIC_AEDS, "action": "write"}, "public may only be granted read"),
        ({**PUBLIC_AEDS, "personal": True}, "never on personal data"),
        ({**PUBLIC_AEDS, "action": "delete"}, "action must be one of"),
        ({**PUBLIC_AEDS, "assignee": {"kind": "robot"}}, "kind one of"),
        ({**PUBLIC_AEDS, "assignee": {"kind": "subject", "value": "x"}}, "needs the issuer"),
        ({**PUBLIC_AEDS, "assignee": {"kind": "group"}}, "needs a value"),
        ({**PUBLIC_AEDS, "target": {}}, "target must be"),
        ({**PUBLIC_AEDS, "target": {"scopes": ["Saga"]}}, "scope pattern"),
        ({**PUBLIC_AEDS, "target": {"entity": "not a uri"}}, "not a valid URI"),
        ({**PUBLIC_AEDS, "colour": "red"}, "unknown members: colour"),
    ]
    for body, detail in cases:
        resp = await secured.post(PERMISSIONS, json=body, headers=admin)
        problem = await resp.json()
        assert resp.status == 400, (body, problem)
        assert detail in problem["detail"], (detail, problem)


async def test_another_process_learns_by_notify(client: Client, tenant: str) -> None:
    """Authentication off (the shared client): everyone manages; a second service's cache
    (another broker process) drops its copy when the first one changes permissions."""
    pool = await create_pool(TEST_DSN, 1, 2)
    elsewhere = PermissionService(PermissionRepository(pool), Tenants(pool), TEST_DSN)
    await elsewhere.start()
    try:
        headers = {"NGSILD-Tenant": tenant}
        resp = await client.post(PERMISSIONS, json=PUBLIC_AEDS, headers=headers)
        assert resp.status == 201, await resp.json()
        assert [p.types for p in await elsewhere.of_tenant(tenant)] == [frozenset({NS + "AED"})]
        second = {**PUBLIC_AEDS, "target": {"types": ["Shelter"]}}
        assert (await client.post(PERMISSIONS, json=second, headers=headers)).status == 201
        deadline = time.monotonic() + 10
        while len(await elsewhere.of_tenant(tenant)) != 2:
            assert time.monotonic() < deadline, "the other process never saw the change"
            await asyncio.sleep(0.02)  # poll until the NOTIFY arrives
    finally:
        await elsewhere.close()
        await pool.close()
