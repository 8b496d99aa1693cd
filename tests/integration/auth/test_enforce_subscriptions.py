"""Subscriptions under access control (phase 2): a subscription belongs to its creator (only the
owner and tenant admins see, change or delete it); notifications carry only entities the owner
may read, decided at delivery; consent end to end — a citizen grants, a service reads and is
notified, the access log shows both, the citizen revokes, the next read is refused and the
service's subscription stops notifying."""

from __future__ import annotations

from city_os.devstack import TansuProcess
from tests.integration.auth.conftest import as_user
from tests.integration.auth.issuer import LocalIssuer
from tests.integration.auth.subscribers import (
    ENTITIES,
    SUBS,
    Client,
    citizen,
    consent,
    notified,
    secured_broker,
    shelter,
    subscription,
)
from tests.integration.notifier.support import Receiver, settled


async def test_owner_only(secured: Client, issuer: LocalIssuer, tenant: str) -> None:
    alice = as_user(issuer, tenant, sub="alice")
    bob = as_user(issuer, tenant, sub="bob")
    admin = as_user(issuer, tenant, "admin", sub="admin")
    resp = await secured.post(SUBS, json=subscription("http://127.0.0.1:9/n"), headers=alice)
    assert resp.status == 201, await resp.text()
    one = resp.headers["Location"]
    assert (await secured.get(one, headers=alice)).status == 200
    assert (await secured.get(one, headers=admin)).status == 200
    assert (await secured.get(one, headers=bob)).status == 404
    assert (await secured.patch(one, json={"description": "x"}, headers=bob)).status == 404
    assert (await secured.delete(one, headers=bob)).status == 404
    listed = await secured.get(SUBS, params={"count": "true"}, headers=bob)
    assert await listed.json() == [] and listed.headers["NGSILD-Results-Count"] == "0"
    listed = await secured.get(SUBS, params={"count": "true"}, headers=alice)
    assert len(await listed.json()) == 1 and listed.headers["NGSILD-Results-Count"] == "1"
    assert len(await (await secured.get(SUBS, headers=admin)).json()) == 1
    anonymous = {"NGSILD-Tenant": tenant}
    resp = await secured.post(SUBS, json=subscription("http://127.0.0.1:9/n"), headers=anonymous)
    assert resp.status == 401
    assert (await secured.get(SUBS, headers=anonymous)).status == 200  # sees none
    assert await (await secured.get(SUBS, headers=anonymous)).json() == []
    assert (await secured.patch(one, json={"description": "x"}, headers=alice)).status == 204
    assert (await secured.delete(one, headers=alice)).status == 204


async def test_notifications_carry_only_readable(
    tansu: TansuProcess,
    sink: Receiver,
    issuer: LocalIssuer,
    citizens: LocalIssuer,
    tenant: str,
) -> None:
    async with secured_broker(tansu, issuer, citizens) as client:
        admin = as_user(issuer, tenant, "admin", sub="admin")
        grant = {
            "assignee": {"kind": "subject", "value": "watcher", "issuer": issuer.url},
            "action": "read",
            "target": {"scopes": ["/Saga/#"]},
        }
        resp = await client.post("/cityos/v1/permissions", json=grant, headers=admin)
        assert resp.status == 201
        watcher = as_user(issuer, tenant, sub="watcher")
        resp = await client.post(SUBS, json=subscription(sink.url), headers=watcher)
        assert resp.status == 201, await resp.text()
        for n, scope in ((1, "/Saga/Kase"), (2, "/Fukuoka"), (3, "/Saga")):
            body = shelter(n, scope=scope)
            assert (await client.post(ENTITIES, json=body, headers=admin)).status == 201
        await sink.wait_for(2)
        await settled(client, tenant)
        assert notified(sink) == ["urn:ngsi-ld:Shelter:1", "urn:ngsi-ld:Shelter:3"]


async def test_consent_end_to_end_with_notifications(
    tansu: TansuProcess,
    sink: Receiver,
    issuer: LocalIssuer,
    citizens: LocalIssuer,
    tenant: str,
) -> None:
    app_id = "urn:ngsi-ld:ChildcareApplication:1"
    async with secured_broker(tansu, issuer, citizens) as client:
        clerk = as_user(issuer, tenant, "writer", sub="clerk")
        body = {"id": app_id, "type": "ChildcareApplication"}
        assert (await client.post(ENTITIES, json=body, headers=clerk)).status == 201
        subject = {"issuer": citizens.url, "subject": "c-1"}
        resp = await client.put(f"/cityos/v1/dataSubjects/{app_id}", json=subject, headers=clerk)
        assert resp.status == 204
        service = as_user(issuer, tenant, sub="svc", azp="childcare-app")
        one = f"{ENTITIES}/{app_id}"
        assert (await client.get(one, headers=service)).status == 404  # no consent yet
        resp = await client.post(
            SUBS, json=subscription(sink.url, "ChildcareApplication"), headers=service
        )
        assert resp.status == 201, await resp.text()

        me = citizen(citizens, tenant)
        grant = consent("childcare-app", ["ChildcareApplication"], "保育所入所申請の審査", 30)
        resp = await client.post("/cityos/v1/me/consents", json=grant, headers=me)
        granted = await resp.json()
        assert resp.status == 201, granted
        assert (await client.get(one, headers=service)).status == 200
        query = await client.get(ENTITIES, params={"type": "ChildcareApplication"}, headers=service)
        assert [e["id"] for e in await query.json()] == [app_id]

        patch = {"status": {"type": "Property", "value": "review"}}
        assert (await client.patch(f"{one}/attrs", json=patch, headers=clerk)).status == 204
        got = await sink.wait_for(1)
        assert got[0].body["data"][0]["id"] == app_id

        log = await (await client.get("/cityos/v1/me/accessLog", headers=me)).json()
        operations = sorted(e["operation"] for e in log)
        assert operations == ["notification", "query", "read"], log
        assert {e["consent"] for e in log} == {granted["id"]}

        revoke = await client.delete(f"/cityos/v1/me/consents/{granted['id']}", headers=me)
        assert revoke.status == 204
        assert (await client.get(one, headers=service)).status == 404
        patch = {"status": {"type": "Property", "value": "decided"}}
        assert (await client.patch(f"{one}/attrs", json=patch, headers=clerk)).status == 204
        await settled(client, tenant)
        assert len(sink.received) == 1  # the revoked service is not notified any more
