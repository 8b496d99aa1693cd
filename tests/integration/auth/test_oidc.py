"""OIDC bearer tokens against a local issuer over real HTTP: RS256, ES256 and EdDSA signatures,
iss/aud/exp/nbf with clock skew, key rotation with a new kid, a rate-limited refresh under a
flood of unknown kids, an IdP outage, and 401s with WWW-Authenticate as ProblemDetails."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator

import jwt
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization

from city_os.app import create_app
from tests.conftest import test_settings as settings_for
from tests.integration.auth.issuer import LocalIssuer

Client = TestClient  # type: ignore[type-arg]
ME = "/cityos/v1/me"


@pytest.fixture
async def client(issuer: LocalIssuer) -> AsyncIterator[Client]:
    settings = settings_for(
        auth_enabled=True,
        oidc_issuers=orjson.dumps(
            [issuer.setting(rolesClaim="realm_access.roles", tenants=["saga", ""])]
        ).decode(),
        oidc_refresh_interval=60.0,
        oidc_clock_skew=30.0,
    )
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c


def _hs256(claims: dict[str, object], secret: bytes, kid: str) -> str:
    def part(value: object) -> str:
        return jwt.utils.base64url_encode(orjson.dumps(value)).decode()

    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{part(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{jwt.utils.base64url_encode(mac).decode()}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def me(client: Client, headers: dict[str, str], status: int = 200) -> dict[str, object]:
    resp = await client.get(ME, headers=headers)
    body = await resp.json()
    assert resp.status == status, body
    return body  # type: ignore[no-any-return]


async def refused(client: Client, headers: dict[str, str], detail: str) -> str:
    """401 ProblemDetails naming ``detail``; returns the WWW-Authenticate challenge."""
    resp = await client.get(ME, headers=headers)
    body = await resp.json()
    assert resp.status == 401, body
    assert body["type"] == "https://uri.etsi.org/ngsi-ld/errors/Unauthorized"
    assert detail in body["detail"], body
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="city-os"')
    return challenge


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
async def test_a_signed_token_names_the_principal(
    client: Client, issuer: LocalIssuer, alg: str
) -> None:
    token = issuer.token(
        alg,
        sub="staff-7",
        azp="dashboard",
        realm_access={"roles": ["writer@saga", "reader", "operator", "admin@kyoto"]},
        groups=["disaster"],
    )
    body = await me(client, {**bearer(token), "NGSILD-Tenant": "saga"})
    assert body["subject"] == "staff-7"
    assert body["issuer"] == issuer.url
    assert body["client"] == "dashboard"
    assert body["roles"] == ["writer"]
    assert body["groups"] == ["admin@kyoto", "disaster", "operator", "reader", "writer@saga"]
    assert body["anonymous"] is False
    # the issuer is trusted for saga and the default tenant only: no platform role, no kyoto
    assert body["operator"] is False
    assert (await me(client, {**bearer(token), "NGSILD-Tenant": "kyoto"}))["roles"] == []
    assert (await me(client, bearer(token)))["roles"] == ["reader"]


async def test_no_token_is_anonymous(client: Client) -> None:
    body = await me(client, {})
    assert body["anonymous"] is True
    assert body["subject"] is None


async def test_expired_and_early_tokens(client: Client, issuer: LocalIssuer) -> None:
    challenge = await refused(client, bearer(issuer.token(lifetime=-60)), "expired")
    assert 'error="invalid_token"' in challenge
    assert "error_description=" in challenge
    # within the clock skew (30 s) an expired or not-yet-valid token still passes
    await me(client, bearer(issuer.token(lifetime=-10)))
    await me(client, bearer(issuer.token(nbf=int(time.time()) + 10)))
    await refused(client, bearer(issuer.token(nbf=int(time.time()) + 120)), "not valid yet")


async def test_audience_issuer_and_claims(client: Client, issuer: LocalIssuer) -> None:
    await refused(client, bearer(issuer.token(aud="another-api")), "audience city-os")
    await refused(client, bearer(issuer.token(iss="https://evil.example")), "not trusted")
    await refused(client, bearer(issuer.token(exp=None)), "exp")
    await refused(client, bearer(issuer.token(sub=None)), "sub")
    await me(client, bearer(issuer.token(aud=["other", "city-os"])))


async def test_unsigned_and_confused_tokens(client: Client, issuer: LocalIssuer) -> None:
    claims = {"iss": issuer.url, "aud": "city-os", "sub": "x", "exp": int(time.time()) + 60}
    unsigned = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    await refused(client, bearer(unsigned), "'none' is not accepted")
    # HS256 with the issuer's RSA public key as the secret: the classic algorithm confusion
    _, private = issuer.keys[issuer.kid("RS256")]
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    confused = _hs256(claims, pem, issuer.kid("RS256"))  # PyJWT itself refuses to make it
    await refused(client, bearer(confused), "'HS256' is not accepted")
    # an RS256 token claiming the EC key's kid
    await refused(
        client, bearer(issuer.token("RS256", kid=issuer.kid("ES256"))), "cannot verify RS256"
    )
    tampered = issuer.token(sub="user-1")
    head, _, signature = tampered.split(".")
    forged = jwt.utils.base64url_encode(orjson.dumps({**claims, "sub": "admin"})).decode()
    await refused(client, bearer(f"{head}.{forged}.{signature}"), "invalid")
    await refused(client, bearer("not-a-jwt"), "not a JWT")


async def test_malformed_authorization(client: Client) -> None:
    challenge = await refused(client, {"Authorization": "Basic dXNlcjpwdw=="}, "Bearer <token>")
    assert 'error="invalid_request"' in challenge
    await refused(client, {"Authorization": "Bearer"}, "Bearer <token>")


async def test_key_rotation_and_kid_flood(client: Client, issuer: LocalIssuer) -> None:
    await me(client, bearer(issuer.token("ES256")))
    assert issuer.jwks_fetches == 1
    await me(client, bearer(issuer.token("EdDSA")))
    assert issuer.jwks_fetches == 1  # cached

    new_kid = issuer.add_key("RS256")  # the IdP rotates: a token with a kid never seen
    body = await me(client, bearer(issuer.token("RS256", kid=new_kid, sub="rotated")))
    assert body["subject"] == "rotated"
    assert issuer.jwks_fetches == 2  # fetched again at once for the unknown kid

    # a flood of made-up kids right after: refused, and the IdP is not asked again
    for _ in range(25):
        await refused(
            client, bearer(issuer.token(kid="bogus-" + uuid.uuid4().hex)), "no signing key"
        )
    assert issuer.jwks_fetches == 2


async def test_concurrent_first_requests_share_the_first_fetch(
    client: Client, issuer: LocalIssuer
) -> None:
    """Requests arriving while the keys are being fetched wait for that fetch; none is refused
    because its own fetch was rate-limited away."""
    tokens = [issuer.token(alg, sub=f"u{n}") for n in range(10) for alg in ("RS256", "EdDSA")]
    statuses = await asyncio.gather(*(client.get(ME, headers=bearer(t)) for t in tokens))
    assert [r.status for r in statuses] == [200] * len(tokens)
    assert issuer.jwks_fetches == 1


async def test_known_keys_outlive_an_idp_outage(client: Client, issuer: LocalIssuer) -> None:
    await me(client, bearer(issuer.token("RS256")))
    issuer.fail = True
    await me(client, bearer(issuer.token("RS256", sub="during-outage")))
    await refused(client, bearer(issuer.token(kid="rotated-during-outage")), "no signing key")


async def test_a_cached_token_still_expires(issuer: LocalIssuer) -> None:
    """The same token again is answered from the verifier's cache, but never past its exp."""
    settings = settings_for(
        auth_enabled=True,
        oidc_issuers=orjson.dumps([issuer.setting()]).decode(),
        oidc_clock_skew=0.0,
    )
    async with TestClient(TestServer(create_app(settings))) as c:
        token = issuer.token(lifetime=2)
        for _ in range(3):
            await me(c, bearer(token))
        deadline = time.time() + 10
        while time.time() < deadline:
            resp = await c.get(ME, headers=bearer(token))
            if resp.status == 401:
                assert "expired" in (await resp.json())["detail"]
                break
        else:
            pytest.fail("an expired token stayed accepted")
