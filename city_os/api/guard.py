"""The access guard middleware: who is calling (authentication) and how often (rate limit).

Layer: api/. Every request gets its ``Principal`` under ``PRINCIPAL`` (``principal_of``), from
``Authorization``/``X-API-Key`` and ``Origin``; bad credentials are a 401 ProblemDetails with
``WWW-Authenticate``. With a rate limit set, each client (``Principal.rate_key``, else the remote
address; failed authentications count against the address) takes a token per request; the
answer carries ``X-RateLimit-Limit/Remaining/Reset``, and an empty bucket is a 429 with
``Retry-After``. Liveness and readiness probes are exempt from the limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from city_os.api.keys import PRINCIPAL
from city_os.auth.authenticate import Authenticator
from city_os.auth.principal import ANONYMOUS, UNRESTRICTED, Principal
from city_os.auth.ratelimit import RateLimiter, Verdict
from city_os.errors import NgsiLdError, TooManyRequests

_PROBES = frozenset({"/health", "/ready"})


def principal_of(request: web.Request) -> Principal:
    """The caller; UNRESTRICTED for apps built without the guard (authentication off)."""
    return request[PRINCIPAL] if PRINCIPAL in request else UNRESTRICTED


# Told of every error a request ends with, and by whom (api/audit.py audits the 401s and 403s).
OnRefused = Callable[[web.Request, Principal, NgsiLdError], None]


def access_guard(
    authenticator: Authenticator,
    limiter: RateLimiter | None,
    on_refused: OnRefused | None = None,
) -> Middleware:
    def take(client: str) -> Verdict | None:
        if limiter is None:
            return None
        verdict = limiter.take(client, time.monotonic())
        if not verdict.allowed:
            err = TooManyRequests(
                f"more than {limiter.burst} requests at once or {limiter.rate:g} per second "
                f"from {client}; retry in {verdict.retry_after} s",
                retry_after=verdict.retry_after,
            )
            err.headers.update(verdict.headers())
            raise err
        return verdict

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        address = "address:" + (request.remote or "unknown")
        probe = request.path.rstrip("/") in _PROBES
        headers = request.headers
        try:
            principal = await authenticator.principal(
                headers.get("Authorization"), headers.get("X-API-Key"), headers.get("Origin")
            )
        except NgsiLdError as err:
            if on_refused is not None:
                on_refused(request, ANONYMOUS, err)
            if not probe:
                take(address)
            raise
        request[PRINCIPAL] = principal
        verdict = None if probe else take(principal.rate_key or address)
        try:
            response = await handler(request)
        except NgsiLdError as err:
            if on_refused is not None and not principal.unrestricted:
                on_refused(request, principal, err)
            if verdict is not None:
                err.headers.update(verdict.headers())
            raise
        if verdict is None:
            return response
        if not response.prepared:
            response.headers.update(verdict.headers())
        return response

    return guard
