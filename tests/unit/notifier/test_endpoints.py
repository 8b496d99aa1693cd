"""Which channel an endpoint needs, what each channel refuses, and URIs without credentials."""

from __future__ import annotations

import pytest

from city_os.errors import BadRequestData
from city_os.notifier.channels.endpoints import check_endpoint, kind_of, shown

P256DH = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
AUTH = "tBHItJI5svbpez7KI4CCXg"


@pytest.mark.parametrize(
    ("uri", "info", "kind"),
    [
        ("http://127.0.0.1/n", {}, "http"),
        ("https://push.example/ua", {"webpush.p256dh": P256DH, "webpush.auth": AUTH}, "webpush"),
        ("mqtt://broker/city/shelters", {}, "mqtt"),
        ("mqtts://u:p@broker:8883/t", {"MQTT-QoS": "2"}, "mqtt"),
        ("urn:city-os:stream", {}, "stream"),
    ],
)
def test_the_endpoint_names_its_channel(uri: str, info: dict[str, str], kind: str) -> None:
    assert kind_of(uri, info) == kind
    assert check_endpoint(uri, info) == kind


@pytest.mark.parametrize(
    ("uri", "info", "named"),
    [
        ("mqtt://broker/a/#", {}, "notification.endpoint.uri"),
        ("mqtt://broker/", {}, "notification.endpoint.uri"),
        ("mqtt://broker/t", {"MQTT-QoS": "1.5"}, "MQTT-QoS"),
        ("mqtt://broker/t", {"MQTT-Version": "mqtt3"}, "MQTT-Version"),
        ("https://push.example/ua", {"webpush.p256dh": P256DH}, "webpush.auth"),
        ("https://push.example/ua", {"webpush.auth": AUTH, "webpush.p256dh": "x"}, "p256dh"),
    ],
)
def test_an_endpoint_unfit_for_its_channel_names_the_member(
    uri: str, info: dict[str, str], named: str
) -> None:
    with pytest.raises(BadRequestData) as caught:
        check_endpoint(uri, info)
    assert named in caught.value.detail


@pytest.mark.parametrize(
    ("uri", "seen"),
    [
        ("mqtt://user:secret@broker:1883/t", "mqtt://broker:1883/t"),
        ("mqtt://user@broker/t", "mqtt://broker/t"),
        ("http://127.0.0.1:8080/n?x=1", "http://127.0.0.1:8080/n?x=1"),
    ],
)
def test_credentials_never_show(uri: str, seen: str) -> None:
    assert shown(uri) == seen
