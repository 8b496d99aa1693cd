"""An attribute instance's own ``expiresAt`` in the temporal API (§6.3.11: the sysAttrs gate
covers /temporal/entities as well): left out by default, present with ``options=sysAttrs``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

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


async def _until(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    """Poll ``check`` until it holds (returns as soon as it does)."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def test_a_transient_attribute_history_goes_with_it(client: Client, tenant: str) -> None:
    """§5.2.5: expiresAt ends "the storage of the Property" — its temporal instances too; the
    durable attribute's history stays (ETSI 422_07_02)."""
    headers = {"NGSILD-Tenant": tenant}
    soon = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    eid = ID + "-flash"
    entity = {
        "id": eid,
        "type": "Vehicle",
        "flash": {"type": "Property", "value": 10, "expiresAt": soon},
        "steady": {"type": "Property", "value": 100},
    }
    resp = await client.post(f"{API}/entities", json=entity, headers=headers)
    assert resp.status == 201, await resp.text()
    resp = await client.patch(
        f"{API}/entities/{eid}/attrs/flash", json={"type": "Property", "value": 11}, headers=headers
    )
    assert resp.status == 204, await resp.text()
    params = {
        "timerel": "before",
        "timeAt": "2100-01-01T00:00:00Z",
        "timeproperty": "modifiedAt",
        "options": "temporalValues",
    }

    async def body() -> dict[str, Any]:
        resp = await client.get(f"{API}/temporal/entities/{eid}", params=params, headers=headers)
        assert resp.status == 200, await resp.text()
        found: dict[str, Any] = await resp.json()
        return found

    before = await body()
    if "flash" in before:  # (unless the machine was slower than the 2 s of life)
        assert sorted(v[0] for v in before["flash"]["values"]) == [10, 11]

    async def gone() -> bool:
        return "flash" not in await body()

    await _until(gone)
    assert [v[0] for v in (await body())["steady"]["values"]] == [100]
