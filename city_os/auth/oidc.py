"""OIDC bearer tokens: each issuer's signing keys (JWKS) and the verification of a JWT.

Layer: auth/. Keys are discovered from ``{issuer}/.well-known/openid-configuration`` →
``jwks_uri``, fetched with aiohttp, kept for ``jwks_ttl`` seconds, and fetched again at once
when a token names an unknown ``kid`` (key rotation) — but at most once per
``refresh_interval`` per issuer, with concurrent requests sharing one fetch, so a flood of
tokens with made-up kids costs the IdP one request per interval. A failed refresh keeps the
keys already known. Signatures are checked by PyJWT with ``cryptography`` (RS256, ES256,
EdDSA only: no ``none``, no HMAC, and the key type must fit the token's ``alg``, so an RSA
public key can never be used as an HMAC secret). ``iss``, ``aud``, ``exp`` (required), ``nbf``
and ``iat`` are checked with ``clock_skew`` leeway.

The IdP is configured by the operator (often on the internal network), so its URLs are fetched
directly, not through the outbound network policy that guards client-supplied URLs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import jwt
import orjson

from city_os.auth.issuers import Issuer
from city_os.auth.principal import Principal, claim, parse_roles, strings
from city_os.errors import Unauthorized

log = logging.getLogger(__name__)

# alg → (kty, crv) a key must have to verify it
ALGORITHMS: Final[Mapping[str, tuple[str, str | None]]] = {
    "RS256": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "EdDSA": ("OKP", "Ed25519"),
}
_FETCH_TIMEOUT: Final = 5.0
_MAX_JWKS_BYTES: Final = 256 * 1024
# Verified tokens are remembered (token → principal) so that a client sending the same token
# on every request pays for one signature check; bounded, and never past the token's exp.
_TOKEN_CACHE_SIZE: Final = 10_000
_TOKEN_CACHE_SECONDS: Final = 60.0


@dataclass(slots=True)
class _KeySet:
    issuer: Issuer
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # kid ("" if none) → JWK
    parsed: dict[tuple[str, str], jwt.PyJWK] = field(default_factory=dict)
    fetched: float = float("-inf")  # monotonic time of the last successful fetch
    attempted: float = float("-inf")  # ... of the last attempt
    kid_refreshed: float = float("-inf")  # ... of the last attempt for an unknown kid
    jwks_uri: str | None = None
    inflight: asyncio.Future[None] | None = None


class KeyStore:
    """The signing keys of every configured issuer, fetched on demand."""

    def __init__(
        self,
        issuers: Mapping[str, Issuer],
        *,
        ttl: float = 3600.0,
        refresh_interval: float = 30.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._sets = {iss: _KeySet(issuer) for iss, issuer in issuers.items()}
        self._ttl = ttl
        self._refresh_interval = refresh_interval
        self._session = session
        self._owns_session = session is None
        self.fetches = 0  # JWKS documents fetched (tests and metrics read it)

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    def issuer(self, iss: str) -> Issuer | None:
        found = self._sets.get(iss)
        return found.issuer if found is not None else None

    async def key(self, iss: str, kid: str, alg: str) -> jwt.PyJWK:
        """The key ``kid`` of issuer ``iss`` able to verify ``alg``; Unauthorized if none."""
        keyset = self._sets[iss]
        now = time.monotonic()
        # The first load and the TTL refresh go out at most once per interval (an IdP outage
        # is not hammered); refreshes for unknown kids are rate-limited on their own, so the
        # first one after a load goes out at once (a rotation is seen at once) and a flood of
        # bogus kids costs one fetch per interval.
        if keyset.inflight is not None:  # a fetch under way: its keys are the newest
            await asyncio.shield(keyset.inflight)
        elif now - keyset.fetched >= self._ttl:
            if now - keyset.attempted >= self._refresh_interval:
                await self._refresh(keyset)
        elif kid not in keyset.keys and now - keyset.kid_refreshed >= self._refresh_interval:
            keyset.kid_refreshed = now
            await self._refresh(keyset)
        jwk_data = keyset.keys.get(kid)
        if jwk_data is None:
            raise Unauthorized(f"issuer {iss} has no signing key {kid or '(without kid)'}")
        parsed = keyset.parsed.get((kid, alg))
        if parsed is None:
            parsed = keyset.parsed[(kid, alg)] = _parse_key(jwk_data, alg, iss, kid)
        return parsed

    async def _refresh(self, keyset: _KeySet) -> None:
        if keyset.inflight is None:
            keyset.attempted = time.monotonic()
            keyset.inflight = asyncio.ensure_future(self._fetch(keyset))
            keyset.inflight.add_done_callback(lambda _: setattr(keyset, "inflight", None))
        # Shielded: one client giving up must not cancel the fetch the others wait for.
        await asyncio.shield(keyset.inflight)

    async def _fetch(self, keyset: _KeySet) -> None:
        iss = keyset.issuer.issuer
        try:
            if keyset.jwks_uri is None:
                discovery = await self._get_json(keyset.issuer.discovery_url)
                if discovery.get("issuer") != iss or not isinstance(discovery.get("jwks_uri"), str):
                    raise ValueError("the discovery document names another issuer or no jwks_uri")
                keyset.jwks_uri = discovery["jwks_uri"]
            jwks = await self._get_json(keyset.jwks_uri)
            keys = jwks.get("keys")
            if not isinstance(keys, list):
                raise ValueError("the JWKS has no keys list")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            keyset.jwks_uri = None  # discover again next time: the IdP may have moved it
            log.warning("signing keys of issuer %s not refreshed: %s", iss, exc or type(exc))
            return
        self.fetches += 1
        keyset.keys = {
            str(k.get("kid", "")): k
            for k in keys
            if isinstance(k, dict) and k.get("use", "sig") == "sig"
        }
        keyset.parsed = {}
        keyset.fetched = time.monotonic()

    async def _get_json(self, url: str) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=_FETCH_TIMEOUT)
        async with self._session.get(url, timeout=timeout) as response:
            if response.status != 200:
                raise ValueError(f"{url} answered HTTP {response.status}")
            body = await response.content.read(_MAX_JWKS_BYTES + 1)
        if len(body) > _MAX_JWKS_BYTES:
            raise ValueError(f"{url} is larger than {_MAX_JWKS_BYTES} bytes")
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ValueError(f"{url} is not JSON") from None
        if not isinstance(document, dict):
            raise ValueError(f"{url} is not a JSON object")
        return document


def _parse_key(jwk_data: dict[str, Any], alg: str, iss: str, kid: str) -> jwt.PyJWK:
    kty, crv = ALGORITHMS[alg]
    if jwk_data.get("kty") != kty or (crv is not None and jwk_data.get("crv") != crv):
        raise Unauthorized(f"key {kid} of issuer {iss} cannot verify {alg}")
    if jwk_data.get("alg", alg) != alg:
        raise Unauthorized(f"key {kid} of issuer {iss} is for {jwk_data['alg']}, not {alg}")
    try:
        return jwt.PyJWK(jwk_data, algorithm=alg)
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"key {kid} of issuer {iss} is unusable: {exc}") from None


class TokenVerifier:
    """Bearer JWT → ``Principal``, or Unauthorized saying why."""

    def __init__(self, keys: KeyStore, *, clock_skew: float = 30.0) -> None:
        self._keys = keys
        self._skew = clock_skew
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        # Called with each newly verified token's principal (auth/owners.py records its roles).
        self.on_verified: Callable[[Principal], Awaitable[None]] | None = None

    async def principal(self, token: str) -> Principal:
        cached = self._cache.get(token)
        if cached is not None:
            principal, until = cached
            if time.monotonic() < until and time.time() < (principal.expires or 0) + self._skew:
                return principal
            del self._cache[token]
        principal = await self._verify(token)
        if self.on_verified is not None:
            await self.on_verified(principal)
        self._cache[token] = (principal, time.monotonic() + _TOKEN_CACHE_SECONDS)
        if len(self._cache) > _TOKEN_CACHE_SIZE:
            self._cache.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the bearer token is not a JWT: {exc}") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            raise Unauthorized(
                f"token algorithm {alg!r} is not accepted; use one of RS256, ES256, EdDSA"
            )
        iss = unverified.get("iss")
        issuer = self._keys.issuer(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise Unauthorized(f"token issuer {iss!r} is not trusted")
        kid = header.get("kid", "")
        key = await self._keys.key(issuer.issuer, str(kid), alg)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=issuer.audience,
                issuer=issuer.issuer,
                leeway=self._skew,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("the token is not valid yet (nbf or iat in the future)") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized(f"the token is not for audience {issuer.audience}") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the token is invalid: {exc}") from None
        return principal_from_claims(claims, issuer)


def principal_from_claims(claims: Mapping[str, Any], issuer: Issuer) -> Principal:
    roles, operator, raw_roles = parse_roles(claim(claims, issuer.roles_claim))
    if issuer.tenants is not None:
        roles = {t: r for t, r in roles.items() if t in issuer.tenants}
        operator = False  # a platform role needs an issuer trusted for the whole platform
    client = claims.get("azp", claims.get("client_id"))
    groups = frozenset(strings(claim(claims, issuer.groups_claim))) | raw_roles
    exp = claims.get("exp")
    return Principal(
        subject=str(claims["sub"]),
        issuer=issuer.issuer,
        client=client if isinstance(client, str) else None,
        roles=roles,
        operator=operator,
        groups=groups,
        tenants=issuer.tenants,
        citizen=issuer.citizens,
        expires=float(exp) if isinstance(exp, int | float) else None,
    )
