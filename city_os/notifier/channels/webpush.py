"""Web Push delivery: RFC 8030 (push protocol), RFC 8291 (message encryption), RFC 8292 (VAPID).

Layer: notifier/ (a delivery channel). A browser or the super app subscribes with its push
service and hands city-os the PushSubscription it got (`endpoint`, `keys.p256dh`, `keys.auth`).
An NGSI-LD subscription carries it in ``notification.endpoint``: ``uri`` is the push service
endpoint, ``notifierInfo`` holds ``webpush.p256dh`` and ``webpush.auth`` (and optionally
``webpush.ttl``, ``webpush.urgency``, ``webpush.topic``). Each notification is encrypted for
that user agent alone (aes128gcm, a fresh ephemeral key and salt per message, http_ece) and POSTed
with a VAPID token signed by the platform's key (py_vapid), so the push service knows who sends.

A push message holds at most 3,993 bytes of plaintext (RFC 8291 §4). A notification that does not
fit is replaced by its summary (ids and types of the entities, ``truncated: true``): the app then
reads the entities through the API. Push service answers: 201 delivered; 404/410 the user agent
unsubscribed (RFC 8030 §7.3): a permanent failure, and the subscription is paused
(notifier/gone.py); 413 too large, permanent; 429 and 5xx transient, honouring ``Retry-After``
(the dispatcher waits at least that long).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import aiohttp
import http_ece
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from city_os.errors import BadRequestData, NgsiLdError
from city_os.notifier.channels import Delivery
from city_os.notifier.channels import Outcome as ChannelOutcome
from city_os.notifier.channels import retry_after as parse_retry_after

KEY_P256DH: Final = "webpush.p256dh"
KEY_AUTH: Final = "webpush.auth"
KEY_TTL: Final = "webpush.ttl"
KEY_URGENCY: Final = "webpush.urgency"
KEY_TOPIC: Final = "webpush.topic"
NOTIFIER_KEYS: Final = frozenset({KEY_P256DH, KEY_AUTH, KEY_TTL, KEY_URGENCY, KEY_TOPIC})
URGENCIES: Final = frozenset({"very-low", "low", "normal", "high"})
MAX_PLAINTEXT: Final = 3993  # RFC 8291 §4: one 4096-byte record minus header, tag and padding
DEFAULT_TTL: Final = 86400  # seconds the push service keeps an undelivered message
_TOKEN_LIFETIME: Final = 12 * 3600  # RFC 8292 §2: at most 24 h; reused until near its end
_TOKEN_MARGIN: Final = 600
_TOPIC_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def b64url_decode(text: str) -> bytes:
    """Base64url without padding, as browsers give PushSubscription keys."""
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class PushTarget:
    """One user agent's push subscription, as carried by a notification endpoint."""

    endpoint: str
    p256dh: bytes  # the user agent's P-256 public key, uncompressed point (65 bytes)
    auth: bytes  # its 16-byte authentication secret
    ttl: int = DEFAULT_TTL
    urgency: str | None = None
    topic: str | None = None


def is_push_endpoint(notifier_info: Mapping[str, str]) -> bool:
    return KEY_P256DH in notifier_info or KEY_AUTH in notifier_info


