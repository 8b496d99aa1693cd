"""An attribute instance's own ``expiresAt`` in the temporal API (§6.3.11: the sysAttrs gate
covers /temporal/entities as well): left out by default, present with ``options=sysAttrs``."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

API = "/ngsi-ld/v1"
ID = "urn:ngsi-ld:Vehicle:expiring-instance"
Client = TestClient  # type: ignore[type-arg]
EXPIRES = "2100-01-01T00:00:00Z"


async def test_instance_expires_at_only_with_sys_attrs(client: Client, tenant: str) -> None:
    headers = {"NGSILD-Tenant": tenant}
    entity = {
        "id": ID,
        "type": "Vehicle",
        "expiresAt": EXPIRES,
        "speed": {
            "type": "Property",
            "value": 7,
            "observedAt": "2026-08-13T00:00:00Z",
            "expiresAt": EXPIRES,
        },
    }
    resp = await client.post(f"{API}/entities", json=entity, headers=headers)
    assert resp.status == 201, await resp.text()
    params = {"timerel": "after", "timeAt": "2020-01-01T00:00:00Z"}

    resp = await client.get(f"{API}/temporal/entities/{ID}", params=params, headers=headers)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["speed"][0]["value"] == 7
    assert "expiresAt" not in body["speed"][0]

    resp = await client.get(
        f"{API}/temporal/entities/{ID}", params={**params, "options": "sysAttrs"}, headers=headers
    )
    assert resp.status == 200, await resp.text()
    (instance,) = (await resp.json())["speed"]
    assert instance["expiresAt"] == EXPIRES
    assert instance["value"] == 7 and "createdAt" in instance and "modifiedAt" in instance
