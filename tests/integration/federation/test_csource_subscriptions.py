"""/csourceSubscriptions (§5.11): the API (its own kind of subscription, apart from entity
subscriptions) and the CSourceNotifications of registration changes, through the real relay,
Kafka protocol (Tansu) and notifier to a local HTTP receiver."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from city_os.devstack import TansuProcess
from tests.integration.federation.support import (
    CONTEXT,
    ENDPOINT,
    EX,
    REGS,
    Client,
    create,
    ld,
    problem,
    registration,
)
from tests.integration.notifier.support import broker, receiver

SUBS = "/ngsi-ld/v1/csourceSubscriptions"


def subscription(uri: str = "http://127.0.0.1:9/notify", **members: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "Subscription",
        "entities": [{"type": "Shelter"}],
        "notification": {"endpoint": {"uri": uri, "accept": "application/json"}},
        "@context": CONTEXT,
    }
    body.update(members)
    return {k: v for k, v in body.items() if v is not None}


async def subscribe(client: Client, tenant: str, body: dict[str, Any]) -> str:
    resp = await client.post(SUBS, json=body, headers=ld(tenant))
    assert resp.status == 201, await resp.text()
    return resp.headers["Location"].rsplit("/", 1)[1]


async def test_api_round_trip_apart_from_entity_subscriptions(client: Client, tenant: str) -> None:
    temporal = {"timerel": "after", "timeAt": "2020-06-01T22:07:00Z", "timeproperty": "createdAt"}
    sid = await subscribe(client, tenant, subscription(id="urn:sub:c1", temporalQ=temporal))
    resp = await client.get(f"{SUBS}/{sid}", headers={"NGSILD-Tenant": tenant})
    got = await resp.json()
    assert got == {
        "id": sid,
        "type": "Subscription",
        "entities": [{"type": EX + "Shelter"}],
        "notification": {
            "endpoint": {"uri": "http://127.0.0.1:9/notify", "accept": "application/json"}
        },
        "status": "active",
        "temporalQ": temporal,
    }
    # the entity subscription API does not see it, nor the reverse
    headers = {"NGSILD-Tenant": tenant}
    resp = await client.get(f"/ngsi-ld/v1/subscriptions/{sid}", headers=headers)
    await problem(resp, 404, "ResourceNotFound")
    assert await (await client.get("/ngsi-ld/v1/subscriptions", headers=headers)).json() == []
    resp = await client.delete(f"/ngsi-ld/v1/subscriptions/{sid}", headers=headers)
    await problem(resp, 404, "ResourceNotFound")
    listed = await (await client.get(SUBS, headers=headers)).json()
    assert [s["id"] for s in listed] == [sid]
    # update, then delete
    resp = await client.patch(
        f"{SUBS}/{sid}", json={"temporalQ": None, "isActive": False, "@context": CONTEXT},
        headers=ld(tenant),
    )  # fmt: skip
    assert resp.status == 204, await resp.text()
    got = await (await client.get(f"{SUBS}/{sid}", headers=headers)).json()
    assert "temporalQ" not in got and got["status"] == "paused"
    assert (await client.delete(f"{SUBS}/{sid}", headers=headers)).status == 204
    await problem(await client.get(f"{SUBS}/{sid}", headers=headers), 404, "ResourceNotFound")


@pytest.mark.parametrize(
    ("members", "named"),
    [
        ({"temporalQ": {"timerel": "before"}}, "temporalQ"),
        ({"temporalQ": {"timerel": "whenever", "timeAt": "2020-01-01T00:00:00Z"}}, "temporalQ"),
        ({"temporalQ": "yesterday"}, "temporalQ"),
        ({"temporalQ": {"timerel": "before", "timeAt": "2020-01-01T00:00:00Z", "x": 1}}, "x"),
        ({"notification": None}, "notification"),
        ({"type": "Registration"}, "type"),
        ({"q": "(invalid"}, "q"),
        ({"watchedAttributes": []}, "watchedAttributes"),
        ({"expiresAt": "2020-01-01T00:00:00Z"}, "expiresAt"),
    ],
)
async def test_bad_csource_subscriptions(
    client: Client, tenant: str, members: dict[str, Any], named: str
) -> None:
    body = {**subscription(), **members}
    body = {k: v for k, v in body.items() if v is not None}
    resp = await client.post(SUBS, json=body, headers=ld(tenant))
    assert named in (await problem(resp, 400, "BadRequestData"))["detail"]


async def test_notifications_of_registration_changes(tansu: TansuProcess, tenant: str) -> None:
    async with broker(tansu.bootstrap) as client, receiver() as r:
        info = [
            {"entities": [{"type": "Shelter"}], "propertyNames": ["capacity"]},
            {"entities": [{"type": "Vehicle"}]},
        ]
        rid = await create(client, tenant, registration(id="urn:reg:n1", information=info))
        sid = await subscribe(
            client, tenant, subscription(r.to("s"), id=f"urn:sub:{uuid.uuid4().hex}")
        )
        first = (await r.wait_of("s", 1))[0]  # initially: what matches now
        assert first["type"] == "ContextSourceNotification" and first["subscriptionId"] == sid
        assert first["triggerReason"] == "newlyMatching"
        assert [d["id"] for d in first["data"]] == [rid]
        # only the matching RegistrationInfo, in the subscription's terms
        assert first["data"][0]["information"] == [
            {"entities": [{"type": "Shelter"}], "propertyNames": ["capacity"]}
        ]
        resp = await client.patch(
            f"{REGS}/{rid}", json={"endpoint": "http://127.0.0.1:18073/x", "@context": CONTEXT},
            headers=ld(tenant),
        )  # fmt: skip
        assert resp.status == 204
        second = (await r.wait_of("s", 2))[1]
        assert second["triggerReason"] == "updated"
        assert second["data"][0]["endpoint"] == "http://127.0.0.1:18073/x"
        resp = await client.patch(
            f"{REGS}/{rid}",
            json={"information": [{"entities": [{"type": "Vehicle"}]}], "@context": CONTEXT},
            headers=ld(tenant),
        )
        assert resp.status == 204
        third = (await r.wait_of("s", 3))[2]
        assert third["triggerReason"] == "noLongerMatching"
        # a registration it does not select: nothing; a new one it selects: newlyMatching
        await create(
            client, tenant, registration(information=[{"entities": [{"type": "Vehicle"}]}])
        )
        other = await create(client, tenant, registration(id="urn:reg:n2"))
        fourth = (await r.wait_of("s", 4))[3]
        assert fourth["triggerReason"] == "newlyMatching" and fourth["data"][0]["id"] == other
        resp = await client.delete(f"{REGS}/{other}", headers={"NGSILD-Tenant": tenant})
        assert resp.status == 204
        fifth = (await r.wait_of("s", 5))[4]
        assert fifth["triggerReason"] == "noLongerMatching" and fifth["data"][0]["id"] == other
        assert len({b["id"] for b in r.of("s")}) == 5
        # an update of the subscription: what it selects now, newlyMatching
        resp = await client.patch(
            f"{SUBS}/{sid}", json={"entities": [{"type": "Vehicle"}], "@context": CONTEXT},
            headers=ld(tenant),
        )  # fmt: skip
        assert resp.status == 204, await resp.text()
        sixth = (await r.wait_of("s", 6))[5]
        assert sixth["triggerReason"] == "newlyMatching"
        assert len(sixth["data"]) == 2 and rid in {d["id"] for d in sixth["data"]}
        # the delivery status is the notifier's, as for entity subscriptions
        got = await (await client.get(f"{SUBS}/{sid}", headers={"NGSILD-Tenant": tenant})).json()
        assert got["notification"]["timesSent"] >= 1
        assert got["notification"]["status"] == "ok"
        assert ENDPOINT  # the default endpoint of the registrations above


async def test_bad_updates(client: Client, tenant: str) -> None:
    sid = await subscribe(client, tenant, subscription())
    resp = await client.patch(
        f"{SUBS}/{sid}", json={"type": None, "@context": CONTEXT}, headers=ld(tenant)
    )
    assert "type" in (await problem(resp, 400, "BadRequestData"))["detail"]
    # a body without any Content-Type: not JSON is InvalidRequest, JSON is 415
    untyped = {"headers": {"NGSILD-Tenant": tenant}, "skip_auto_headers": ["Content-Type"]}
    resp = await client.patch(f"{SUBS}/{sid}", data=b'{"a":,}', **untyped)
    await problem(resp, 400, "InvalidRequest")
    resp = await client.patch(f"{SUBS}/{sid}", data=b"{}", **untyped)
    await problem(resp, 415, "UnsupportedMediaType")