def push_target(uri: str, notifier_info: Mapping[str, str]) -> PushTarget:
    """The push target of an endpoint; BadRequestData naming the member that is wrong.

    Called when a subscription is created or updated, so a bad key never reaches delivery.
    """
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise BadRequestData(
            f"notification.endpoint.uri {uri!r}: a Web Push endpoint is an https URL of a push"
            " service"
        )
    p256dh = _key(notifier_info, KEY_P256DH, 65)
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError:
        raise BadRequestData(
            f"notification.endpoint.notifierInfo {KEY_P256DH} is not a P-256 public key"
        ) from None
    auth = _key(notifier_info, KEY_AUTH, 16)
    ttl = DEFAULT_TTL
    if KEY_TTL in notifier_info:
        raw = notifier_info[KEY_TTL]
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
            raise BadRequestData(
                f"notification.endpoint.notifierInfo {KEY_TTL} must be a number of seconds"
            )
        ttl = int(raw)
    urgency = notifier_info.get(KEY_URGENCY)
    if urgency is not None and urgency not in URGENCIES:
        raise BadRequestData(
            f"notification.endpoint.notifierInfo {KEY_URGENCY} must be one of "
            + ", ".join(sorted(URGENCIES))
        )
    topic = notifier_info.get(KEY_TOPIC)
    if topic is not None and not (0 < len(topic) <= 32 and set(topic) <= _TOPIC_CHARS):
        raise BadRequestData(
            f"notification.endpoint.notifierInfo {KEY_TOPIC} must be 1-32 base64url characters"
            " (RFC 8030 §5.4)"
        )
    return PushTarget(uri, p256dh, auth, ttl, urgency, topic)


def _key(info: Mapping[str, str], name: str, size: int) -> bytes:
    raw = info.get(name)
    if not raw:
        raise BadRequestData(f"notification.endpoint.notifierInfo needs {name} for Web Push")
    try:
        value = b64url_decode(raw)
    except (binascii.Error, ValueError):
        raise BadRequestData(
            f"notification.endpoint.notifierInfo {name} is not base64url"
        ) from None
    if len(value) != size:
        raise BadRequestData(
            f"notification.endpoint.notifierInfo {name} must decode to {size} bytes,"
            f" not {len(value)}"
        )
    return value


# -- VAPID ---------------------------------------------------------------------------------------


def generate_vapid_key() -> bytes:
    """A new VAPID private key, PKCS#8 PEM (kept by the platform, shared by every replica)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_of(private_pem: bytes) -> str:
    """The applicationServerKey browsers subscribe with: the uncompressed point, base64url."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    raw = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url_encode(raw)


class VapidSigner:
    """Signs VAPID tokens (ES256 JWTs, RFC 8292) with the platform key, one per push-service
    origin, reused for 12 hours: signing per message would cost an ECDSA signature each."""

    def __init__(self, private_pem: bytes, subject: str) -> None:
        # no-strict: RFC 8292 §2.1 allows any contact URI, py_vapid's check wants mailto/https.
        self._vapid = Vapid02.from_pem(private_pem)
        self._vapid.conf = {"no-strict": True}
        self._subject = subject
        raw = self._vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.public_key = b64url_encode(raw)  # the applicationServerKey browsers subscribe with
        self._tokens: dict[str, tuple[str, float]] = {}

    def authorization(self, endpoint: str) -> str:
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        now = time.time()
        cached = self._tokens.get(audience)
        if cached is not None and cached[1] > now + _TOKEN_MARGIN:
            return cached[0]
        expires = int(now) + _TOKEN_LIFETIME
        headers = self._vapid.sign({"aud": audience, "exp": expires, "sub": self._subject})
        token: str = headers["Authorization"]
        if len(self._tokens) > 1024:  # distinct push services are few; never grow unbounded
            self._tokens.clear()
        self._tokens[audience] = (token, float(expires))
        return token


# -- messages ------------------------------------------------------------------------------------


