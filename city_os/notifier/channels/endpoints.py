"""Which channel an endpoint needs, and whether the endpoint is fit for it (checked on write).

Layer: notifier/ (pure, no I/O). Called by core/subscriptions.py when a subscription is created
or updated, so a malformed MQTT URI or Web Push key is a 400 naming the member and delivery
never meets one. The channel of an endpoint:

- ``http``/``https``: an HTTP POST, or Web Push when ``notifierInfo`` carries
  ``webpush.p256dh``/``webpush.auth`` (the browser's PushSubscription);
- ``mqtt``/``mqtts``: an MQTT publish (``MQTT-Version``, ``MQTT-QoS`` from ``notifierInfo``);
- ``urn:city-os:stream``: the live stream of web pages (Server-Sent Events at
  ``/cityos/v1/subscriptions/{id}/stream``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, Literal
from urllib.parse import urlsplit

from city_os.notifier.channels.mqtt import SCHEMES as MQTT_SCHEMES
from city_os.notifier.channels.mqtt import mqtt_target
from city_os.notifier.channels.webpush import is_push_endpoint, push_target

STREAM_URI: Final = "urn:city-os:stream"
Kind = Literal["http", "webpush", "mqtt", "stream"]


def kind_of(uri: str, notifier_info: Mapping[str, str]) -> Kind:
    if uri == STREAM_URI:
        return "stream"
    scheme = urlsplit(uri).scheme.lower()
    if scheme in MQTT_SCHEMES:
        return "mqtt"
    return "webpush" if is_push_endpoint(notifier_info) else "http"


def info_of(pairs: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """notifierInfo as stored (KeyValuePairs) → a mapping."""
    return {p["key"]: p["value"] for p in pairs}


def shown(uri: str) -> str:
    """The URI without its credentials (``mqtt://user:password@host``), for logs and metrics."""
    parts = urlsplit(uri)
    if parts.password is None and parts.username is None:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=host).geturl()


def check_endpoint(uri: str, notifier_info: Mapping[str, str]) -> Kind:
    """The endpoint's channel; BadRequestData naming the member that does not fit it."""
    kind = kind_of(uri, notifier_info)
    if kind == "mqtt":
        mqtt_target(uri, notifier_info)
    elif kind == "webpush":
        push_target(uri, notifier_info)
    return kind
