"""Small factories for the temporal tests: a vehicle with instances, request helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

API = "/ngsi-ld/v1"
TEMPORAL = API + "/temporal"
Client = TestClient  # type: ignore[type-arg]
T0 = datetime(2020, 8, 1, 12, 0, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def vehicle(
    eid: str, speeds: list[float], *, step: timedelta = timedelta(minutes=1)
) -> dict[str, Any]:
    return {
        "id": eid,
        "type": "Vehicle",
        "speed": [
            {"type": "Property", "value": v, "observedAt": iso(T0 + i * step)}
            for i, v in enumerate(speeds)
        ],
    }


async def create(client: Client, tenant: str, body: dict[str, Any]) -> None:
    r = await client.post(f"{TEMPORAL}/entities", json=body, headers={"NGSILD-Tenant": tenant})
    assert r.status in (201, 204), await r.text()


async def get(client: Client, tenant: str, path: str, **params: Any) -> tuple[int, Any, Any]:
    r = await client.get(TEMPORAL + path, params=params, headers={"NGSILD-Tenant": tenant})
    return r.status, await r.json() if r.content_length != 0 else None, r.headers
