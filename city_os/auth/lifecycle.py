"""Start-up of access control inside an app: the OIDC key store, permissions, API keys,
consents, the refusal trail and the access log's partition maintenance; and, for a separate
``city-os notifier``, the decision's stores it filters notifications with.

Layer: auth/ (wiring, like app.py's cleanup contexts; no request handling).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web
from aiohttp.abc import AbstractResolver

from city_os.api.keys import (
    API_KEYS,
    AUDIT,
    CONSENTS,
    ENTITIES,
    PERMISSIONS,
    POOL,
    SETTINGS,
    TENANTS,
)
from city_os.auth.apikeys import ApiKeys
from city_os.auth.audit import AuditService, RefusalTrail
from city_os.auth.authenticate import Authenticator
from city_os.auth.consent import ConsentService
from city_os.auth.enforce import EntityAccess
from city_os.auth.issuers import Issuer
from city_os.auth.network import OutboundPolicy
from city_os.auth.oidc import KeyStore, TokenVerifier
from city_os.auth.owners import OwnerRights
from city_os.auth.permissions import PermissionService
from city_os.config import Settings
from city_os.store.postgres.auth_consent import ConsentRepository, DataSubjectRepository
from city_os.store.postgres.auth_identities import IdentityRepository
from city_os.store.postgres.auth_keys import ApiKeyRepository
from city_os.store.postgres.auth_log import LogPartitions
from city_os.store.postgres.auth_permissions import PermissionRepository

log = logging.getLogger(__name__)
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
ISSUERS = web.AppKey("issuers", dict[str, Issuer])
OUTBOUND = web.AppKey("outbound", OutboundPolicy)
# The DNS resolver of the endpoint checks at subscription time (the system's when unset; the
# SSRF tests set a static one, as they do for the outbound client).
RESOLVER = web.AppKey("resolver", AbstractResolver)


async def authentication_context(app: web.Application) -> AsyncIterator[None]:
    """The OIDC key store (its HTTP session lives as long as the app)."""
    settings = app[SETTINGS]
    authenticator = app[AUTHENTICATOR]
    keys = None
    issuers = app[ISSUERS]
    if settings.auth_enabled:
        if issuers:
            keys = KeyStore(
                issuers, ttl=settings.oidc_jwks_ttl, refresh_interval=settings.oidc_refresh_interval
            )
            authenticator.tokens = TokenVerifier(keys, clock_skew=settings.oidc_clock_skew)
    yield
    if keys is not None:
        await keys.close()


async def _maintain(partitions: LogPartitions) -> None:
    """Keep the access and audit logs' monthly partitions ahead and within retention."""
    while True:
        try:
            await partitions.maintain()
        except Exception:
            log.exception("access log partition maintenance failed; retrying in an hour")
            await asyncio.sleep(3600)
            continue
        await asyncio.sleep(86400)


async def access_context(app: web.Application) -> AsyncIterator[None]:
    """Access control's stores and per-process caches (kept current by NOTIFY)."""
    settings = app[SETTINGS]
    app[PERMISSIONS] = PermissionService(
        PermissionRepository(app[POOL]), app[TENANTS], settings.database_url
    )
    await app[PERMISSIONS].start()
    keys = app[API_KEYS] = ApiKeys(ApiKeyRepository(app[POOL]), settings.database_url)
    await keys.start()
    app[AUTHENTICATOR].api_keys = keys
    citizen_issuers = frozenset(i.issuer for i in app[ISSUERS].values() if i.citizens)
    app[CONSENTS] = ConsentService(
        ConsentRepository(app[POOL]),
        DataSubjectRepository(app[POOL]),
        app[PERMISSIONS],
        app[TENANTS],
        app[POOL],
        citizen_issuers,
    )
    access = None
    if settings.auth_enabled:  # off: no hook at all, every path exactly as before
        access = app[ENTITIES].access = EntityAccess(app[POOL], app[PERMISSIONS], app[CONSENTS])
        access.owners = owner_rights(app[POOL], settings)
        tokens = app[AUTHENTICATOR].tokens
        if tokens is not None:  # subscriptions' notifications follow their owner's roles
            tokens.on_verified = access.owners.seen
    trail = RefusalTrail(app[POOL])
    app[AUDIT] = AuditService(app[POOL], trail)
    if access is not None:
        access.trail = trail
    partitions = LogPartitions(app[POOL], settings.access_log_retention_days)
    tasks = [
        asyncio.create_task(keys.run()),
        asyncio.create_task(_maintain(partitions)),
        asyncio.create_task(trail.run()),
    ]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await trail.close()
    await keys.close()
    await app[PERMISSIONS].close()


async def notifier_access_context(app: web.Application) -> AsyncIterator[None]:
    """``city-os notifier`` with authentication on: the decision's stores and caches, to
    filter notifications for their subscriptions' owners (the API's ``_access`` does this in
    an all-in-one process)."""
    settings = app[SETTINGS]
    if not settings.auth_enabled:
        yield
        return
    pool = app[POOL]
    permissions = PermissionService(PermissionRepository(pool), app[TENANTS], settings.database_url)
    await permissions.start()
    consents = ConsentService(
        ConsentRepository(pool),
        DataSubjectRepository(pool),
        permissions,
        app[TENANTS],
        pool,
        frozenset(),
    )
    access = app[ENTITIES].access = EntityAccess(pool, permissions, consents)
    access.owners = owner_rights(pool, settings)
    yield
    await permissions.close()


def owner_rights(pool: asyncpg.Pool, settings: Settings) -> OwnerRights:
    grace = settings.owner_roles_grace_hours * 3600
    return OwnerRights(IdentityRepository(pool), ApiKeyRepository(pool), grace)
