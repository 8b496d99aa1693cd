"""Distributed subscriptions (federation/distributed_subscriptions.py, subscription_relay.py).

Real city-os instances, each with its relay and notifier on a Kafka topic of its own (Tansu):
the prefecture's Subscription is copied to Saga City's broker, Saga City notifies the
prefecture, and the prefecture relays to the subscriber (a local HTTP receiver).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson

from city_os.api.ops import NOTIFIER
from city_os.api.remote_notify import DISTRIBUTED_SUBSCRIPTIONS
from city_os.devstack import TansuProcess
from tests.integration.auth.conftest import as_user
from tests.integration.auth.issuer import LocalIssuer
from tests.integration.events.support import create_topic, poll
from tests.integration.federation_ops.support import API, CONTEXT, Broker, brokers, shelter
from tests.integration.notifier.support import Client, Receiver, consuming, receiver

ID = "urn:ngsi-ld:Shelter:"
LD = {"Content-Type": "application/ld+json"}
NOTIFY = "/ngsi-ld/ex/remote-notify"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"


@asynccontextmanager
async def notifying(
    tansu: TansuProcess, *names: str, secured: dict[str, dict[str, Any]] | None = None
) -> AsyncIterator[dict[str, Broker]]:
    """Brokers with relay and notifier, each on its own topic and consumer group;
    ``secured``: the settings of those with authentication on, by name."""
    topics = {name: f"test-dsub-{name}-{uuid.uuid4().hex[:8]}" for name in names}
    for topic in topics.values():
        await create_topic(tansu.bootstrap, topic)

    def own(name: str) -> dict[str, Any]:
        more = (secured or {}).get(name, {})
        return {"kafka_topic": topics[name], "notifier_group_id": topics[name], **more}

    async with brokers(
        *names,
        settings_of=own,
        kafka_bootstrap=tansu.bootstrap,
        relay_poll_interval=0.2,
        kafka_publish_timeout=3.0,
        notifier_enabled=True,
        notifier_timeout=2.0,
        notifier_lease=3.0,
    ) as b:
        for broker in b.values():
            assert broker.app is not None
            await consuming(broker.app[NOTIFIER])
        yield b


async def _send(
    broker: Broker, method: str, path: str, body: Any = None, **auth: str
) -> tuple[int, Any]:
    headers = broker.headers(**(LD if body is not None else {"Link": broker.link()}), **auth)
    payload = None if body is None else {**body, "@context": CONTEXT}
    async with broker.http.request(
        method, f"{broker.url}{API}{path}", json=payload, headers=headers
    ) as resp:
        text = await resp.text()
        return resp.status, (await resp.json(content_type=None)) if text else None


async def _subscriptions(broker: Broker, kind: str = "subscriptions") -> list[dict[str, Any]]:
    status, body, _ = await broker.get(f"/{kind}")
    assert status == 200, body
    return list(body)


def _subscription(uri: str, **members: Any) -> dict[str, Any]:
    return {
        "type": "Subscription",
        "entities": [{"type": "Shelter"}],
        "notification": {"endpoint": {"uri": uri, "accept": "application/json"}},
        **members,
    }


async def _arrived(r: Receiver, sid: str, entity_id: str, attr: str, n: int) -> list[Any]:
    """The values of ``attr`` notified to ``r``, once there are ``n`` of them."""

    async def enough() -> bool:
        return len(_values(r, sid, entity_id, attr)) >= n

    await poll(enough)
    return _values(r, sid, entity_id, attr)


async def _settled(broker: Broker) -> None:
    assert broker.app is not None
    await broker.app[DISTRIBUTED_SUBSCRIPTIONS].settle()


def _values(r: Receiver, sid: str, entity_id: str, attr: str) -> list[Any]:
    return [
        e[attr]["value"]
        for got in r.received
        if got.body["subscriptionId"] == sid
        for e in got.body["data"]
        if e["id"] == entity_id and attr in e
    ]


async def test_copy_notified_relayed_updated_and_withdrawn(tansu: TansuProcess) -> None:
    async with notifying(tansu, "pref", "saga") as b, receiver() as r:
        pref, saga = b["pref"], b["saga"]
        await pref.register(saga)
        await saga.register(pref)  # A→B→A: the copy (localOnly) must not come back
        status, _ = await _send(
            pref, "POST", "/subscriptions", _subscription(r.url, q="capacity>10")
        )
        assert status == 201
        sid = (await _subscriptions(pref))[0]["id"]
        await _settled(pref)
        copies = await _subscriptions(saga)
        assert len(copies) == 1
        copy = copies[0]
        assert copy["id"] != sid and copy["q"] == "capacity>10" and copy["localOnly"] is True
        assert copy["notification"]["endpoint"]["uri"] == pref.url + NOTIFY
        assert r.url not in str(copy)
        assert [s["id"] for s in await _subscriptions(pref, "csourceSubscriptions")]
        await _settled(saga)
        assert [s["id"] for s in await _subscriptions(pref)] == [sid]  # not cascaded back

        # the source notifies the prefecture, which relays under its own subscription id
        await saga.create(shelter(ID + "a", capacity=5))  # fails q at the source
        await saga.create(shelter(ID + "a2", capacity=50))
        assert await _arrived(r, sid, ID + "a2", "capacity", 1) == [50]
        assert _values(r, sid, ID + "a", "capacity") == []
        assert all(copy["id"] not in str(got.body) for got in r.received)

        # an update is forwarded; the delete withdraws the copy and the watch
        status, _ = await _send(pref, "PATCH", f"/subscriptions/{sid}", {"q": "capacity>100"})
        assert status == 204
        await _settled(pref)
        assert [c["q"] for c in await _subscriptions(saga)] == ["capacity>100"]
        status, _ = await _send(pref, "DELETE", f"/subscriptions/{sid}")
        assert status == 204
        await _settled(pref)
        assert await _subscriptions(saga) == []
        assert await _subscriptions(pref, "csourceSubscriptions") == []


async def test_split_entities_merged_with_local_part_and_refiltered(tansu: TansuProcess) -> None:
    async with notifying(tansu, "pref", "saga") as b, receiver() as r:
        pref, saga = b["pref"], b["saga"]
        await pref.register(saga)
        body = _subscription(r.url, q='capacity>10;name=="hall"', splitEntities=True)
        assert (await _send(pref, "POST", "/subscriptions", body))[0] == 201
        sid = (await _subscriptions(pref))[0]["id"]
        await _settled(pref)
        (copy,) = await _subscriptions(saga)
        assert "q" not in copy and copy["splitEntities"] is True
        await pref.create(shelter(ID + "s", name="hall"))  # the local part q needs

        await saga.create(shelter(ID + "s", capacity=50))  # merged: passes
        await saga.create(shelter(ID + "t", capacity=50))  # no local name: dropped
        assert await _arrived(r, sid, ID + "s", "capacity", 1) == [50]
        status, _ = await _send(saga, "PATCH", f"/entities/{ID}s/attrs", {"capacity": 5})
        assert status == 204  # merged, fails capacity>10: dropped
        status, _ = await _send(saga, "PATCH", f"/entities/{ID}s/attrs", {"capacity": 60})
        assert status == 204
        assert await _arrived(r, sid, ID + "s", "capacity", 2) == [50, 60]
        assert _values(r, sid, ID + "s", "name") == ["hall", "hall"]
        await pref.create(shelter(ID + "t", name="hall"))
        status, _ = await _send(saga, "PATCH", f"/entities/{ID}t/attrs", {"capacity": 70})
        assert status == 204
        assert await _arrived(r, sid, ID + "t", "capacity", 1) == [70]


async def test_local_only_subscription_stays_here(tansu: TansuProcess) -> None:
    async with notifying(tansu, "pref", "saga") as b:
        pref, saga = b["pref"], b["saga"]
        await pref.register(saga)
        await saga.create(shelter(ID + "l", capacity=1))  # Saga City's tenant exists
        body = _subscription("http://127.0.0.1:9/notify", localOnly=True)
        assert (await _send(pref, "POST", "/subscriptions", body))[0] == 201
        await _settled(pref)
        assert await _subscriptions(saga) == []
        assert await _subscriptions(pref, "csourceSubscriptions") == []


async def test_bad_notifications_are_refused(client: Client, tenant: str) -> None:
    headers = {"NGSILD-Tenant": tenant, "Content-Type": "application/json"}
    cases = [
        ([1], 400, "BadRequestData"),
        ({"type": "Notification", "data": []}, 400, "BadRequestData"),
        ({"type": "Notification", "subscriptionId": "urn:x:1", "data": "x"}, 400, "BadRequestData"),
        ({"type": "Notification", "subscriptionId": "urn:x:unknown", "data": []}, 404,
         "ResourceNotFound"),
    ]  # fmt: skip
    for body, status, kind in cases:
        resp = await client.post(NOTIFY, json=body, headers=headers)
        got = await resp.json()
        assert resp.status == status and got["type"] == ERR + kind and got["detail"], got
    resp = await client.post(NOTIFY, data=b"{", headers=headers)
    assert resp.status == 400 and (await resp.json())["type"] == ERR + "InvalidRequest"
    resp = await client.post("/ngsi-ld/ex/csource-notify", json={}, headers=headers)
    got = await resp.json()
    assert resp.status == 400 and "subscription" in got["detail"], got


async def _sent(broker: Broker, sid: str, n: int) -> None:
    """Wait until subscription ``sid`` of ``broker`` has sent ``n`` notifications."""

    async def enough() -> bool:
        status, body, _ = await broker.get(f"/subscriptions/{sid}")
        return status == 200 and body.get("notification", {}).get("timesSent", 0) >= n

    await poll(enough)


async def _delivered(broker: Broker) -> None:
    """Nothing stored for delivery at ``broker`` is pending or in flight."""
    assert broker.app is not None
    notifier = broker.app[NOTIFIER]

    async def done() -> bool:
        pending = await notifier.store.pending(broker.tenant)
        return pending == 0 and notifier.dispatcher.in_flight() == 0

    await poll(done)


async def test_relayed_notifications_carry_only_what_the_owner_may_read(
    tansu: TansuProcess, issuer: LocalIssuer
) -> None:
    """Authentication on at the prefecture: the subscriber may read the /Saga scopes only, so of
    what Saga City notifies, entities outside them are not relayed (#10 on the relay path)."""
    settings = {"auth_enabled": True, "oidc_issuers": orjson.dumps([issuer.setting()]).decode()}
    async with notifying(tansu, "pref", "saga", secured={"pref": settings}) as b, receiver() as r:
        pref, saga = b["pref"], b["saga"]
        pref.auth = {"Authorization": as_user(issuer, pref.tenant, "admin")["Authorization"]}
        await pref.register(saga)
        grant = {
            "assignee": {"kind": "subject", "value": "watcher", "issuer": issuer.url},
            "action": "read",
            "target": {"scopes": ["/Saga/#"]},
        }
        url = f"{pref.url}/cityos/v1/permissions"
        async with pref.http.post(url, json=grant, headers=pref.headers()) as resp:
            assert resp.status == 201, await resp.text()
        watcher = as_user(issuer, pref.tenant, sub="watcher")["Authorization"]
        body = _subscription(r.url)
        assert (await _send(pref, "POST", "/subscriptions", body, Authorization=watcher))[0] == 201
        sid = (await _subscriptions(pref))[0]["id"]
        await _settled(pref)
        (copy,) = await _subscriptions(saga)
        for name, scope in (("f", "/Fukuoka"), ("k", "/Saga/Kase"), ("s", "/Saga")):
            await saga.create({**shelter(ID + name, capacity=1), "scope": scope})
        assert await _arrived(r, sid, ID + "s", "capacity", 1) == [1]
        assert await _arrived(r, sid, ID + "k", "capacity", 1) == [1]
        await _sent(saga, copy["id"], 3)  # the source notified the prefecture of all three
        await _delivered(pref)  # and the prefecture delivered all it relayed
        assert _values(r, sid, ID + "f", "capacity") == []  # outside /Saga: never relayed
