"""The CSourceRegistration API (§5.9, §5.10.1) over real HTTP against PostgreSQL: create,
retrieve, update, delete, every member round-tripped, each test in a tenant of its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.federation.support import (
    CONTEXT,
    ENDPOINT,
    EX,
    REGS,
    Client,
    create,
    host_context,
    ld,
    problem,
    read,
    registration,
    retrieve,
)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    """Poll ``check`` until it holds (returns as soon as it does)."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


def future(hours: int = 1) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
async def ctx_url(client: Client, tenant: str) -> str:
    return await host_context(client, tenant)


FULL: dict[str, Any] = {
    "registrationName": "Saga City broker",
    "description": "Shelters and evacuation sites of Saga City",
    "information": [
        {
            "entities": [{"type": "Shelter"}, {"idPattern": "^urn:saga:", "type": ["Vehicle"]}],
            "propertyNames": ["capacity"],
            "relationshipNames": ["owner"],
        }
    ],
    "tenant": "saga-city",
    "observationInterval": {"startAt": "2026-01-01T00:00:00Z"},
    "managementInterval": {"startAt": "2026-01-01T00:00:00Z", "endAt": "2030-01-01T00:00:00Z"},
    "location": {"type": "Point", "coordinates": [130.3, 33.26]},
    "observationSpace": {
        "type": "Polygon",
        "coordinates": [[[130.2, 33.2], [130.4, 33.2], [130.4, 33.3], [130.2, 33.2]]],
    },
    "operationSpace": {"type": "Point", "coordinates": [130.31, 33.25]},
    "contextSourceInfo": [{"key": "Authorization", "value": "Bearer abc"}],
    "scope": ["/Saga/Flood"],
    "mode": "inclusive",
    "operations": ["retrieveOps", "queryTemporal"],
    "refreshRate": "PT1M",
    "management": {"localOnly": True, "cacheDuration": "PT5M", "timeout": 3000, "cooldown": 500},
    "sourceType": {"type": "Property", "value": "sensor"},
}


async def test_every_member_round_trips(client: Client, tenant: str, ctx_url: str) -> None:
    expires = future(24)
    rid = await create(client, tenant, registration(id="urn:reg:full", expiresAt=expires, **FULL))
    assert rid == "urn:reg:full"
    got = await read(client, tenant, rid, ctx_url)
    expected = {"id": rid, "type": "ContextSourceRegistration", "endpoint": ENDPOINT, **FULL}
    expected["information"][0]["entities"][1]["type"] = "Vehicle"  # one type: a string
    assert got == {**expected, "expiresAt": expires}


async def test_defaults_and_full_iris_without_context(client: Client, tenant: str) -> None:
    rid = await create(client, tenant, registration())
    assert rid.startswith("urn:ngsi-ld:ContextSourceRegistration:")
    got = await retrieve(client, tenant, rid)
    assert got == {
        "id": rid,
        "type": "ContextSourceRegistration",
        "endpoint": ENDPOINT,
        "information": [{"entities": [{"type": EX + "Shelter"}]}],
        "mode": "inclusive",
        "operations": ["federationOps"],
    }


async def test_sys_attrs(client: Client, tenant: str) -> None:
    rid = await create(client, tenant, registration())
    got = await retrieve(client, tenant, rid, "?options=sysAttrs")
    assert got["createdAt"] == got["modifiedAt"]
    assert got["createdAt"].endswith("Z")


async def test_json_with_link_header(client: Client, tenant: str, ctx_url: str) -> None:
    body = registration()
    body.pop("@context")
    resp = await client.post(
        REGS,
        json=body,
        headers={
            "NGSILD-Tenant": tenant,
            "Content-Type": "application/json",
            "Link": f'<{ctx_url}>; rel="http://www.w3.org/ns/json-ld#context"',
        },
    )
    assert resp.status == 201, await resp.text()
    rid = resp.headers["Location"].rsplit("/", 1)[1]
    assert (await retrieve(client, tenant, rid))["information"][0]["entities"][0]["type"] == (
        EX + "Shelter"
    )


async def test_same_id_twice_is_409_and_keeps_the_first(client: Client, tenant: str) -> None:
    await create(client, tenant, registration(id="urn:reg:1"))
    resp = await client.post(
        REGS, json=registration(id="urn:reg:1", endpoint="http://other:1/"), headers=ld(tenant)
    )
    await problem(resp, 409, "AlreadyExists")
    assert (await retrieve(client, tenant, "urn:reg:1"))["endpoint"] == ENDPOINT


async def test_unknown_invalid_and_tenantless_reads(client: Client, tenant: str) -> None:
    await create(client, tenant, registration())
    headers = {"NGSILD-Tenant": tenant}
    await problem(
        await client.get(f"{REGS}/urn:reg:none", headers=headers), 404, "ResourceNotFound"
    )
    await problem(await client.get(f"{REGS}/not-a-uri", headers=headers), 400, "BadRequestData")
    resp = await client.get(f"{REGS}/urn:reg:none", headers={"NGSILD-Tenant": tenant + "-x"})
    await problem(resp, 404, "NonexistentTenant")


