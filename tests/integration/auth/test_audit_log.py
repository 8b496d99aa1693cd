"""The audit log (#10): access changes and refused decisions, queryable by a tenant admin.

* the creator's automatic ``own`` grant (single create and batch) is a ``permission.created``
  entry with ``automatic: true``, written with the entity;
* permission and consent changes are entries with their actor;
* refused decisions are ``access.refused`` entries: a 401 (bad token, anonymous on a tenant
  rule), a 403 (readable, not writable; a tenant rule), a 404 that access control chose (an
  existing entity the caller may not read), a batch's per-entity refusals;
* only tenant admins read it (401 anonymous, 403 others), and only their tenant's entries.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from tests.integration.auth.conftest import as_user
from tests.integration.auth.issuer import LocalIssuer
from tests.integration.auth.subscribers import citizen, consent

Client = TestClient  # type: ignore[type-arg]
AUDIT = "/cityos/v1/audit"
ENTITIES = "/ngsi-ld/v1/entities"


def shelter(n: int) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Shelter:a{n}", "type": "Shelter", "scope": "/Saga"}


async def entries(client: Client, admin: dict[str, str], **params: str) -> list[dict[str, Any]]:
    resp = await client.get(AUDIT, params=params, headers=admin)
    assert resp.status == 200, await resp.text()
    body: list[dict[str, Any]] = await resp.json()
    return body


async def test_changes_and_refusals_are_audited(
    secured: Client, issuer: LocalIssuer, citizens: LocalIssuer, tenant: str
) -> None:
    admin = as_user(issuer, tenant, "admin", sub="admin")
    volunteer = as_user(issuer, tenant, sub="vol")
    reader = as_user(issuer, tenant, "reader", sub="reader")
    grant = {
        "assignee": {"kind": "subject", "value": "vol", "issuer": issuer.url},
        "action": "write",
        "target": {"types": ["Shelter"], "scopes": ["/Saga/#"]},
    }
    resp = await secured.post("/cityos/v1/permissions", json=grant, headers=admin)
    assert resp.status == 201, await resp.text()
    granted = (await resp.json())["id"]

    # the creator's own grant: single create and batch
    assert (await secured.post(ENTITIES, json=shelter(1), headers=volunteer)).status == 201
    batch = await secured.post(
        "/ngsi-ld/v1/entityOperations/create", json=[shelter(2), shelter(3)], headers=volunteer
    )
    assert batch.status == 201, await batch.text()
    created = await entries(secured, admin, action="permission.created")
    automatic = sorted(e["detail"]["entityId"] for e in created if e["detail"].get("automatic"))
    assert automatic == [f"urn:ngsi-ld:Shelter:a{n}" for n in (1, 2, 3)]
    vol_actor = f"oidc:{issuer.url}#vol"
    assert {e["actor"] for e in created if e["detail"].get("automatic")} == {vol_actor}
    assert {e["detail"]["action"] for e in created if e["detail"].get("automatic")} == {"own"}
    [explicit] = [e for e in created if e["resource"] == granted]
    assert explicit["actor"] == f"oidc:{issuer.url}#admin"

    # refusals: 404 by policy, 403, 401, a batch's per-entity refusal, a tenant rule's 403
    admin_made = {"id": "urn:ngsi-ld:Shelter:hidden", "type": "Shelter", "scope": "/Fukuoka"}
    assert (await secured.post(ENTITIES, json=admin_made, headers=admin)).status == 201
    stranger = as_user(issuer, tenant, sub="stranger")
    hidden = f"{ENTITIES}/urn:ngsi-ld:Shelter:hidden"
    assert (await secured.get(hidden, headers=stranger)).status == 404
    patch = {"name": {"type": "Property", "value": "x"}}
    resp = await secured.patch(
        f"{ENTITIES}/urn:ngsi-ld:Shelter:a1/attrs", json=patch, headers=reader
    )
    assert resp.status == 403
    bad = {"Authorization": "Bearer not-a-jwt", "NGSILD-Tenant": tenant}
    assert (await secured.get(ENTITIES, params={"type": "Shelter"}, headers=bad)).status == 401
    upsert = await secured.post(
        "/ngsi-ld/v1/entityOperations/upsert", json=[shelter(1), admin_made], headers=volunteer
    )
    assert upsert.status == 207, await upsert.text()
    schema = {"type": "Shelter", "schema": {"type": "object"}}
    assert (await secured.post("/cityos/v1/schemas", json=schema, headers=reader)).status == 403

    refused = await entries(secured, admin, action="access.")
    by_status: dict[int, list[dict[str, Any]]] = {}
    for e in refused:
        assert e["action"] == "access.refused"
        by_status.setdefault(e["detail"]["status"], []).append(e)
    not_found = {(e["resource"], e["actor"]) for e in by_status[404]}
    assert ("urn:ngsi-ld:Shelter:hidden", f"oidc:{issuer.url}#stranger") in not_found
    assert ("urn:ngsi-ld:Shelter:hidden", vol_actor) in not_found  # the batch's refusal
    forbidden = {e["resource"] for e in by_status[403]}
    assert f"PATCH {ENTITIES}/urn:ngsi-ld:Shelter:a1/attrs" in forbidden
    assert "POST /cityos/v1/schemas" in forbidden
    [unauthorized] = by_status[401]
    assert unauthorized["actor"] == "anonymous" and unauthorized["resource"] == f"GET {ENTITIES}"
    assert "JWT" in unauthorized["detail"]["reason"]

    # filters
    mine = await entries(secured, admin, actor=f"oidc:{issuer.url}#stranger")
    assert [e["resource"] for e in mine] == ["urn:ngsi-ld:Shelter:hidden"]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await entries(secured, admin, since=later) == []
    one = await entries(secured, admin, limit="1")
    assert len(one) == 1

    # consents: granted and revoked, by the citizen
    app_id = "urn:ngsi-ld:ChildcareApplication:1"
    body = {"id": app_id, "type": "ChildcareApplication"}
    assert (await secured.post(ENTITIES, json=body, headers=admin)).status == 201
    me = citizen(citizens, tenant)
    grant = consent("childcare-app", ["ChildcareApplication"], "審査", 1)
    resp = await secured.post("/cityos/v1/me/consents", json=grant, headers=me)
    assert resp.status == 201, await resp.text()
    cid = (await resp.json())["id"]
    assert (await secured.delete(f"/cityos/v1/me/consents/{cid}", headers=me)).status == 204
    consents = await entries(secured, admin, action="consent.", resource=cid)
    assert sorted(e["action"] for e in consents) == ["consent.granted", "consent.revoked"]
    assert {e["actor"] for e in consents} == {f"oidc:{citizens.url}#c-1"}


async def test_only_tenant_admins_read_it(
    secured: Client, issuer: LocalIssuer, tenant: str
) -> None:
    assert (await secured.get(AUDIT, headers={"NGSILD-Tenant": tenant})).status == 401
    for who in (
        as_user(issuer, tenant, "writer"),
        as_user(issuer, tenant, "steward"),
        as_user(issuer, "other-" + tenant, "admin") | {"NGSILD-Tenant": tenant},
    ):
        resp = await secured.get(AUDIT, headers=who)
        assert resp.status == 403, await resp.text()
    other_admin = as_user(issuer, "other-" + tenant, "admin")
    assert await entries(secured, other_admin) == []  # the refusals above are this tenant's
    resp = await secured.get(AUDIT, params={"since": "yesterday"}, headers=other_admin)
    assert resp.status == 400
