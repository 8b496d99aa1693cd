"""A local OIDC issuer for the tests: discovery document and JWKS over real HTTP, real keys.

``LocalIssuer`` serves ``/.well-known/openid-configuration`` and ``/jwks`` on a free port of
127.0.0.1, holds RS256, ES256 and EdDSA signing keys made with ``cryptography``, signs tokens
with PyJWT, and can rotate to a new key (a new ``kid``). It counts the JWKS fetches, so tests can
see the broker's caching and its rate-limited refresh.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from typing import Any

import jwt
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from city_os.auth.oidc import ALGORITHMS

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def new_key(alg: str) -> PrivateKey:
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


@functools.cache
def _first_key(alg: str) -> PrivateKey:
    return new_key(alg)


class LocalIssuer:
    def __init__(self, audience: str = "city-os", realm: str = "city") -> None:
        self.audience = audience
        self.realm = realm
        self.keys: dict[str, tuple[str, PrivateKey]] = {}  # kid → (alg, private key)
        self.jwks_fetches = 0
        self.fail = False  # answer 503 to everything (an IdP outage)
        self._server: TestServer | None = None
        for alg in ALGORITHMS:  # the first keys are made once per test run: RSA is slow to make
            self.keys[f"{alg.lower()}-{realm}-first"] = (alg, _first_key(alg))

    @property
    def url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url(f"/realms/{self.realm}")).rstrip("/")

    def setting(self, **extra: Any) -> dict[str, Any]:
        """This issuer as an entry of CITYOS_OIDC_ISSUERS."""
        return {"issuer": self.url, "audience": self.audience, "tenants": ["*"], **extra}

    def add_key(self, alg: str) -> str:
        kid = f"{alg.lower()}-{uuid.uuid4().hex[:8]}"
        self.keys[kid] = (alg, new_key(alg))
        return kid

    def kid(self, alg: str) -> str:
        """The newest key of ``alg``."""
        return [k for k, (a, _) in self.keys.items() if a == alg][-1]

    def token(
        self, alg: str = "RS256", *, kid: str | None = None, lifetime: float = 300, **claims: Any
    ) -> str:
        kid = kid or self.kid(alg)
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.url,
            "aud": self.audience,
            "sub": "user-1",
            "iat": now,
            "exp": now + int(lifetime),
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        stored = self.keys.get(kid)
        # an unknown kid, or one of another algorithm, signs with a stray key
        key = stored[1] if stored is not None and stored[0] == alg else new_key(alg)
        return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, (alg, key) in self.keys.items():
            public = json.loads(jwt.get_algorithm_by_name(alg).to_jwk(key.public_key()))
            keys.append({**public, "kid": kid, "alg": alg, "use": "sig"})
        return {"keys": keys}

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(
            f"/realms/{self.realm}/.well-known/openid-configuration", self._discovery
        )
        app.router.add_get(f"/realms/{self.realm}/jwks", self._jwks)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    async def _discovery(self, _request: web.Request) -> web.Response:
        if self.fail:
            return web.Response(status=503)
        return web.json_response({"issuer": self.url, "jwks_uri": self.url + "/jwks"})

    async def _jwks(self, _request: web.Request) -> web.Response:
        if self.fail:
            return web.Response(status=503)
        self.jwks_fetches += 1
        return web.json_response(self.jwks())