async def test_tenants_are_apart(client: Client, tenant: str) -> None:
    rid = await create(client, tenant, registration())
    other = tenant + "-b"
    await create(client, other, registration(id="urn:reg:other"))
    resp = await client.get(f"{REGS}/{rid}", headers={"NGSILD-Tenant": other})
    await problem(resp, 404, "ResourceNotFound")


# ----------------------------------------------------------------------------- update


async def patch(client: Client, tenant: str, rid: str, body: dict[str, Any]) -> Any:
    return await client.patch(f"{REGS}/{rid}", json=body, headers=ld(tenant))


async def test_update_merges_members(client: Client, tenant: str, ctx_url: str) -> None:
    rid = await create(client, tenant, registration(expiresAt=future(), sourceType="a"))
    resp = await patch(
        client,
        tenant,
        rid,
        {
            "endpoint": "http://127.0.0.1:18072/new",
            "expiresAt": None,
            "sourceType": None,
            "registrationName": "renamed",
            "information": [{"entities": [{"type": "Vehicle"}]}],
            "@context": CONTEXT,
        },
    )
    assert resp.status == 204, await resp.text()
    got = await read(client, tenant, rid, ctx_url, "?options=sysAttrs")
    assert got["endpoint"] == "http://127.0.0.1:18072/new"
    assert got["registrationName"] == "renamed"
    assert got["information"] == [{"entities": [{"type": "Vehicle"}]}]
    assert "expiresAt" not in got and "sourceType" not in got
    assert got["modifiedAt"] > got["createdAt"]


@pytest.mark.parametrize(
    ("fragment", "kind", "member"),
    [
        ({"information": None}, "BadRequestData", "information"),
        ({"endpoint": None}, "BadRequestData", "endpoint"),
        ({"type": "Building"}, "BadRequestData", "type"),
        ({"id": "urn:reg:else"}, "BadRequestData", "differs"),
        ({"mode": "exclusive"}, "BadRequestData", "exclusive"),
        ({"operations": ["nothing"]}, "BadRequestData", "operations"),
    ],
)
async def test_bad_updates_change_nothing(
    client: Client, tenant: str, fragment: dict[str, Any], kind: str, member: str
) -> None:
    rid = await create(client, tenant, registration())
    before = await retrieve(client, tenant, rid, "?options=sysAttrs")
    body = await problem(
        await patch(client, tenant, rid, {**fragment, "@context": CONTEXT}), 400, kind
    )
    assert member in body["detail"]
    assert await retrieve(client, tenant, rid, "?options=sysAttrs") == before


async def test_update_of_unknown_or_invalid_ids(client: Client, tenant: str) -> None:
    await create(client, tenant, registration())
    fragment = {"endpoint": "http://127.0.0.1:1/x", "@context": CONTEXT}
    await problem(await patch(client, tenant, "urn:reg:none", fragment), 404, "ResourceNotFound")
    await problem(await patch(client, tenant, "bad", fragment), 400, "BadRequestData")
    resp = await client.patch(
        f"{REGS}/urn:reg:none",
        data=b"{not json",
        headers={"NGSILD-Tenant": tenant, "Content-Type": "application/json"},
    )
    await problem(resp, 400, "InvalidRequest")


# ----------------------------------------------------------------------------- delete


async def test_delete(client: Client, tenant: str) -> None:
    rid = await create(client, tenant, registration())
    resp = await client.delete(f"{REGS}/{rid}", headers={"NGSILD-Tenant": tenant})
    assert resp.status == 204
    await problem(
        await client.get(f"{REGS}/{rid}", headers={"NGSILD-Tenant": tenant}),
        404,
        "ResourceNotFound",
    )
    resp = await client.delete(f"{REGS}/{rid}", headers={"NGSILD-Tenant": tenant})
    await problem(resp, 404, "ResourceNotFound")
    resp = await client.delete(f"{REGS}/bad", headers={"NGSILD-Tenant": tenant})
    await problem(resp, 400, "BadRequestData")


async def test_an_expired_registration_is_deleted(client: Client, tenant: str) -> None:
    """§5.9.2.4: "implementations shall delete the Registration when this point in time is
    reached" — 404 at once, and the sweep removes the row (the id can be registered again)."""
    soon = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rid = await create(client, tenant, registration(id="urn:reg:brief", expiresAt=soon))
    headers = {"NGSILD-Tenant": tenant}

    async def gone() -> bool:
        resp = await client.get(f"{REGS}/{rid}", headers=headers)
        return resp.status == 404

    async def registers_again() -> bool:
        # gone from the store too: the same id registers again once the sweep ran
        resp = await client.post(REGS, json=registration(id=rid), headers=ld(tenant))
        assert resp.status in (201, 409), await resp.text()
        return resp.status == 201

    await eventually(gone)
    await eventually(registers_again)
    assert "expiresAt" not in await retrieve(client, tenant, rid)  # the new one
