"""Small factories and checks for the NGSIv2 tests (real HTTP against the test app)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

Client = TestClient  # type: ignore[type-arg]


def v2(service: str, **extra: str) -> dict[str, str]:
    return {"Fiware-Service": service, **extra}


def ld_headers(service: str) -> dict[str, str]:
    return {"NGSILD-Tenant": service, "Content-Type": "application/json"}


def room(n: int, **attrs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"Room{n}",
        "type": "Room",
        "temperature": {
            "value": 23.5,
            "type": "Number",
            "metadata": {
                "TimeInstant": {"type": "DateTime", "value": "2026-12-01T10:00:00Z"},
                "accuracy": {"type": "Number", "value": 0.5},
            },
        },
        "name": {"value": "会議室"},
        "location": {"type": "geo:json", "value": {"type": "Point", "coordinates": [130.3, 33.25]}},
        "refBuilding": {"type": "Relationship", "value": "Building1"},
        "lastSeen": {"type": "DateTime", "value": "2026-12-01T09:00:00Z"},
        "level": {"type": "Integer", "value": 3},
    }
    body.update(attrs)
    return body


async def create_v2(client: Client, service: str, body: dict[str, Any], path: str = "") -> None:
    headers = v2(service, **({"Fiware-ServicePath": path} if path else {}))
    resp = await client.post("/v2/entities", json=body, headers=headers)
    assert resp.status == 201, await resp.text()


async def get_v2(client: Client, service: str, url: str) -> Any:
    resp = await client.get(url, headers=v2(service))
    assert resp.status == 200, await resp.text()
    return await resp.json(content_type=None)


async def error(resp: Any, status: int, name: str, description: str = "") -> dict[str, Any]:
    """An Orion-style error body: {"error": name, "description": …} with that status."""
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    assert set(body) == {"error", "description"}, body
    assert body["error"] == name, body
    assert description in body["description"], body
    assert body["description"]
    return body  # type: ignore[no-any-return]
