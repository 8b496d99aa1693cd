"""MQTT channel: the spec's envelope published to real Mosquitto brokers, at every QoS and
version, with credentials from the URI, over TLS, and across a broker restart."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import orjson
import pytest

from city_os.devstack import free_port
from city_os.errors import BadRequestData
from city_os.notifier.channels.mqtt import MqttConnections, message, mqtt_target
from tests.integration.notifier.mosquitto import Mosquitto, make_certificates

NOTIFICATION = {"id": "urn:ngsi-ld:Notification:1", "type": "Notification", "data": [{"id": "x"}]}
LINK = '<https://example.org/ctx.jsonld>; rel="http://www.w3.org/ns/json-ld#context"'


@pytest.fixture
async def connections() -> AsyncIterator[MqttConnections]:
    pool = MqttConnections()
    try:
        yield pool
    finally:
        await pool.close()


async def _receive(
    port: int, topic: str, tls: ssl.SSLContext | None = None
) -> tuple[aiomqtt.Client, asyncio.Queue[bytes]]:
    client = aiomqtt.Client("127.0.0.1", port, tls_context=tls)
    await client.__aenter__()
    await client.subscribe(topic, qos=2)
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    async def pump() -> None:
        async for msg in client.messages:
            assert isinstance(msg.payload, bytes)
            await queue.put(msg.payload)

    task = asyncio.create_task(pump())
    client._city_os_pump = task  # type: ignore[attr-defined]  # kept alive with the client
    return client, queue


async def _close(client: aiomqtt.Client) -> None:
    client._city_os_pump.cancel()  # type: ignore[attr-defined]
    await client.__aexit__(None, None, None)


@pytest.mark.parametrize(
    ("info", "userinfo"),
    [
        ({}, ""),
        ({"MQTT-QoS": "1"}, "user@"),
        ({"MQTT-QoS": "2", "MQTT-Version": "mqtt3.1.1"}, "user:secret@"),
        ({"MQTT-Version": "mqtt5.0"}, ""),
    ],
)
async def test_the_broker_receives_the_spec_envelope(
    connections: MqttConnections, info: dict[str, str], userinfo: str
) -> None:
    topic = f"city-os/test/{uuid.uuid4().hex}"
    client, queue = await _receive(1883, topic)
    try:
        target = mqtt_target(f"mqtt://{userinfo}127.0.0.1/{topic}", info)
        payload = message(NOTIFICATION, "application/json", LINK, {"X-Saga": "ok"})
        result = await connections.publish(target, payload, within=10)
        assert result.outcome == "delivered", result.reason
        received = orjson.loads(await asyncio.wait_for(queue.get(), 10))
    finally:
        await _close(client)
    assert received == {
        "metadata": {"X-Saga": "ok", "Content-Type": "application/json", "Link": LINK},
        "body": NOTIFICATION,
    }


async def test_a_restarted_broker_is_reconnected_to(
    connections: MqttConnections, tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path)
    await broker.start()
    topic = "city-os/restart"
    target = mqtt_target(f"mqtt://127.0.0.1:{broker.port}/{topic}", {"MQTT-QoS": "1"})
    try:
        assert (await connections.publish(target, b"{}", within=10)).outcome == "delivered"
        await broker.stop()
        down = await connections.publish(target, b"{}", within=3)
        assert down.outcome == "retry"
        assert str(broker.port) in down.reason
        await broker.start()
        client, queue = await _receive(broker.port, topic)
        try:
            result = await connections.publish(target, b'{"after": "restart"}', within=10)
            assert result.outcome == "delivered", result.reason
            assert await asyncio.wait_for(queue.get(), 10) == b'{"after": "restart"}'
        finally:
            await _close(client)
    finally:
        await broker.stop()


async def test_mqtts_verifies_the_broker_certificate(tmp_path: Path) -> None:
    certificates = make_certificates(tmp_path)
    broker = Mosquitto(tmp_path, certificates)
    await broker.start()
    trusted = MqttConnections(lambda: ssl.create_default_context(cafile=str(certificates.ca)))
    untrusted = MqttConnections()  # the system CAs do not know the test CA
    topic = "city-os/tls"
    target = mqtt_target(f"mqtts://127.0.0.1:{broker.port}/{topic}", {"MQTT-QoS": "1"})
    client, queue = await _receive(
        broker.port, topic, ssl.create_default_context(cafile=str(certificates.ca))
    )
    try:
        refused = await untrusted.publish(target, b"{}", within=5)
        assert refused.outcome == "retry"
        assert "CERTIFICATE_VERIFY_FAILED" in refused.reason or "certificate" in refused.reason
        result = await trusted.publish(target, b'{"over": "tls"}', within=10)
        assert result.outcome == "delivered", result.reason
        assert await asyncio.wait_for(queue.get(), 10) == b'{"over": "tls"}'
    finally:
        await _close(client)
        await trusted.close()
        await untrusted.close()
        await broker.stop()


async def test_an_unreachable_broker_is_a_transient_failure(connections: MqttConnections) -> None:
    target = mqtt_target(f"mqtt://127.0.0.1:{free_port()}/t", {})
    result = await connections.publish(target, b"{}", within=3)
    assert result.outcome == "retry"
    assert "127.0.0.1" in result.reason


@pytest.mark.parametrize(
    ("uri", "info", "named"),
    [
        ("mqtt://127.0.0.1", {}, "one MQTT topic"),
        ("mqtt://127.0.0.1/a/+/b", {}, "wildcards"),
        ("mqtt://127.0.0.1/a/#", {}, "wildcards"),
        ("mqtt://127.0.0.1:99999/a", {}, "port"),
        ("mqtt://127.0.0.1/a", {"MQTT-QoS": "3"}, "MQTT-QoS"),
        ("mqtt://127.0.0.1/a", {"MQTT-QoS": "１"}, "MQTT-QoS"),
        ("mqtt://127.0.0.1/a", {"MQTT-Version": "mqtt3.1"}, "MQTT-Version"),
        ("http://127.0.0.1/a", {}, "mqtt"),
    ],
)
def test_a_malformed_mqtt_endpoint_is_refused_naming_the_member(
    uri: str, info: dict[str, str], named: str
) -> None:
    with pytest.raises(BadRequestData, match=named):
        mqtt_target(uri, info)


def test_defaults_and_credentials_come_from_the_uri() -> None:
    target = mqtt_target("mqtts://ann%40saga:p%3Ass@broker.example/city/alerts", {})
    assert (target.host, target.port, target.tls) == ("broker.example", 8883, True)
    assert (target.username, target.password) == ("ann@saga", "p:ss")
    assert (target.topic, target.qos, target.version) == ("city/alerts", 0, "mqtt5.0")
