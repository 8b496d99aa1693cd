"""API keys end to end: an admin creates one (shown once, stored as sha256 only), a machine client
uses it (X-API-Key or Bearer), bound to its Origin; revocation is immediate in this process and
in another (NOTIFY); expired and wrong keys are 401s; last-used times are written in batches;
only admins manage keys; bad bodies are 400s."""

from __future__ import annotations

import asyncio
import hashlib
import time

import asyncpg
from aiohttp.test_utils import TestClient

from city_os.auth.apikeys import ApiKeys
from city_os.store.postgres.auth_keys import ApiKeyRepository
from city_os.store.postgres.db import create_pool
from tests.conftest import TEST_DSN
from tests.integration.auth.conftest import as_user
from tests.integration.auth.issuer import LocalIssuer

Client = TestClient  # type: ignore[type-arg]
KEYS = "/cityos/v1/apikeys"
ME = "/cityos/v1/me"
FORM = {
    "name": "citizens' report form",
    "operations": ["create"],
    "types": ["Report"],
    "origin": "https://forms.saga.example",
}


async def create(
    client: Client, headers: dict[str, str], body: dict[str, object]
) -> dict[str, str]:
    resp = await client.post(KEYS, json=body, headers=headers)
    created = await resp.json()
    assert resp.status == 201, created
    assert resp.headers["Cache-Control"] == "no-store"
    return created  # type: ignore[no-any-return]


async def test_create_use_and_revoke(secured: Client, issuer: LocalIssuer, tenant: str) -> None:
    admin = as_user(issuer, tenant, "admin", sub="admin-1")
    created = await create(secured, admin, FORM)
    key = created["key"]
    assert key.startswith(f"cityos_{created['id']}_")
    assert created["types"] == ["Report"]
    assert created["createdBy"] == f"oidc:{issuer.url}#admin-1"

    conn = await asyncpg.connect(TEST_DSN)
    try:
        row = await conn.fetchrow("SELECT * FROM cityos.api_keys WHERE id = $1", created["id"])
    finally:
        await conn.close()
    assert bytes(row["secret_hash"]) == hashlib.sha256(key.encode()).digest()
    secret = key.removeprefix(f"cityos_{created['id']}_")  # token_urlsafe may itself hold "_"
    assert len(secret) == 43 and secret not in repr(dict(row))  # the secret is nowhere in the row

    listed = await (await secured.get(KEYS, headers=admin)).json()
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0] and listed[0]["lastUsedAt"] is None

    origin = {"Origin": "https://forms.saga.example"}
    for headers in ({"X-API-Key": key, **origin}, {"Authorization": f"Bearer {key}", **origin}):
        body = await (await secured.get(ME, headers={**headers, "NGSILD-Tenant": tenant})).json()
        assert body["apiKey"] == created["id"]
        assert body["anonymous"] is False

    for headers, detail in [
        ({"X-API-Key": key}, "only be used from the origin"),
        ({"X-API-Key": key, "Origin": "https://evil.example"}, "only be used from the origin"),
        ({"X-API-Key": key[:-1] + ("A" if key[-1] != "A" else "B"), **origin}, "not valid"),
        ({"X-API-Key": "cityos_nonsense", **origin}, "malformed"),
        ({"X-API-Key": key, "Authorization": "Bearer x", **origin}, "not both"),
    ]:
        resp = await secured.get(ME, headers=headers)
        problem = await resp.json()
        assert resp.status == 401, problem
        assert detail in problem["detail"]

    one = await (await secured.get(f"{KEYS}/{created['id']}", headers=admin)).json()
    assert one["lastUsedAt"] is not None  # the listing flushes the batched times first

    assert (await secured.delete(f"{KEYS}/{created['id']}", headers=admin)).status == 204
    resp = await secured.get(ME, headers={"X-API-Key": key, **origin})
    assert resp.status == 401
    assert "revoked" in (await resp.json())["detail"]
    one = await (await secured.get(f"{KEYS}/{created['id']}", headers=admin)).json()
    assert one["revokedAt"] is not None


async def test_revocation_reaches_another_process(
    secured: Client, issuer: LocalIssuer, tenant: str
) -> None:
    pool = await create_pool(TEST_DSN, 1, 2)
    elsewhere = ApiKeys(ApiKeyRepository(pool), TEST_DSN)
    await elsewhere.start()
    try:
        admin = as_user(issuer, tenant, "admin")
        created = await create(secured, admin, {"name": "sensors", "operations": ["update"]})
        principal = await elsewhere.authenticate(created["key"], None)  # cached there now
        assert principal.api_key is not None and principal.api_key.tenant == tenant
        assert (await secured.delete(f"{KEYS}/{created['id']}", headers=admin)).status == 204
        deadline = time.monotonic() + 10
        while True:
            try:
                await elsewhere.authenticate(created["key"], None)
            except Exception as exc:
                assert "revoked" in str(exc)
                break
            assert time.monotonic() < deadline, "the other process kept the revoked key"
            await asyncio.sleep(0.02)  # poll until the NOTIFY arrives
    finally:
        await elsewhere.close()
        await pool.close()


async def test_an_expired_key(secured: Client, issuer: LocalIssuer, tenant: str) -> None:
    admin = as_user(issuer, tenant, "admin")
    body = {"name": "old", "operations": ["read"], "expiresAt": "2020-01-01T00:00:00Z"}
    created = await create(secured, admin, body)
    resp = await secured.get(ME, headers={"X-API-Key": created["key"]})
    assert resp.status == 401
    assert "expired" in (await resp.json())["detail"]


async def test_only_admins(secured: Client, issuer: LocalIssuer, tenant: str) -> None:
    for headers in (as_user(issuer, tenant, "writer"), {"NGSILD-Tenant": tenant}):
        for resp in (
            await secured.post(KEYS, json=FORM, headers=headers),
            await secured.get(KEYS, headers=headers),
        ):
            assert resp.status == 403
    other = as_user(issuer, tenant, "admin")
    created = await create(secured, other, {"name": "x", "operations": ["read"]})
    elsewhere = as_user(issuer, "test-elsewhere", "admin")
    assert (await secured.get(f"{KEYS}/{created['id']}", headers=elsewhere)).status == 404
    assert (await secured.delete(f"{KEYS}/{created['id']}", headers=elsewhere)).status == 404


async def test_bad_bodies(secured: Client, issuer: LocalIssuer, tenant: str) -> None:
    admin = as_user(issuer, tenant, "admin")
    for body, detail in [
        ({**FORM, "name": ""}, "name must say"),
        ({**FORM, "operations": ["share"]}, "operations must be"),
        ({**FORM, "operations": []}, "operations must be"),
        ({**FORM, "types": []}, "types must be"),
        ({**FORM, "origin": "forms.saga.example"}, "origin must be"),
        ({**FORM, "expiresAt": "tomorrow"}, "not an ISO 8601"),
        ({**FORM, "expiresAt": "2030-01-01T00:00:00"}, "time zone"),
        ({**FORM, "secret": "mine"}, "unknown members: secret"),
    ]:
        resp = await secured.post(KEYS, json=body, headers=admin)
        problem = await resp.json()
        assert resp.status == 400, problem
        assert detail in problem["detail"]
