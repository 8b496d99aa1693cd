"""/v2/registrations over real HTTP: stored as NGSI-LD context source registrations, so each
API sees the other's; the v2 members that have no NGSI-LD meaning are refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.ngsiv2.support import Client, error, get_v2, v2

ROOMS = {"entities": [{"id": "Room1", "type": "Room"}], "attrs": ["temperature"]}


def registration(**members: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "description": "rooms of building A",
        "dataProvided": ROOMS,
        "provider": {"http": {"url": "http://127.0.0.1:9/v2"}},
    }
    body.update(members)
    return body


async def create(client: Client, service: str, body: dict[str, Any]) -> str:
    resp = await client.post("/v2/registrations", json=body, headers=v2(service))
    assert resp.status == 201, await resp.text()
    location = resp.headers["Location"]
    assert location.startswith("/v2/registrations/")
    return location.rsplit("/", 1)[1]


async def test_round_trip_and_seen_by_ngsild(client: Client, service: str) -> None:
    rid = await create(client, service, registration(expires="2099-01-01T00:00:00Z"))
    assert len(rid) == 24
    got = await get_v2(client, service, f"/v2/registrations/{rid}")
    assert got == {
        "id": rid,
        "description": "rooms of building A",
        "dataProvided": ROOMS,
        "provider": {
            "http": {"url": "http://127.0.0.1:9/v2"},
            "supportedForwardingMode": "all",
            "legacyForwarding": False,
        },
        "expires": "2099-01-01T00:00:00.000Z",
        "status": "active",
    }
    assert await get_v2(client, service, "/v2/registrations") == [got]
    ld = await client.get(
        f"/ngsi-ld/v1/csourceRegistrations/urn:ngsi-ld:ContextSourceRegistration:{rid}",
        headers={"NGSILD-Tenant": service},
    )
    body = await ld.json()
    assert body["information"][0]["entities"][0]["id"] == "urn:ngsiv:Room1"
    assert body["operations"] == ["retrieveOps", "updateOps"]


async def test_ngsild_registrations_are_listed_in_v2(client: Client, service: str) -> None:
    resp = await client.post(
        "/ngsi-ld/v1/csourceRegistrations",
        json={
            "type": "ContextSourceRegistration",
            "information": [{"entities": [{"type": "Room", "idPattern": ".*"}]}],
            "endpoint": "http://127.0.0.1:9/ngsi-ld/v1",
            "operations": ["retrieveOps"],
        },
        headers={"NGSILD-Tenant": service, "Content-Type": "application/json"},
    )
    assert resp.status == 201, await resp.text()
    listed = await get_v2(client, service, "/v2/registrations")
    assert listed[0]["dataProvided"]["entities"] == [{"idPattern": ".*", "type": "Room"}]
    assert listed[0]["provider"]["supportedForwardingMode"] == "query"


async def test_update_and_delete(client: Client, service: str) -> None:
    rid = await create(client, service, registration())
    resp = await client.patch(
        f"/v2/registrations/{rid}",
        json={
            "provider": {
                "http": {"url": "http://127.0.0.1:8/v2"},
                "supportedForwardingMode": "update",
            }
        },
        headers=v2(service),
    )
    assert resp.status == 204, await resp.text()
    got = await get_v2(client, service, f"/v2/registrations/{rid}")
    assert got["provider"]["http"]["url"] == "http://127.0.0.1:8/v2"
    assert got["provider"]["supportedForwardingMode"] == "update"
    resp = await client.delete(f"/v2/registrations/{rid}", headers=v2(service))
    assert resp.status == 204
    await error(await client.get(f"/v2/registrations/{rid}", headers=v2(service)), 404, "NotFound")
    await error(
        await client.delete(f"/v2/registrations/{rid}", headers=v2(service)), 404, "NotFound"
    )


@pytest.mark.parametrize(
    ("members", "says"),
    [
        ({"dataProvided": None}, "dataProvided"),
        ({"provider": None}, "provider"),
        ({"provider": {"http": {"url": "not a url"}}}, "endpoint"),
        ({"provider": {"http": {"url": "http://x/"}, "supportedForwardingMode": "none"}}, "none"),
        ({"provider": {"http": {"url": "http://x/"}, "legacyForwarding": True}}, "legacy"),
        ({"dataProvided": {"entities": [{"id": "R1"}]}}, "type"),
        ({"dataProvided": {"entities": [{"typePattern": "R.*"}]}}, "typePattern"),
        (
            {"dataProvided": {"entities": [{"id": "R1", "type": "R"}], "expression": {}}},
            "expression",
        ),
        ({"status": "inactive"}, "status"),
        ({"expires": "tomorrow"}, "expires"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_registrations(
    client: Client, service: str, members: dict[str, Any], says: str
) -> None:
    body = {k: v for k, v in registration(**members).items() if v is not None}
    resp = await client.post("/v2/registrations", json=body, headers=v2(service))
    await error(resp, 400, "BadRequest", says)
    assert await get_v2(client, service, "/v2/registrations") == []
