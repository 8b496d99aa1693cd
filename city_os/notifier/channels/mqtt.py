"""MQTT delivery (GS CIM 009 §5.8.6 / §7.x MQTT binding): ``mqtt://`` and ``mqtts://`` endpoints.

Layer: notifier/ (a delivery channel). The endpoint URI names the broker, the credentials and the
topic: ``mqtt[s]://[user[:password]@]host[:port]/topic/levels`` (ports 1883 and 8883 by default).
``notifierInfo`` may set ``MQTT-Version`` (``mqtt3.1.1`` or ``mqtt5.0``, the default) and
``MQTT-QoS`` (0, the default, 1 or 2). The message is the spec's envelope,
``{"metadata": {Content-Type, Link, receiverInfo…}, "body": <Notification>}``.

Connections are long-lived, one per broker, credentials and protocol version (aiomqtt over
paho-mqtt), opened on first use and re-opened after a failure; publishing waits for the broker's
acknowledgement at QoS 1 and 2, so a delivery counts only once the broker holds the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import unquote, urlsplit

import aiomqtt
import orjson

from city_os.auth.network import OutboundPolicy, refused
from city_os.errors import BadRequestData, NgsiLdError
from city_os.notifier.channels import Delivery
from city_os.notifier.channels import Outcome as ChannelOutcome

SCHEMES: Final = frozenset({"mqtt", "mqtts"})
KEY_VERSION: Final = "MQTT-Version"
KEY_QOS: Final = "MQTT-QoS"
# notifierInfo MQTT-Envelope "none": publish the notification body as it is, without the spec's
# {metadata, body} envelope (NGSIv2 subscriptions: Orion publishes the bare notification).
KEY_ENVELOPE: Final = "MQTT-Envelope"
VERSIONS: Final = {"mqtt3.1.1": aiomqtt.ProtocolVersion.V311, "mqtt5.0": aiomqtt.ProtocolVersion.V5}
DEFAULT_VERSION: Final = "mqtt5.0"
_TOPIC_FORBIDDEN: Final = frozenset("+#\x00")


@dataclass(frozen=True, slots=True)
class MqttTarget:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    topic: str
    qos: int = 0
    version: str = DEFAULT_VERSION

    @property
    def broker(self) -> tuple[str, int, bool, str | None, str | None, str]:
        """What one connection serves: every topic of one broker, login and version."""
        return (self.host, self.port, self.tls, self.username, self.password, self.version)


def is_mqtt(uri: str) -> bool:
    return urlsplit(uri).scheme in SCHEMES


def mqtt_target(uri: str, notifier_info: Mapping[str, str]) -> MqttTarget:
    """The MQTT target of an endpoint; BadRequestData naming what is wrong (checked when the
    subscription is created, so delivery never meets a malformed endpoint)."""
    parts = urlsplit(uri)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise BadRequestData(
            f"notification.endpoint.uri {uri!r} is not an mqtt(s)://host/topic URI"
        )
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError:
        raise BadRequestData(f"notification.endpoint.uri {uri!r} has an invalid port") from None
    topic = unquote(parts.path.removeprefix("/"))
    if not topic or _TOPIC_FORBIDDEN & set(topic) or parts.query or "#" in uri:
        raise BadRequestData(
            f"notification.endpoint.uri {uri!r} must name one MQTT topic (no wildcards + or #,"
            " no query or fragment)"
        )
    version = notifier_info.get(KEY_VERSION, DEFAULT_VERSION)
    if version not in VERSIONS:
        raise BadRequestData(
            f"notification.endpoint.notifierInfo {KEY_VERSION} must be mqtt3.1.1 or mqtt5.0,"
            f" not {version!r}"
        )
    raw_qos = notifier_info.get(KEY_QOS, "0")
    if raw_qos not in ("0", "1", "2"):
        raise BadRequestData(
            f"notification.endpoint.notifierInfo {KEY_QOS} must be 0, 1 or 2, not {raw_qos!r}"
        )
    return MqttTarget(
        host=parts.hostname,
        port=port,
        tls=parts.scheme == "mqtts",
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        topic=topic,
        qos=int(raw_qos),
        version=version,
    )


def message(
    notification: dict[str, Any],
    content_type: str,
    link: str | None,
    receiver_info: Mapping[str, str],
) -> bytes:
    """The MQTT payload: the notification with the headers an HTTP notification would carry."""
    metadata: dict[str, str] = dict(receiver_info)
    metadata["Content-Type"] = content_type
    if link is not None:
        metadata["Link"] = link
    return orjson.dumps({"metadata": metadata, "body": notification})


Outcome = Literal["delivered", "retry"]


@dataclass(frozen=True, slots=True)
class MqttResult:
    outcome: Outcome
    reason: str = ""


class _Connection:
    """One open client; its context is entered and left by the task that owns it."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.ready = asyncio.Event()
        self.failed: BaseException | None = None
        self.closing = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        try:
            async with self.client:
                self.ready.set()
                await self.closing.wait()
        except BaseException as exc:  # connect refused, lost later, or cancelled
            self.failed = exc
            self.ready.set()
            if isinstance(exc, asyncio.CancelledError):
                raise


