"""Credentials → ``Principal``: OIDC bearer tokens, API keys, or none; and the start-up rule.

Layer: auth/ (no aiohttp server types: the middleware in api/guard.py hands over the header
values). ``Authorization: Bearer <JWT>`` is an OIDC token; ``Authorization: Bearer cityos_…``
or ``X-API-Key: cityos_…`` is an API key (machine clients). No credentials at all: the
anonymous principal, which may read what is public. Bad credentials are never downgraded to
anonymous: they get 401, so a client learns its token expired instead of silently seeing less.

With authentication off every request is ``UNRESTRICTED`` (the broker as it was); that is
allowed only on a loopback address unless ``CITYOS_AUTH_INSECURE`` says a gateway in front
authenticates (``check_exposure``).
"""

from __future__ import annotations

import ipaddress
from typing import Protocol

from city_os.auth.oidc import TokenVerifier
from city_os.auth.principal import ANONYMOUS, UNRESTRICTED, Principal
from city_os.config import Settings
from city_os.errors import Unauthorized

API_KEY_PREFIX = "cityos_"


class KeyAuthenticator(Protocol):
    async def authenticate(self, key: str, origin: str | None) -> Principal: ...


class Authenticator:
    def __init__(
        self,
        *,
        enabled: bool,
        tokens: TokenVerifier | None = None,
        api_keys: KeyAuthenticator | None = None,
    ) -> None:
        self.enabled = enabled
        self.tokens = tokens  # set by the app once their resources exist
        self.api_keys = api_keys

    async def principal(
        self, authorization: str | None, api_key: str | None, origin: str | None
    ) -> Principal:
        if not self.enabled:
            return UNRESTRICTED
        if api_key is not None:
            if authorization is not None:
                raise Unauthorized(
                    "send either Authorization or X-API-Key, not both", error="invalid_request"
                )
            return await self._key(api_key.strip(), origin)
        if authorization is None:
            return ANONYMOUS
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            raise Unauthorized(
                "the Authorization header must be 'Bearer <token>'", error="invalid_request"
            )
        if credentials.startswith(API_KEY_PREFIX):
            return await self._key(credentials, origin)
        if self.tokens is None:
            raise Unauthorized("no OIDC issuer is configured; bearer tokens cannot be verified")
        return await self.tokens.principal(credentials)

    async def _key(self, key: str, origin: str | None) -> Principal:
        if self.api_keys is None:
            raise Unauthorized("API keys are not available")
        return await self.api_keys.authenticate(key, origin)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name or "" (every address): exposed


def check_exposure(settings: Settings) -> str | None:
    """Refuse (SystemExit) to serve without authentication on a non-loopback address unless
    ``auth_insecure``; otherwise the warning to log when authentication is off, or None."""
    if settings.auth_enabled:
        return None
    if not is_loopback(settings.host) and not settings.auth_insecure:
        raise SystemExit(
            f"refusing to start: authentication is off (CITYOS_AUTH_ENABLED=false) and "
            f"CITYOS_HOST={settings.host!r} is not a loopback address, so anyone who can reach "
            f"it could read, change or purge every tenant. Turn authentication on, listen on "
            f"127.0.0.1, or set CITYOS_AUTH_INSECURE=true if a gateway in front authenticates."
        )
    return (
        "authentication is off (CITYOS_AUTH_ENABLED=false): every request may read, change "
        f"and purge every tenant; listening on {settings.host}"
    )
