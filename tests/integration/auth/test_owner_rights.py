"""A subscription owner's rights are re-evaluated at delivery (#10), not frozen at creation.

* An OIDC owner's tenant roles are those of the latest token the broker verified for that user:
  a token without the role (used on any route) stops notifications the role allowed; a token
  with it again resumes them. They lapse CITYOS_OWNER_ROLES_GRACE_HOURS after that token
  expired (checked on the stored record with a later clock).
* An API key owner acts as the key is now: once the key is revoked nothing is notified.
Real Tansu, a real HTTP receiver, tokens from the local OIDC issuer.
"""

from __future__ import annotations

import time

from city_os.api.keys import ENTITIES, POOL, TENANTS
from city_os.devstack import TansuProcess
from tests.integration.auth.conftest import as_user
from tests.integration.auth.issuer import LocalIssuer
from tests.integration.auth.subscribers import ENTITIES as ENTITY_PATH
from tests.integration.auth.subscribers import SUBS, notified, secured_broker, shelter, subscription
from tests.integration.notifier.support import Receiver, settled


async def test_roles_follow_the_latest_token(
    tansu: TansuProcess,
    sink: Receiver,
    issuer: LocalIssuer,
    citizens: LocalIssuer,
    tenant: str,
) -> None:
    async with secured_broker(tansu, issuer, citizens) as client:
        admin = as_user(issuer, tenant, "admin", sub="admin")
        reader = as_user(issuer, tenant, "reader", sub="watcher")
        resp = await client.post(SUBS, json=subscription(sink.url), headers=reader)
        assert resp.status == 201, await resp.text()
        assert (await client.post(ENTITY_PATH, json=shelter(1), headers=admin)).status == 201
        await sink.wait_for(1)

        # the IdP withdrew the role: the watcher's next token says so (any route will do)
        demoted = as_user(issuer, tenant, sub="watcher", jti="demoted")
        assert (await client.get("/cityos/v1/me", headers=demoted)).status == 200
        assert (await client.post(ENTITY_PATH, json=shelter(2), headers=admin)).status == 201
        await settled(client, tenant)
        assert notified(sink) == ["urn:ngsi-ld:Shelter:1"]

        # the role is back in a later token: notifications resume
        again = as_user(issuer, tenant, "reader", sub="watcher", jti="later")
        assert (await client.get("/cityos/v1/me", headers=again)).status == 200
        assert (await client.post(ENTITY_PATH, json=shelter(3), headers=admin)).status == 201
        await sink.wait_for(2)
        await settled(client, tenant)
        assert notified(sink) == ["urn:ngsi-ld:Shelter:1", "urn:ngsi-ld:Shelter:3"]

        # the roles of the latest token lapse after its expiry plus the grace
        rows = await client.get(SUBS, headers=reader)
        [sub] = await rows.json()
        access = client.app[ENTITIES].access
        assert access is not None and access.owners is not None
        owners = access.owners
        schema = await client.app[TENANTS].schema(tenant, create=False)
        stored = await client.app[POOL].fetchval(
            f'SELECT owner FROM "{schema}".subscriptions WHERE id = $1', sub["id"]
        )
        now = await owners.principal(stored, tenant)
        assert now is not None and now.roles_in(tenant) == {"reader"}
        later = await owners.principal(stored, tenant, time.time() + 300 + owners.grace + 60)
        assert later is not None and later.roles_in(tenant) == frozenset()


async def test_revoked_api_key_stops_its_subscription(
    tansu: TansuProcess,
    sink: Receiver,
    issuer: LocalIssuer,
    citizens: LocalIssuer,
    tenant: str,
) -> None:
    async with secured_broker(tansu, issuer, citizens) as client:
        admin = as_user(issuer, tenant, "admin", sub="admin")
        resp = await client.post(
            "/cityos/v1/apikeys", json={"name": "dashboard", "operations": ["read"]}, headers=admin
        )
        assert resp.status == 201, await resp.text()
        made = await resp.json()
        key = {"X-API-Key": made["key"], "NGSILD-Tenant": tenant}
        resp = await client.post(SUBS, json=subscription(sink.url), headers=key)
        assert resp.status == 201, await resp.text()
        assert (await client.post(ENTITY_PATH, json=shelter(1), headers=admin)).status == 201
        await sink.wait_for(1)
        revoked = await client.delete(f"/cityos/v1/apikeys/{made['id']}", headers=admin)
        assert revoked.status == 204, await revoked.text()
        assert (await client.post(ENTITY_PATH, json=shelter(2), headers=admin)).status == 201
        await settled(client, tenant)
        assert notified(sink) == ["urn:ngsi-ld:Shelter:1"]
