"""A local push service for the Web Push tests, with a user agent's keys.

It plays the two roles the real world splits: the push service (checks the VAPID token of every
request, RFC 8292) and the browser (decrypts the message with its private key and auth secret,
RFC 8291). Both are written here from the RFCs with ``cryptography``'s primitives, independently
of the libraries city-os sends with, so a test passing means the wire format is right.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


@dataclass
class UserAgent:
    """A browser's push subscription keys (what PushSubscription.getKey() returns)."""

    private: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def public(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    def notifier_info(self) -> list[dict[str, str]]:
        return [
            {"key": "webpush.p256dh", "value": _b64(self.public)},
            {"key": "webpush.auth", "value": _b64(self.auth)},
        ]

    def decrypt(self, body: bytes) -> bytes:
        """RFC 8291 §3.4 + RFC 8188 §2: one aes128gcm record, sender key in the header."""
        salt, record_size, id_length = body[:16], *struct.unpack("!LB", body[16:21])
        sender = body[21 : 21 + id_length]
        ciphertext = body[21 + id_length :]
        assert id_length == 65, "the keyid of a Web Push message is the sender's P-256 key"
        assert len(ciphertext) <= record_size, "a push message is a single record"
        sender_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender)
        secret = self.private.exchange(ec.ECDH(), sender_key)
        ikm = _hkdf(self.auth, secret, b"WebPush: info\x00" + self.public + sender, 32)
        key = _hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
        nonce = _hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
        padded = AESGCM(key).decrypt(nonce, ciphertext, None)
        stripped = padded.rstrip(b"\x00")
        assert stripped.endswith(b"\x02"), "the last record ends with delimiter 0x02"
        return stripped[:-1]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    claims: dict[str, Any]
    vapid_key: str


def verify_vapid(authorization: str, origin: str) -> tuple[dict[str, Any], str]:
    """Check an RFC 8292 ``vapid t=…, k=…`` header; return the claims and the public key."""
    scheme, _, params = authorization.partition(" ")
    assert scheme == "vapid", authorization
    values = dict(p.strip().split("=", 1) for p in params.split(","))
    token, key = values["t"], values["k"]
    header_b64, claims_b64, signature_b64 = token.split(".")
    assert json.loads(_unb64(header_b64)) == {"typ": "JWT", "alg": "ES256"}
    signature = _unb64(signature_b64)
    assert len(signature) == 64
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _unb64(key))
    public.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    claims = json.loads(_unb64(claims_b64))
    assert claims["aud"] == origin, (claims, origin)
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    assert claims["sub"]
    return claims, key


class PushService:
    """POST /push/{id}: verifies, records and answers ``status`` (201 unless told otherwise)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status = 201
        self.headers: dict[str, str] = {}
        self.origin = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/push/{id}", self._push)
        return app

    async def _push(self, request: web.Request) -> web.Response:
        assert request.headers["Content-Encoding"] == "aes128gcm"
        assert request.headers["TTL"].isdigit()
        claims, key = verify_vapid(request.headers["Authorization"], self.origin)
        body = await request.read()
        assert len(body) <= 4096, "a push message is at most 4096 bytes"
        self.received.append(Received(request.path, dict(request.headers), body, claims, key))
        return web.Response(status=self.status, headers=self.headers)
