"""MQTT and Web Push subscriptions end to end: API → outbox → relay → Kafka → notifier → a
private Mosquitto / a local push service whose user agent decrypts the message; and the
endpoint members each channel needs, refused with a 400 naming them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest
from aiohttp.test_utils import TestServer

from city_os.api.ops import NOTIFIER
from city_os.devstack import TansuProcess
from tests.integration.events.support import poll
from tests.integration.notifier.mosquitto import Mosquitto
from tests.integration.notifier.support import (
    API,
    broker,
    hdr,
    settled,
    shelter,
    subscribe,
    write,
)
from tests.integration.notifier.webpush_service import PushService, UserAgent


async def _next_message(client: aiomqtt.Client, within: float = 30) -> Any:
    async with asyncio.timeout(within):
        async for msg in client.messages:
            assert isinstance(msg.payload, bytes)
            return orjson.loads(msg.payload)
    raise AssertionError("the MQTT subscription ended")


@pytest.mark.parametrize(
    "info",
    [
        [],
        [{"key": "MQTT-QoS", "value": "1"}, {"key": "MQTT-Version", "value": "mqtt3.1.1"}],
        [{"key": "MQTT-QoS", "value": "2"}, {"key": "MQTT-Version", "value": "mqtt5.0"}],
    ],
)
async def test_an_mqtt_subscription_publishes_the_spec_envelope(
    tansu: TansuProcess, tenant: str, tmp_path: Path, info: list[dict[str, str]]
) -> None:
    mosquitto = Mosquitto(tmp_path)
    await mosquitto.start()
    topic = f"city-os/{tenant}/shelters"
    endpoint: dict[str, Any] = {
        "uri": f"mqtt://user:secret@127.0.0.1:{mosquitto.port}/{topic}",
        "receiverInfo": [{"key": "X-Saga", "value": "ok"}],
    }
    if info:
        endpoint["notifierInfo"] = info
    try:
        async with (
            aiomqtt.Client("127.0.0.1", mosquitto.port) as listener,
            broker(tansu.bootstrap) as client,
        ):
            await listener.subscribe(topic, qos=2)
            sid = await subscribe(
                client,
                tenant,
                {"entities": [{"type": "Shelter"}], "notification": {"endpoint": endpoint}},
            )
            await write(client, "POST", "/entities", tenant, shelter(1), status=201)
            got = await _next_message(listener)
    finally:
        await mosquitto.stop()
    assert set(got) == {"metadata", "body"}
    assert got["metadata"]["Content-Type"] == "application/json"
    assert "json-ld#context" in got["metadata"]["Link"]
    assert got["metadata"]["X-Saga"] == "ok"
    assert got["metadata"]["NGSILD-Tenant"] == tenant
    body = got["body"]
    assert body["type"] == "Notification" and body["subscriptionId"] == sid
    assert body["data"][0]["id"] == "urn:ngsi-ld:Shelter:1"
    assert body["data"][0]["capacity"]["value"] == 100


async def test_a_web_push_subscription_reaches_the_user_agent_encrypted(
    tansu: TansuProcess, tenant: str
) -> None:
    push = PushService()
    server = TestServer(push.app())
    await server.start_server()
    push.origin = f"http://{server.host}:{server.port}"
    agent = UserAgent()
    endpoint = {
        "uri": f"{push.origin}/push/ua-1",
        "notifierInfo": [*agent.notifier_info(), {"key": "webpush.urgency", "value": "high"}],
    }
    try:
        async with broker(tansu.bootstrap) as client:
            sid = await subscribe(
                client,
                tenant,
                {"entities": [{"type": "Shelter"}], "notification": {"endpoint": endpoint}},
            )
            await write(client, "POST", "/entities", tenant, shelter(7), status=201)

            async def arrived() -> bool:
                return len(push.received) >= 1

            await poll(arrived, 30)
            public_key = await client.get("/cityos/v1/webpush/key")
            assert public_key.status == 200, await public_key.text()
            advertised = (await public_key.json())["publicKey"]
    finally:
        await server.close()
    message = push.received[0]
    assert message.headers["Urgency"] == "high"
    assert message.vapid_key == advertised  # browsers subscribed with this key accept it
    notification = orjson.loads(agent.decrypt(message.body))
    assert notification["subscriptionId"] == sid
    assert notification["data"][0]["id"] == "urn:ngsi-ld:Shelter:7"


@pytest.mark.parametrize("answer", [410, 404])
async def test_a_push_subscription_the_user_agent_ended_pauses_the_subscription(
    tansu: TansuProcess, tenant: str, answer: int
) -> None:
    """RFC 8030 §7.3: 404/410 from the push service — the subscription is paused (nothing more
    is sent to it), saying why; re-activated, it notifies again."""
    push = PushService()
    push.status = answer
    server = TestServer(push.app())
    await server.start_server()
    push.origin = f"http://{server.host}:{server.port}"
    endpoint = {"uri": f"{push.origin}/push/ua-1", "notifierInfo": UserAgent().notifier_info()}
    try:
        async with broker(tansu.bootstrap) as client:
            sid = await subscribe(
                client,
                tenant,
                {"entities": [{"type": "Shelter"}], "notification": {"endpoint": endpoint}},
            )
            await write(client, "POST", "/entities", tenant, shelter(1), status=201)
            got: dict[str, Any] = {}

            async def paused() -> bool:
                resp = await client.get(f"{API}/subscriptions/{sid}", headers=hdr(tenant))
                got.update(await resp.json())
                return got.get("status") == "paused"

            await poll(paused, 30)
            assert got["isActive"] is False
            assert str(answer) in got["notification"]["lastFailureReason"]
            assert "paused" in got["notification"]["lastFailureReason"]

            async def indexed_paused() -> bool:  # every replica's index learns of it
                sub = client.app[NOTIFIER].index.get((tenant, sid))
                return sub is not None and not sub.active

            await poll(indexed_paused, 30)
            await write(client, "POST", "/entities", tenant, shelter(2), status=201)
            await settled(client, tenant)
            assert len(push.received) == 1  # nothing sent while paused

            push.status = 201  # the app subscribed again: the owner re-activates it
            await write(client, "PATCH", f"/subscriptions/{sid}", tenant, {"isActive": True})
            await write(client, "POST", "/entities", tenant, shelter(3), status=201)

            async def delivered() -> bool:
                return len(push.received) >= 2

            await poll(delivered, 30)
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("endpoint", "named"),
    [
        ({"uri": "mqtt://127.0.0.1/a/+/b"}, "notification.endpoint.uri"),
        (
            {"uri": "mqtt://127.0.0.1/t", "notifierInfo": [{"key": "MQTT-QoS", "value": "3"}]},
            "MQTT-QoS",
        ),
        (
            {
                "uri": "mqtt://127.0.0.1/t",
                "notifierInfo": [{"key": "MQTT-Version", "value": "mqtt2"}],
            },
            "MQTT-Version",
        ),
        (
            {
                "uri": "https://push.example/ua",
                "notifierInfo": [{"key": "webpush.p256dh", "value": "AAAA"}],
            },
            "webpush.p256dh",
        ),
        ({"uri": "urn:city-os:other"}, "notification.endpoint.uri"),
    ],
)
async def test_an_endpoint_unfit_for_its_channel_is_refused(
    tansu: TansuProcess, tenant: str, endpoint: dict[str, Any], named: str
) -> None:
    async with broker(tansu.bootstrap) as client:
        body = {
            "type": "Subscription",
            "entities": [{"type": "Shelter"}],
            "notification": {"endpoint": endpoint},
        }
        resp = await client.post(f"{API}/subscriptions", json=body, headers=hdr(tenant))
        problem = await resp.json()
        assert resp.status == 400, problem
        assert named in problem["detail"]
        listed = await client.get(f"{API}/subscriptions", headers=hdr(tenant))
        assert listed.status in (200, 404)
        if listed.status == 200:
            assert await listed.json() == []
