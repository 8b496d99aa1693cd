"""Delivery channels: one small module per endpoint URI scheme, behind one interface.

Layer: notifier/. A ``Delivery`` is channel-neutral (endpoint with its ``notifierInfo``,
headers, body, ids); a channel turns it into a request of its protocol and reports an
``Outcome``: delivered, failed for now (``transient``: the endpoint is down, slow or
overloaded; it is retried with back-off) or failed for good (the receiver refused this
notification). ``Channels`` hands out one channel per module, chosen by the URI scheme through
``SCHEMES``: http/https (channels/http.py, which hands Web Push endpoints to
channels/webpush.py), mqtt/mqtts (channels/mqtt.py) and the live stream ``urn:city-os:stream``
(channels/stream.py); a new channel is a module with a factory taking ``ChannelOptions``,
registered there. Which endpoint members each channel needs is checked when a subscription is
written (channels/endpoints.py).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from city_os.auth.network import OutboundPolicy

if TYPE_CHECKING:
    import asyncpg


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how a subscription's notifications go (§5.2.15)."""

    uri: str
    timeout: float  # seconds to wait for the receiver
    cooldown: float | None = None  # seconds after a failure during which nothing is sent
    notifier_info: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class Delivery:
    """One notification on its way: durable (``seq`` is its row) and ordered per key."""

    seq: int
    notification_id: str
    tenant: str
    subscription_id: str
    entity_id: str
    endpoint: Endpoint
    headers: dict[str, str]
    body: bytes
    created: float  # time.time() when it was stored
    event_time: float | None = None  # when the change was made (latency)
    attempts: int = 0
    key: tuple[str, str, str] = field(init=False)

    def __post_init__(self) -> None:
        # notifications of one (subscription, entity) are delivered in change order
        self.key = (self.tenant, self.subscription_id, self.entity_id)


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    transient: bool = False
    reason: str | None = None
    retry_after: float | None = None  # seconds the receiver asked to wait (Retry-After)
    gone: bool = False  # the endpoint no longer exists (an ended Web Push subscription)


class Channel(Protocol):
    async def send(self, delivery: Delivery) -> Outcome: ...

    async def close(self) -> None: ...


class Unavailable:
    """A scheme whose channel is not part of this build: every notification fails for good."""

    def __init__(self, scheme: str) -> None:
        self._reason = f"no delivery channel for {scheme}:// endpoints in this city-os version"

    async def send(self, delivery: Delivery) -> Outcome:
        return Outcome(False, transient=False, reason=self._reason)

    async def close(self) -> None:
        return None


def retry_after(raw: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (RFC 9110 §10.2.3: delay-seconds or an
    HTTP-date); None when absent or unreadable (the back-off decides then)."""
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isascii() and raw.isdigit():
        return float(min(int(raw[:12]), 10**9))
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def scheme_of(uri: str) -> str:
    return urlsplit(uri).scheme.lower()


@dataclass(frozen=True)
class ChannelOptions:
    policy: OutboundPolicy  # outbound network policy for client-chosen addresses
    per_endpoint: int  # requests in flight per endpoint (the dispatcher's concurrency)
    vapid_key: Callable[[], Awaitable[bytes]] | None = None  # the platform's VAPID key (PEM)
    push_subject: str = "mailto:admin@city-os.invalid"  # VAPID contact (RFC 8292 §2.1)
    pool: asyncpg.Pool | None = None  # the live stream's table


ChannelFactory = Callable[[ChannelOptions], Channel]


def _http(options: ChannelOptions) -> Channel:
    from city_os.notifier.channels.http import HttpChannel

    return HttpChannel(
        options.policy, options.per_endpoint, options.vapid_key, options.push_subject
    )


def _mqtt(options: ChannelOptions) -> Channel:
    from city_os.notifier.channels.mqtt import MqttChannel

    return MqttChannel(options.policy)


def _stream(options: ChannelOptions) -> Channel:
    from city_os.notifier.channels.stream import StreamChannel
    from city_os.store.postgres.streams import StreamStore

    if options.pool is None:
        return Unavailable("urn:city-os:stream")
    return StreamChannel(StreamStore(options.pool))


# URI scheme → (channel name, factory); schemes of one name share one channel.
SCHEMES: dict[str, tuple[str, ChannelFactory]] = {
    "http": ("http", _http),
    "https": ("http", _http),
    "mqtt": ("mqtt", _mqtt),
    "mqtts": ("mqtt", _mqtt),
    "urn": ("stream", _stream),  # urn:city-os:stream, the only urn accepted (endpoints.py)
}


class Channels:
    """The channels of one notifier, created on first use."""

    def __init__(self, options: ChannelOptions) -> None:
        self._options = options
        self._open: dict[str, Channel] = {}

    def for_scheme(self, scheme: str) -> Channel:
        name, factory = SCHEMES.get(scheme, (scheme, lambda _: Unavailable(scheme)))
        channel = self._open.get(name)
        if channel is None:
            channel = self._open[name] = factory(self._options)
        return channel

    async def close(self) -> None:
        for channel in self._open.values():
            await channel.close()
        self._open.clear()
