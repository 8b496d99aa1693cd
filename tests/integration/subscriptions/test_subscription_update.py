"""Update Subscription (§5.8.2) and bad input: members replaced, null removes, status moves as
§5.8.2.4 says, and a refused request stores nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from city_os.app import create_app
from tests.conftest import test_settings as settings_for_tests
from tests.integration.events.support import poll
from tests.integration.subscriptions.support import (
    ENDPOINT,
    EX,
    LINK,
    SUBS,
    Client,
    create,
    hdr,
    host_context,
    ld,
    problem,
    retrieve,
    subscription,
)


def at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


async def patch(client: Client, tenant: str, sid: str, fragment: Any, **headers: str) -> Any:
    return await client.patch(f"{SUBS}/{sid}", json=fragment, headers=hdr(tenant, **headers))


async def test_members_are_replaced_and_null_removes(client: Client, tenant: str) -> None:
    sid = await create(client, tenant, subscription(q="capacity>1", throttling=10))
    new = {"format": "keyValues", "endpoint": {"uri": "http://127.0.0.1:18062/other"}}
    fragment = {"type": "Subscription", "notification": new, "q": None, "description": "d"}
    resp = await patch(client, tenant, sid, fragment)
    assert resp.status == 204, await resp.text()
    got = await retrieve(client, tenant, sid)
    assert got["notification"] == new and got["description"] == "d"
    assert "q" not in got and got["throttling"] == 10


async def test_merge_patch_and_the_fragments_context(client: Client, tenant: str) -> None:
    sid = await create(client, tenant, subscription())
    ctx_url = await host_context(client, tenant)
    headers = {"Content-Type": "application/merge-patch+json", "Link": LINK.format(ctx_url)}
    resp = await patch(client, tenant, sid, {"entities": [{"type": "Tower"}]}, **headers)
    assert resp.status == 204, await resp.text()
    assert (await retrieve(client, tenant, sid))["entities"] == [{"type": EX + "Tower"}]
    linked = await retrieve(client, tenant, sid, Link=LINK.format(ctx_url))
    assert linked["entities"] == [{"type": "Tower"}] and linked["jsonldContext"] == ctx_url


@pytest.mark.parametrize(
    ("fragment", "named"),
    [
        ({"notification": {"format": "keyValues"}}, "endpoint"),
        ({"notification": {"format": "keyValues", "endpoint": None}}, "endpoint"),
        ({"notification": None}, "notification"),
        ({"entities": None}, "entities or watchedAttributes"),
        ({"expiresAt": "2020-08-01T22:07:00Z"}, "expiresAt"),
        ({"timeInterval": 5, "throttling": 1}, "timeInterval"),
        ({"throttling": 0}, "throttling"),
        ({"colour": "red"}, "colour"),
        ({"id": "urn:ngsi-ld:Subscription:other"}, "differs"),
    ],
)
async def test_bad_fragments_change_nothing(
    client: Client, tenant: str, fragment: dict[str, Any], named: str
) -> None:
    sid = await create(client, tenant, subscription())
    before = await retrieve(client, tenant, sid, "?options=sysAttrs")
    body = await problem(await patch(client, tenant, sid, fragment), 400, "BadRequestData")
    assert named in body["detail"]
    assert await retrieve(client, tenant, sid, "?options=sysAttrs") == before


async def test_update_errors(client: Client, tenant: str) -> None:
    await create(client, tenant, subscription())
    unknown = await patch(client, tenant, "urn:ngsi-ld:Subscription:unknown", {"isActive": True})
    await problem(unknown, 404, "ResourceNotFound")
    await problem(
        await patch(client, tenant, "InvalidUri", {"isActive": True}), 400, "BadRequestData"
    )
    resp = await client.patch(SUBS + "/", json={"isActive": True}, headers=hdr(tenant))
    assert resp.status == 405
    xml = await client.patch(
        f"{SUBS}/urn:ngsi-ld:Subscription:x",
        data=b"<a/>",
        headers={"NGSILD-Tenant": tenant, "Content-Type": "application/xml"},
    )
    await problem(xml, 415, "UnsupportedMediaType")


async def test_status_follows_is_active(client: Client, tenant: str) -> None:
    sid = await create(client, tenant, subscription(isActive=False))
    assert (await retrieve(client, tenant, sid))["status"] == "paused"
    assert (await patch(client, tenant, sid, {"isActive": True})).status == 204
    assert (await retrieve(client, tenant, sid))["status"] == "active"
    assert (await patch(client, tenant, sid, {"isActive": False})).status == 204
    assert (await retrieve(client, tenant, sid))["status"] == "paused"
    resumed = {"isActive": True, "expiresAt": at(3600)}
    assert (await patch(client, tenant, sid, resumed)).status == 204
    assert (await retrieve(client, tenant, sid))["status"] == "active"


async def test_expired_and_renewed(client: Client, tenant: str) -> None:
    sid = await create(client, tenant, subscription(expiresAt=at(0.3)))

    async def expired() -> bool:
        return bool((await retrieve(client, tenant, sid))["status"] == "expired")

    await poll(expired, within=10)
    assert (await patch(client, tenant, sid, {"isActive": False})).status == 204
    assert await expired()  # an expired subscription stays expired
    # §5.8.2.4: only expiresAt, in the future, of an expired subscription: active again
    assert (await patch(client, tenant, sid, {"expiresAt": at(3600)})).status == 204
    got = await retrieve(client, tenant, sid)
    assert got["status"] == "active" and "isActive" not in got


async def test_modified_at_moves(client: Client, tenant: str) -> None:
    sid = await create(client, tenant, subscription())
    before = await retrieve(client, tenant, sid, "?options=sysAttrs")
    assert (await patch(client, tenant, sid, {"subscriptionName": "x"})).status == 204
    after = await retrieve(client, tenant, sid, "?options=sysAttrs")
    assert after["createdAt"] == before["createdAt"] < after["modifiedAt"]


# (a member of the Subscription and a bad value of it)
BAD_CREATES: list[tuple[str, Any]] = [
    ("entities", []),
    ("watchedAttributes", []),
    ("throttling", -1),
    ("q", "((capacity"),
    ("geoQ", {"georel": "within", "geometry": "Point", "coordinates": "[x]"}),
    ("expiresAt", "2000-01-01T00:00:00Z"),
    ("notification", {"endpoint": {"uri": "notify"}}),
    ("notification", {"endpoint": {"uri": "gopher://h/x"}}),
    ("colour", "red"),
]


@pytest.mark.parametrize(("member", "value"), BAD_CREATES)
async def test_bad_creates_store_nothing(
    client: Client, tenant: str, member: str, value: Any
) -> None:
    await create(client, tenant, subscription())
    resp = await client.post(
        SUBS,
        json=subscription(**{member: value}),
        headers=ld(tenant),
    )
    body = await problem(resp, 400, "BadRequestData")
    assert member in body["detail"]
    listing = await client.get(SUBS, headers=hdr(tenant))
    assert len(await listing.json()) == 1


async def test_throttling_with_time_interval_is_refused(client: Client, tenant: str) -> None:
    resp = await client.post(
        SUBS,
        json=subscription(timeInterval=10, throttling=30),
        headers=ld(tenant),
    )
    await problem(resp, 400, "BadRequestData")


async def test_invalid_json_and_empty_body(client: Client, tenant: str) -> None:
    bad = await client.post(SUBS, data=b'{"id": oops}', headers=hdr(tenant))
    await problem(bad, 400, "InvalidRequest")
    empty = await client.post(SUBS, json={}, headers=hdr(tenant))
    await problem(empty, 400, "BadRequestData")
    endpoint_only = {"type": "Subscription", "notification": {"endpoint": {"uri": ENDPOINT}}}
    await problem(
        await client.post(SUBS, json=endpoint_only, headers=hdr(tenant)), 400, "BadRequestData"
    )


@pytest.mark.parametrize(
    ("members", "named"),
    [
        ({"entities": [{"type": "Shelter", "idPattern": "(a)\\1"}]}, "entities: idPattern"),
        ({"q": 'name~="(?=x)y"'}, "q"),
    ],
)
async def test_patterns_the_notifier_cannot_run_are_refused(
    client: Client, tenant: str, members: dict[str, Any], named: str
) -> None:
    resp = await client.post(SUBS, json=subscription(**members), headers=ld(tenant))
    body = await problem(resp, 400, "BadRequestData")
    assert body["detail"].startswith(named), body


async def test_the_outbound_policy_applies_to_endpoints(tenant: str) -> None:
    """A literal endpoint address the outbound policy refuses (loopback, private, metadata) is
    a 400 (auth/network.py); a host name is resolved, and refused, at delivery
    (tests/integration/notifier/test_http_client.py)."""
    app = create_app(settings_for_tests(outbound_allow=""))
    async with TestClient(TestServer(app)) as strict:
        refused = ("127.0.0.1:18061", "[::1]:18061", "10.1.2.3", "169.254.169.254")
        for uri in (f"http://{host}/notify" for host in refused):
            body = subscription(notification={"endpoint": {"uri": uri}})
            resp = await strict.post(SUBS, json=body, headers=ld(tenant))
            problem_body = await problem(resp, 400, "BadRequestData")
            assert problem_body["detail"].startswith("notification.endpoint.uri"), problem_body
        public = subscription(notification={"endpoint": {"uri": "http://203.0.113.7/notify"}})
        assert (await strict.post(SUBS, json=public, headers=ld(tenant))).status == 400
        named = subscription(notification={"endpoint": {"uri": "http://receiver.example/n"}})
        assert (await strict.post(SUBS, json=named, headers=ld(tenant))).status == 201


@pytest.mark.parametrize(
    "body",
    [
        {
            "type": "Subscription",
            "entities": [{"type": "Shelter"}],
            "notification": {"endpoint": {"uri": "http://127.0.0.1/\u0000"}},
        },
        {
            "type": "Subscription",
            "entities": [{"type": "Shelter\u0000"}],
            "notification": {"endpoint": {"uri": ENDPOINT}},
        },
        {
            "type": "Subscription",
            "entities": [{"type": "Shelter"}],
            "q": 'name=="\u0000"',
            "notification": {"endpoint": {"uri": ENDPOINT}},
        },
        {
            "type": "Subscription",
            "entities": [{"type": "Shelter"}],
            "timeInterval": 1e300,
            "notification": {"endpoint": {"uri": ENDPOINT}},
        },
        {
            "type": "Subscription",
            "entities": [{"type": "Shelter"}],
            "expiresAt": "9999-99-99T00:00Z",
            "notification": {"endpoint": {"uri": ENDPOINT}},
        },
        {
            "type": "Subscription",
            "entities": "Shelter",
            "notification": {"endpoint": {"uri": ENDPOINT}},
        },
        {
            "type": "Subscription",
            "entities": [{"type": "Shelter"}],
            "notification": {"endpoint": ["http://x"]},
        },
    ],
)
async def test_hostile_input_is_a_400_not_a_500(
    client: Client, tenant: str, body: dict[str, Any]
) -> None:
    resp = await client.post(SUBS, json=body, headers=hdr(tenant))
    await problem(resp, 400, "BadRequestData")
