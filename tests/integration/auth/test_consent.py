"""Citizens and consent end to end, as far as phase 1 goes: staff name an entity's data subject,
the citizen (signed in at the citizens' IdP) sees it under /me/entities, grants a service a
consent, the read path's functions (consents_for, decide, log_reads) let the service read and log
it, the citizen reads the access log, revokes, and the next decision refuses. Also who may do
what on these routes, and bad bodies."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestClient

from city_os.api.keys import CONSENTS, PERMISSIONS
from city_os.auth.policy import EntityFacts, Operation, decide
from city_os.auth.principal import Principal
from city_os.store.postgres.auth_log import AccessEntry
from tests.integration.auth.conftest import as_user
from tests.integration.auth.issuer import LocalIssuer

Client = TestClient  # type: ignore[type-arg]
NS = "https://uri.etsi.org/ngsi-ld/default-context/"
APPLICATION = {"id": "urn:ngsi-ld:ChildcareApplication:001", "type": "ChildcareApplication"}
SUBJECT = f"/cityos/v1/dataSubjects/{APPLICATION['id']}"


def citizen_headers(citizens: LocalIssuer, tenant: str, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {citizens.token(sub=sub)}", "NGSILD-Tenant": tenant}


async def test_consent_end_to_end(
    secured: Client, issuer: LocalIssuer, citizens: LocalIssuer, tenant: str
) -> None:
    staff = as_user(issuer, tenant, "writer", sub="clerk")
    assert (
        await secured.post("/ngsi-ld/v1/entities", json=APPLICATION, headers=staff)
    ).status == 201
    resp = await secured.put(
        SUBJECT, json={"issuer": citizens.url, "subject": "c-1"}, headers=staff
    )
    assert resp.status == 204, await resp.text()
    assert await (await secured.get(SUBJECT, headers=staff)).json() == {
        "issuer": citizens.url,
        "subject": "c-1",
    }

    me = citizen_headers(citizens, tenant, "c-1")
    mine = await (await secured.get("/cityos/v1/me/entities", headers=me)).json()
    assert [e["id"] for e in mine] == [APPLICATION["id"]]
    other = citizen_headers(citizens, tenant, "c-2")
    assert await (await secured.get("/cityos/v1/me/entities", headers=other)).json() == []

    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    grant = {
        "client": "childcare-app",
        "types": ["ChildcareApplication"],
        "purpose": "保育所入所申請の審査",
        "expiresAt": expires,
    }
    resp = await secured.post("/cityos/v1/me/consents", json=grant, headers=me)
    consent = await resp.json()
    assert resp.status == 201, consent
    assert consent["valid"] is True and consent["types"] == ["ChildcareApplication"]
    listed = await (await secured.get("/cityos/v1/me/consents", headers=me)).json()
    assert [c["id"] for c in listed] == [consent["id"]]
    assert await (await secured.get("/cityos/v1/me/consents", headers=other)).json() == []

    # the service reads: what the phase-2 read path will do, with the functions it will call
    app = secured.server.app
    service = Principal(subject="svc", issuer=issuer.url, client="childcare-app")
    facts = EntityFacts(
        APPLICATION["id"], (NS + "ChildcareApplication",), (), (citizens.url, "c-1")
    )
    service_reads = app[CONSENTS]

    async def service_decides() -> bool:
        consents = await service_reads.consents_for(tenant, "childcare-app", [facts.subject])  # type: ignore[list-item]
        perms = await app[PERMISSIONS].of_tenant(tenant)
        decision = decide(service, tenant, Operation.READ, facts, perms, consents, time.time())
        if decision.allowed:
            assert decision.via_consent == consent["id"]
            await service_reads.log_reads(
                [
                    AccessEntry(
                        tenant,
                        citizens.url,
                        "c-1",
                        "childcare-app",
                        service.actor["cityosactor"],
                        decision.via_consent,
                        facts.id,
                        "read",
                    )
                ]
            )
        return decision.allowed

    assert await service_decides()
    log = await (await secured.get("/cityos/v1/me/accessLog", headers=me)).json()
    assert [(e["client"], e["entityId"], e["consent"]) for e in log] == [
        ("childcare-app", APPLICATION["id"], consent["id"])
    ]
    assert await (await secured.get("/cityos/v1/me/accessLog", headers=other)).json() == []

    one = f"/cityos/v1/me/consents/{consent['id']}"
    assert (await secured.delete(one, headers=other)).status == 404  # not theirs
    assert (await secured.delete(one, headers=me)).status == 204
    revoked = await (await secured.get(one, headers=me)).json()
    assert revoked["revokedAt"] is not None and revoked["valid"] is False
    assert not await service_decides()


async def test_who_may(
    secured: Client, issuer: LocalIssuer, citizens: LocalIssuer, tenant: str
) -> None:
    writer = as_user(issuer, tenant, "writer", sub="writer-1")  # owns what it creates
    assert (
        await secured.post("/ngsi-ld/v1/entities", json=APPLICATION, headers=writer)
    ).status == 201
    body = {"issuer": citizens.url, "subject": "c-1"}
    reader = as_user(issuer, tenant, "reader")
    assert (await secured.put(SUBJECT, json=body, headers=reader)).status == 403
    nobody = as_user(issuer, tenant)
    assert (
        await secured.put(SUBJECT, json=body, headers=nobody)
    ).status == 404  # not even readable
    resp = await secured.put(SUBJECT, json={**body, "issuer": issuer.url}, headers=writer)
    assert resp.status == 400
    assert "not a citizens' IdP" in (await resp.json())["detail"]
    missing = "/cityos/v1/dataSubjects/urn:ngsi-ld:ChildcareApplication:none"
    assert (await secured.put(missing, json=body, headers=writer)).status == 404

    resp = await secured.get("/cityos/v1/me/entities", headers={"NGSILD-Tenant": tenant})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="city-os"'
    assert (await secured.get("/cityos/v1/me/consents", headers=writer)).status == 403


async def test_bad_grants(secured: Client, citizens: LocalIssuer, tenant: str) -> None:
    me = citizen_headers(citizens, tenant, "c-1")
    good = {
        "client": "childcare-app",
        "types": ["ChildcareApplication"],
        "purpose": "review",
        "expiresAt": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
    }
    for body, detail in [
        ({**good, "client": ""}, "client must be"),
        ({**good, "purpose": " "}, "purpose must say"),
        ({**good, "types": []}, "types must be"),
        ({**good, "expiresAt": "2020-01-01T00:00:00Z"}, "future"),
        ({**good, "expiresAt": "soon"}, "not an ISO 8601"),
        ({**good, "scope": "all"}, "unknown members: scope"),
    ]:
        resp = await secured.post("/cityos/v1/me/consents", json=body, headers=me)
        problem = await resp.json()
        assert resp.status == 400, problem
        assert detail in problem["detail"]
    resp = await secured.get("/cityos/v1/me/consents/not-a-uuid", headers=me)
    assert resp.status == 404
    resp = await secured.get("/cityos/v1/me/accessLog", params={"limit": "0"}, headers=me)
    assert resp.status == 400