class MqttConnections:
    """Publishes over one long-lived connection per broker; reconnects after failures."""

    def __init__(
        self, tls_context: Callable[[], ssl.SSLContext] = ssl.create_default_context
    ) -> None:
        self._tls_context = tls_context
        self._open: dict[tuple[Any, ...], _Connection] = {}
        self._locks: dict[tuple[Any, ...], asyncio.Lock] = {}

    async def publish(self, target: MqttTarget, payload: bytes, within: float) -> MqttResult:
        """Publish and wait for the broker (QoS ≥ 1); a failure drops the connection."""
        reason = ""
        try:
            async with asyncio.timeout(within):
                # A connection the broker closed since its last use fails the first publish:
                # one fresh connection is tried before the delivery counts as failed.
                for _ in range(2):
                    try:
                        connection = await self._connection(target)
                        await connection.client.publish(target.topic, payload, qos=target.qos)
                        return MqttResult("delivered")
                    except (aiomqtt.MqttError, OSError) as exc:
                        await self._drop(target.broker)
                        reason = str(exc) or type(exc).__name__
        except TimeoutError:
            await self._drop(target.broker)
            reason = f"no acknowledgement within {within:g} s"
        return MqttResult("retry", f"MQTT broker {target.host}:{target.port}: {reason}")

    async def _connection(self, target: MqttTarget) -> _Connection:
        key = target.broker
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            connection = self._open.get(key)
            if connection is not None and connection.failed is None:
                return connection
            client = aiomqtt.Client(
                target.host,
                target.port,
                username=target.username,
                password=target.password,
                protocol=VERSIONS[target.version],
                tls_context=self._tls_context() if target.tls else None,
                timeout=10,
            )
            connection = _Connection(client)
            connection.task = asyncio.create_task(connection.run())
            await connection.ready.wait()
            if connection.failed is not None:
                raise aiomqtt.MqttError(str(connection.failed) or "connection failed")
            self._open[key] = connection
            return connection

    async def _drop(self, key: tuple[Any, ...]) -> None:
        connection = self._open.pop(key, None)
        if connection is not None:
            await _stop(connection)

    async def close(self) -> None:
        connections, self._open = list(self._open.values()), {}
        for connection in connections:
            await _stop(connection)


async def _stop(connection: _Connection) -> None:
    connection.closing.set()
    task = connection.task
    if task is None or task.done():
        return
    try:
        await asyncio.wait_for(asyncio.shield(task), 5)
    except Exception:  # disconnecting from a dead broker: give up on it
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


class MqttChannel:
    """The dispatcher's channel for mqtt(s):// endpoints (channels/__init__.py)."""

    def __init__(self, policy: OutboundPolicy, connections: MqttConnections | None = None) -> None:
        self._policy = policy
        self._connections = connections or MqttConnections()
        self._allowed: set[str] = set()  # broker hosts the outbound policy let through

    async def send(self, delivery: Delivery) -> ChannelOutcome:
        try:
            target = mqtt_target(delivery.endpoint.uri, dict(delivery.endpoint.notifier_info))
            await self._check_host(target.host, target.port)
        except NgsiLdError as exc:
            return ChannelOutcome(False, False, exc.detail)
        except OSError as exc:  # the broker's name does not resolve (for now)
            return ChannelOutcome(False, True, f"MQTT broker {target.host}: {exc}"[:500])
        headers = dict(delivery.headers)
        content_type = headers.pop("Content-Type", "application/json")
        link = headers.pop("Link", None)
        if dict(delivery.endpoint.notifier_info).get(KEY_ENVELOPE) == "none":
            payload = delivery.body
        else:
            payload = message(orjson.loads(delivery.body), content_type, link, headers)
        result = await self._connections.publish(target, payload, delivery.endpoint.timeout)
        if result.outcome == "delivered":
            return ChannelOutcome(True)
        return ChannelOutcome(False, True, result.reason)

    async def _check_host(self, host: str, port: int) -> None:
        """The broker is a client-chosen address: the outbound network policy applies."""
        if host in self._allowed:
            return
        found = await asyncio.get_running_loop().getaddrinfo(host, port)
        for *_, sockaddr in found:
            address = ipaddress.ip_address(sockaddr[0])
            why = self._policy.refusal(address)
            if why is not None:
                raise refused(f"mqtt://{host}:{port}", f"{address} is {why}")
        if len(self._allowed) > 4096:
            self._allowed.clear()
        self._allowed.add(host)

    async def close(self) -> None:
        await self._connections.close()