def fit(notification: dict[str, Any]) -> bytes:
    """The notification as JSON, or its summary if it exceeds one push message."""
    body = orjson.dumps(notification)
    if len(body) <= MAX_PLAINTEXT:
        return body
    data = notification.get("data")
    entities = [
        {"id": item.get("id"), "type": item.get("type")}
        for item in (data if isinstance(data, list) else [])
        if isinstance(item, dict)
    ]
    summary: dict[str, Any] = {
        k: notification[k]
        for k in ("id", "type", "subscriptionId", "notifiedAt")
        if k in notification
    }
    summary["truncated"] = True
    summary["data"] = entities
    body = orjson.dumps(summary)
    while len(body) > MAX_PLAINTEXT and summary["data"]:
        summary["data"] = summary["data"][: len(summary["data"]) // 2]
        body = orjson.dumps(summary)
    return body


def encrypt(target: PushTarget, plaintext: bytes) -> bytes:
    """RFC 8291 aes128gcm content for ``target``: a fresh sender key and salt every time."""
    sender = ec.generate_private_key(ec.SECP256R1())
    encrypted: bytes = http_ece.encrypt(
        plaintext,
        private_key=sender,
        dh=target.p256dh,
        auth_secret=target.auth,
        version="aes128gcm",
    )
    return encrypted


Outcome = Literal["delivered", "retry", "gone", "refused"]


@dataclass(frozen=True, slots=True)
class PushResult:
    outcome: Outcome
    status: int
    reason: str = ""
    retry_after: float | None = None


async def send(
    session: aiohttp.ClientSession,
    target: PushTarget,
    plaintext: bytes,
    signer: VapidSigner,
    within: float,
) -> PushResult:
    """POST one encrypted message to the push service (RFC 8030 §5), within ``within`` s."""
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-Encoding": "aes128gcm",
        "TTL": str(target.ttl),
        "Authorization": signer.authorization(target.endpoint),
    }
    if target.urgency:
        headers["Urgency"] = target.urgency
    if target.topic:
        headers["Topic"] = target.topic
    body = encrypt(target, plaintext)
    async with session.post(
        target.endpoint,
        data=body,
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=within),
        allow_redirects=False,
    ) as response:
        status = response.status
        detail = (await response.content.read(512)).decode("utf-8", "replace").strip()
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if 200 <= status < 300:
        return PushResult("delivered", status)
    reason = f"push service answered HTTP {status}" + (f": {detail}" if detail else "")
    if status in (404, 410):
        return PushResult("gone", status, reason + " (the user agent unsubscribed)")
    if status == 429 or status >= 500:
        return PushResult("retry", status, reason, retry_after)
    return PushResult("refused", status, reason)


# -- the dispatcher's channel --------------------------------------------------------------------


class WebPushChannel:
    """Web Push deliveries of the HTTP channel (an http(s) endpoint with push keys).

    ``session`` is the HTTP channel's (outbound network policy, per-host limits); the VAPID key
    is read once, on the first push (``key``: store/postgres/webpush.py)."""

    def __init__(
        self,
        session: Callable[[], aiohttp.ClientSession],
        key: Callable[[], Awaitable[bytes]],
        subject: str,
    ) -> None:
        self._session = session
        self._key = key
        self._subject = subject
        self._signer: VapidSigner | None = None
        self._lock = asyncio.Lock()

    async def _signer_now(self) -> VapidSigner:
        async with self._lock:
            if self._signer is None:
                self._signer = VapidSigner(await self._key(), self._subject)
            return self._signer

    async def send(self, delivery: Delivery) -> ChannelOutcome:
        try:
            target = push_target(delivery.endpoint.uri, dict(delivery.endpoint.notifier_info))
        except NgsiLdError as exc:
            return ChannelOutcome(False, False, exc.detail)
        plaintext = fit(orjson.loads(delivery.body))
        try:
            signer = await self._signer_now()
            result = await send(
                self._session(), target, plaintext, signer, delivery.endpoint.timeout
            )
        except TimeoutError:
            return ChannelOutcome(False, True, f"no answer within {delivery.endpoint.timeout:g} s")
        except NgsiLdError as exc:  # the outbound policy refused the push service's address
            return ChannelOutcome(False, False, exc.detail)
        except (aiohttp.ClientError, OSError) as exc:
            return ChannelOutcome(False, True, f"{type(exc).__name__}: {exc}"[:500])
        if result.outcome == "delivered":
            return ChannelOutcome(True)
        return ChannelOutcome(
            False,
            result.outcome == "retry",
            result.reason,
            retry_after=result.retry_after,
            gone=result.outcome == "gone",  # RFC 8030 §7.3: stop sending to it
        )
