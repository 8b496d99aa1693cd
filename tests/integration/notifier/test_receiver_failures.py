"""Receivers that fail: a dead one gets everything once it is back, a hanging one holds up no
other, a refusing one is recorded in the subscription's status, and a cooldown drops."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from city_os.api.keys import POOL
from tests.integration.events.support import poll
from tests.integration.notifier.support import (
    API,
    Client,
    Receiver,
    hdr,
    receiver,
    settled,
    shelter,
    stack,
    subscribe,
    write,
)


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[Client]:
    # quick retries and a short receiver timeout keep these tests short
    async with stack(notifier_retry_max_delay=0.5, notifier_timeout=0.5) as c:
        yield c


def value(v: Any) -> dict[str, Any]:
    return {"type": "Property", "value": v}


async def set_capacity(client: Client, tenant: str, n: int, capacity: int) -> None:
    await write(
        client,
        "PATCH",
        f"/entities/urn:ngsi-ld:Shelter:{n}/attrs",
        tenant,
        {"capacity": value(capacity)},
    )


async def status(client: Client, tenant: str, sid: str) -> dict[str, Any]:
    resp = await client.get(f"{API}/subscriptions/{sid}", headers=hdr(tenant))
    assert resp.status == 200
    body: dict[str, Any] = (await resp.json())["notification"]
    return body


async def test_a_receiver_down_for_a_while_gets_everything_in_order(
    client: Client, tenant: str
) -> None:
    down = Receiver()  # not started: its port refuses connections
    sid = await subscribe(
        client,
        tenant,
        {"entities": [{"type": "Shelter"}], "notification": {"endpoint": {"uri": down.url}}},
    )
    for n in (1, 2):
        await write(client, "POST", "/entities", tenant, shelter(n, 0), status=201)
    for capacity in range(1, 6):
        for n in (1, 2):
            await set_capacity(client, tenant, n, capacity)
    failed = await status(client, tenant, sid)
    assert failed["status"] == "failed" and failed["timesFailed"] >= 1
    assert "lastFailure" in failed and "lastSuccess" not in failed
    await down.start()
    try:
        got = await down.wait_for(12)
        for n in (1, 2):
            eid = f"urn:ngsi-ld:Shelter:{n}"
            seen = [
                r.body["data"][0]["capacity"]["value"]
                for r in got
                if r.body["data"][0]["id"] == eid
            ]
            assert seen == [0, 1, 2, 3, 4, 5]  # every change, in change order
        await settled(client, tenant)
        assert len(down.received) == 12
        back = await status(client, tenant, sid)
        assert back["status"] == "ok" and "lastSuccess" in back
        assert back["timesSent"] == 12 + back["timesFailed"]
    finally:
        await down.stop()


async def test_a_hanging_receiver_holds_up_no_other(client: Client, tenant: str) -> None:
    async with receiver(hang=True) as stuck, receiver() as fine:
        for r in (stuck, fine):
            await subscribe(
                client,
                tenant,
                {"entities": [{"type": "Shelter"}], "notification": {"endpoint": {"uri": r.url}}},
            )
        await write(client, "POST", "/entities", tenant, shelter(1, 0), status=201)
        latencies = []
        for capacity in range(1, 21):
            written = time.time()
            await set_capacity(client, tenant, 1, capacity)
            arrived = await fine.wait_for(capacity + 1)
            latencies.append(arrived[-1].at - written)
        assert [r.body["data"][0]["capacity"]["value"] for r in fine.received] == list(range(21))
        # its first notification, retried after each timeout, keeps its id and holds its key
        assert len({r.body["id"] for r in stuck.received}) == 1
        # a generous bound for a shared CI machine; the target (50 ms p99) is measured in bench
        assert sorted(latencies)[-2] < 1.0, latencies


async def test_a_refusing_receiver_fails_for_good(client: Client, tenant: str) -> None:
    async with receiver(status=400) as refusing:
        sid = await subscribe(
            client,
            tenant,
            {
                "entities": [{"type": "Shelter"}],
                "notification": {"endpoint": {"uri": refusing.url}},
            },
        )
        await write(client, "POST", "/entities", tenant, shelter(1), status=201)
        await set_capacity(client, tenant, 1, 5)
        await settled(client, tenant)
        assert len(refusing.received) == 2  # no retries of a refused notification
        got = await status(client, tenant, sid)
        assert (got["status"], got["timesSent"], got["timesFailed"]) == ("failed", 2, 2)
        assert got["lastFailureReason"] == "HTTP 400"
        metrics = await (await client.get("/metrics")).text()
        failed = [
            m for m in metrics.splitlines() if m.startswith('cityos_subscriptions{status="failed"}')
        ]
        assert failed and float(failed[0].split()[-1]) >= 1, failed


async def test_retry_after_is_honoured(client: Client, tenant: str) -> None:
    """A 503 with Retry-After: the notification is tried again, not sooner than asked (the
    back-off alone would retry within 0.75 s here), with the same id."""
    async with receiver(status=503, headers={"Retry-After": "2"}) as busy:
        await subscribe(
            client,
            tenant,
            {"entities": [{"type": "Shelter"}], "notification": {"endpoint": {"uri": busy.url}}},
        )
        await write(client, "POST", "/entities", tenant, shelter(1), status=201)
        await busy.wait_for(1)
        busy.status, busy.headers = 200, {}
        first, second = (await busy.wait_for(2))[:2]
    assert first.body["id"] == second.body["id"]
    assert second.at - first.at >= 1.95, second.at - first.at


async def test_timeout_and_cooldown(client: Client, tenant: str) -> None:
    """A receiver slower than the endpoint's timeout fails; the endpoint then cools down: what
    is matched during the cooldown is not sent, what comes after is (§5.2.15)."""
    async with receiver(hang=True) as slow:
        endpoint = {"uri": slow.url, "timeout": 200, "cooldown": 1500}
        sid = await subscribe(
            client,
            tenant,
            {"entities": [{"type": "Shelter"}], "notification": {"endpoint": endpoint}},
        )
        await write(client, "POST", "/entities", tenant, shelter(1), status=201)

        async def states() -> list[str]:
            rows = await client.app[POOL].fetch(
                "SELECT state FROM cityos.notifications WHERE tenant = $1 ORDER BY seq", tenant
            )
            return [r["state"] for r in rows]

        async def failed() -> bool:
            return (await states())[:1] == ["failed"]

        await poll(failed, within=10)
        got = await status(client, tenant, sid)
        assert "no answer within 0.2 s" in got["lastFailureReason"]
        slow.hang = False
        await set_capacity(client, tenant, 1, 1)  # matched during the cooldown: not sent

        async def dropped() -> bool:
            return (await states())[1:] == ["dropped"]

        await poll(dropped, within=10)
        await set_capacity(client, tenant, 1, 2)  # after the cooldown: sent
        got_all = await slow.wait_for(2)
        assert got_all[-1].body["data"][0]["capacity"]["value"] == 2

        async def recorded() -> bool:  # finished deliveries are recorded in batches (batch.py)
            return await states() == ["failed", "dropped", "sent"]

        await poll(recorded, within=10)
        assert await states() == ["failed", "dropped", "sent"]


async def test_a_deleted_subscription_sends_no_more(client: Client, tenant: str) -> None:
    down = Receiver()
    sid = await subscribe(
        client,
        tenant,
        {"entities": [{"type": "Shelter"}], "notification": {"endpoint": {"uri": down.url}}},
    )
    await write(client, "POST", "/entities", tenant, shelter(1), status=201)

    async def stored() -> bool:
        return bool(
            await client.app[POOL].fetchval(
                "SELECT count(*) FROM cityos.notifications WHERE tenant = $1", tenant
            )
        )

    await poll(stored)  # matched, stored and retrying: the receiver is down
    await write(client, "DELETE", f"/subscriptions/{sid}", tenant)
    await down.start()
    try:
        await settled(client, tenant)
        assert down.received == []
        rows = await client.app[POOL].fetch(
            "SELECT state FROM cityos.notifications WHERE tenant = $1", tenant
        )
        assert [r["state"] for r in rows] == ["dropped"]
    finally:
        await down.stop()
