"""Web Push channel: encrypted for the user agent, VAPID-signed, sized, answered per RFC 8030.

Every message goes through a local push service over real HTTP; the test's user agent decrypts it
with its own private key (tests/integration/notifier/webpush_service.py, written from RFC 8291).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestServer
from cryptography.exceptions import InvalidTag

from city_os.errors import BadRequestData
from city_os.notifier.channels import webpush
from city_os.store.postgres.db import migrate
from city_os.store.postgres.webpush import vapid_private_key
from tests.conftest import TEST_DSN
from tests.integration.notifier.webpush_service import PushService, UserAgent

SUBJECT = "mailto:ops@city-os.example"


@pytest.fixture
async def service() -> AsyncIterator[tuple[PushService, str]]:
    push = PushService()
    server = TestServer(push.app())
    await server.start_server()
    push.origin = f"http://{server.host}:{server.port}"
    try:
        yield push, push.origin
    finally:
        await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture(scope="module")
def signer() -> webpush.VapidSigner:
    return webpush.VapidSigner(webpush.generate_vapid_key(), SUBJECT)


def _target(origin: str, agent: UserAgent, **extra: str) -> webpush.PushTarget:
    info = {item["key"]: item["value"] for item in agent.notifier_info()}
    info.update(extra)
    return webpush.push_target(f"{origin}/push/ua-1", info)


def _notification(entities: int = 1, text: str = "避難所 開設") -> dict[str, object]:
    return {
        "id": "urn:ngsi-ld:Notification:1",
        "type": "Notification",
        "subscriptionId": "urn:ngsi-ld:Subscription:alerts",
        "notifiedAt": "2026-12-01T10:00:00.000Z",
        "data": [
            {"id": f"urn:ngsi-ld:EvacuationShelter:{i}", "type": "EvacuationShelter", "name": text}
            for i in range(entities)
        ],
    }


async def test_the_user_agent_decrypts_exactly_the_notification(
    service: tuple[PushService, str], session: aiohttp.ClientSession, signer: webpush.VapidSigner
) -> None:
    push, origin = service
    agent = UserAgent()
    target = _target(origin, agent, **{"webpush.urgency": "high", "webpush.topic": "shelters"})
    plaintext = webpush.fit(_notification())

    result = await webpush.send(session, target, plaintext, signer, within=5)

    assert result == webpush.PushResult("delivered", 201)
    [message] = push.received
    assert orjson.loads(agent.decrypt(message.body)) == _notification()
    assert message.headers["Urgency"] == "high"
    assert message.headers["Topic"] == "shelters"
    assert message.headers["TTL"] == str(webpush.DEFAULT_TTL)
    assert message.vapid_key == signer.public_key
    assert message.claims["sub"] == SUBJECT


async def test_each_message_has_its_own_key_and_salt_and_one_token_per_origin(
    service: tuple[PushService, str], session: aiohttp.ClientSession, signer: webpush.VapidSigner
) -> None:
    push, origin = service
    agent = UserAgent()
    target = _target(origin, agent)
    body = webpush.fit(_notification())
    for _ in range(2):
        assert (await webpush.send(session, target, body, signer, within=5)).outcome == (
            "delivered"
        )
    first, second = push.received
    assert first.body[:16] != second.body[:16], "salts differ"
    assert first.body[21:86] != second.body[21:86], "sender keys differ"
    assert agent.decrypt(first.body) == agent.decrypt(second.body) == body
    assert first.headers["Authorization"] == second.headers["Authorization"]


async def test_another_user_agent_cannot_read_the_message(
    service: tuple[PushService, str], session: aiohttp.ClientSession, signer: webpush.VapidSigner
) -> None:
    push, origin = service
    await webpush.send(
        session, _target(origin, UserAgent()), webpush.fit(_notification()), signer, within=5
    )
    with pytest.raises(InvalidTag):
        UserAgent().decrypt(push.received[0].body)


@pytest.mark.parametrize("entities", [60, 2000])
async def test_a_notification_too_large_for_a_push_message_arrives_as_its_summary(
    service: tuple[PushService, str],
    session: aiohttp.ClientSession,
    signer: webpush.VapidSigner,
    entities: int,
) -> None:
    push, origin = service
    agent = UserAgent()
    big = _notification(entities, text="佐賀" * 50)
    plaintext = webpush.fit(big)
    assert len(plaintext) <= webpush.MAX_PLAINTEXT

    assert (await webpush.send(session, _target(origin, agent), plaintext, signer, 5)).outcome == (
        "delivered"
    )
    summary = orjson.loads(agent.decrypt(push.received[0].body))
    assert summary["truncated"] is True
    assert summary["subscriptionId"] == big["subscriptionId"]
    ids = [item["id"] for item in summary["data"]]
    assert ids and ids == [f"urn:ngsi-ld:EvacuationShelter:{i}" for i in range(len(ids))]
    assert all(set(item) == {"id", "type"} for item in summary["data"])


@pytest.mark.parametrize(
    ("status", "headers", "outcome", "retry_after"),
    [
        (410, {}, "gone", None),
        (404, {}, "gone", None),
        (429, {"Retry-After": "30"}, "retry", 30.0),
        (503, {}, "retry", None),
        (413, {}, "refused", None),
        (400, {}, "refused", None),
    ],
)
async def test_push_service_answers_map_to_outcomes(
    service: tuple[PushService, str],
    session: aiohttp.ClientSession,
    signer: webpush.VapidSigner,
    status: int,
    headers: dict[str, str],
    outcome: str,
    retry_after: float | None,
) -> None:
    push, origin = service
    push.status, push.headers = status, headers
    result = await webpush.send(
        session, _target(origin, UserAgent()), webpush.fit(_notification()), signer, within=5
    )
    assert (result.outcome, result.status, result.retry_after) == (outcome, status, retry_after)
    assert str(status) in result.reason


_GOOD = UserAgent().notifier_info()
_P256DH, _AUTH = _GOOD[0]["value"], _GOOD[1]["value"]
_raw = webpush.b64url_decode(_P256DH)
_OFF_CURVE = webpush.b64url_encode(_raw[:-1] + bytes([_raw[-1] ^ 1]))


@pytest.mark.parametrize(
    ("uri", "info", "named"),
    [
        ("ftp://push.example/x", {}, "uri"),
        ("https://push.example/x", {"webpush.auth": _AUTH}, "webpush.p256dh"),
        ("https://push.example/x", {"webpush.p256dh": _P256DH}, "webpush.auth"),
        ("https://push.example/x", {"webpush.p256dh": "!!", "webpush.auth": _AUTH}, "base64url"),
        ("https://push.example/x", {"webpush.p256dh": _AUTH, "webpush.auth": _AUTH}, "65 bytes"),
        (
            "https://push.example/x",
            {"webpush.p256dh": _OFF_CURVE, "webpush.auth": _AUTH},
            "P-256",
        ),
        (
            "https://push.example/x",
            {"webpush.p256dh": _P256DH, "webpush.auth": _P256DH},
            "16 bytes",
        ),
        (
            "https://push.example/x",
            {"webpush.p256dh": _P256DH, "webpush.auth": _AUTH, "webpush.urgency": "now"},
            "urgency",
        ),
        (
            "https://push.example/x",
            {"webpush.p256dh": _P256DH, "webpush.auth": _AUTH, "webpush.topic": "a b"},
            "topic",
        ),
        (
            "https://push.example/x",
            {"webpush.p256dh": _P256DH, "webpush.auth": _AUTH, "webpush.ttl": "²"},
            "ttl",
        ),
    ],
)
def test_a_malformed_push_subscription_is_refused_naming_the_member(
    uri: str, info: dict[str, str], named: str
) -> None:
    with pytest.raises(BadRequestData, match=named):
        webpush.push_target(uri, info)


async def test_every_replica_signs_with_the_same_platform_key() -> None:
    pools = [await asyncpg.create_pool(TEST_DSN, min_size=1, max_size=1) for _ in range(2)]
    try:
        async with pools[0].acquire() as conn:
            await migrate(conn)
        first = await vapid_private_key(pools[0])
        second = await vapid_private_key(pools[1])
    finally:
        for pool in pools:
            await pool.close()
    assert first == second
    assert first.startswith(b"-----BEGIN PRIVATE KEY-----")
    signer = webpush.VapidSigner(first, SUBJECT)
    assert len(webpush.b64url_decode(signer.public_key)) == 65
