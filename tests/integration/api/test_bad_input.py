"""Bad input on every entity endpoint: a ProblemDetails 4xx, never a 500, and nothing changes."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

API = "/ngsi-ld/v1"
EID = "urn:ngsi-ld:Shelter:1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
ENTITY = {
    "id": EID,
    "type": "Shelter",
    "capacity": {"type": "Property", "value": 200},
    "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [130.3, 33.26]}},
}
Client = TestClient  # type: ignore[type-arg]

# (method, path, body (None = no body; bytes = raw), expected status, expected type)
CASES: list[tuple[str, str, Any, int, str]] = [
    ("POST", "/entities/{id}/attrs", b"{oops", 400, "InvalidRequest"),
    ("POST", "/entities/{id}/attrs", [1], 400, "InvalidRequest"),
    ("POST", "/entities/{id}/attrs", {"capacity": {"type": "Property"}}, 400, "BadRequestData"),
    (
        "POST",
        "/entities/{id}/attrs",
        {"location": {"type": "Property", "value": 1}},
        400,
        "BadRequestData",
    ),
    ("PATCH", "/entities/{id}/attrs", {"capacity": None}, 400, "BadRequestData"),
    ("PATCH", "/entities/{id}/attrs", {"bad name": 1}, 400, "BadRequestData"),
    ("PATCH", "/entities/{id}/attrs/capacity", {"value": {"nested": None}}, 400, "BadRequestData"),
    (
        "PATCH",
        "/entities/{id}/attrs/capacity",
        {"type": "Relationship", "object": "urn:a:b"},
        400,
        "BadRequestData",
    ),
    ("PATCH", "/entities/{id}/attrs/scope", {"value": "/a"}, 400, "BadRequestData"),
    ("PUT", "/entities/{id}/attrs/capacity", {"type": "Property"}, 400, "BadRequestData"),
    ("PUT", "/entities/{id}", {"id": "urn:other:1", "type": "Shelter"}, 400, "BadRequestData"),
    ("PUT", "/entities/{id}", {"type": "Shelter", "observedAt": 1}, 400, "BadRequestData"),
    (
        "PATCH",
        "/entities/{id}",
        {"capacity": {"type": "Property", "value": None}},
        400,
        "BadRequestData",
    ),
    (
        "DELETE",
        "/entities/{id}/attrs/capacity?datasetId=not%20a%20uri",
        None,
        400,
        "BadRequestData",
    ),
    ("DELETE", "/entities/{id}/attrs/capacity?deleteAll=maybe", None, 400, "BadRequestData"),
    ("DELETE", "/entities/not%20a%20uri", None, 400, "BadRequestData"),
    ("GET", "/entities/{id}?options=bogus", None, 400, "InvalidRequest"),
    ("GET", "/entities/{id}?pick=a,,b", None, 400, "BadRequestData"),
    ("GET", "/entities/{id}?pick=capacity&omit=location", None, 400, "BadRequestData"),
    ("POST", "/entityOperations/create", {"id": EID}, 400, "BadRequestData"),
    ("POST", "/entityOperations/create", [], 400, "BadRequestData"),
    ("POST", "/entityOperations/upsert", [None], 400, "BadRequestData"),
    ("POST", "/entityOperations/upsert?options=update,replace", [ENTITY], 400, "BadRequestData"),
    ("POST", "/entityOperations/update", "text", 400, "BadRequestData"),
    ("POST", "/entityOperations/merge", b"[", 400, "InvalidRequest"),
    ("POST", "/entityOperations/delete", {"a": 1}, 400, "BadRequestData"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "kind"), CASES)
async def test_bad_input_is_refused_and_changes_nothing(
    client: Client, tenant: str, method: str, path: str, body: Any, status: int, kind: str
) -> None:
    headers = {"NGSILD-Tenant": tenant, "Content-Type": "application/json"}
    resp = await client.post(f"{API}/entities", json=ENTITY, headers=headers)
    assert resp.status == 201
    url = API + path.format(id=EID)
    if isinstance(body, bytes):
        resp = await client.request(method, url, data=body, headers=headers)
    elif body is None:
        resp = await client.request(method, url, headers={"NGSILD-Tenant": tenant})
    else:
        resp = await client.request(method, url, json=body, headers=headers)
    problem = await resp.json(content_type=None)
    assert resp.status == status, problem
    assert problem["type"] == ERR + kind
    assert problem["title"] and problem["detail"]
    resp = await client.get(f"{API}/entities/{EID}", headers={"NGSILD-Tenant": tenant})
    stored = await resp.json()
    assert stored["capacity"] == {"type": "Property", "value": 200}
    assert stored["location"] == ENTITY["location"]


async def test_body_without_content_length_is_411(client: Client, tenant: str) -> None:
    async def chunks() -> Any:
        yield b'{"id": "urn:a:1", "type": "T"}'

    resp = await client.post(
        f"{API}/entities",
        data=chunks(),
        headers={"NGSILD-Tenant": tenant, "Content-Type": "application/json"},
    )
    assert resp.status == 411
    assert await resp.read() == b""
