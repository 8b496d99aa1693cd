"""Start-up of the federation room inside an app: the registration service and the
per-replica registration index (LISTEN keeps it current), hooked together so the index is
refreshed right after each of this process's own commits, and the sweep that deletes expired
registrations.

Layer: federation/ (wiring, like app.py's cleanup contexts; no request handling).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from city_os.api.keys import ENTITIES, POOL, REGISTRATION_INDEX, REGISTRATIONS, SETTINGS, TENANTS
from city_os.core.subscriptions import SubscriptionService
from city_os.federation.csource_subscriptions import temporal_member
from city_os.federation.index import RegistrationIndex
from city_os.federation.registrations import RegistrationService
from city_os.ngsild.entity import now_iso
from city_os.store.postgres.csource import RegistrationRepository

log = logging.getLogger(__name__)
Context = Callable[[web.Application], AsyncIterator[None]]


def federation_context(outbound: web.AppKey[Any]) -> Context:
    """cleanup_ctx: after the database context; ``outbound`` is the app's key of the outbound
    network policy (its ``check_url`` refuses registration endpoints it would not call)."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        repo = RegistrationRepository(app[POOL])
        policy = app.get(outbound)
        service = RegistrationService(
            repo,
            app[TENANTS],
            app[ENTITIES],
            settings.base_url,
            policy.check_url if policy is not None else None,
        )
        index = RegistrationIndex(repo, app[TENANTS], settings.database_url)
        await index.start()
        service.on_change.append(index.refresh)
        app[REGISTRATIONS] = service
        app[REGISTRATION_INDEX] = index
        sweep = asyncio.create_task(_sweep_expired(service, settings.expiry_interval))
        yield
        sweep.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweep
        await index.close()

    return context


async def _sweep_expired(service: RegistrationService, interval: float) -> None:
    """Registrations past their expiresAt are deleted (§5.9.2.4), like transient entities
    (core/expiry.py), on the same interval; reads hide them before the sweep comes."""
    while True:
        try:
            for tenant, schema in await service.tenants.all():
                await service.sweep_expired(tenant, schema, now_iso())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("registration expiry sweep failed; retrying")
        await asyncio.sleep(interval)


def csource_subscription_service(entity_subscriptions: SubscriptionService) -> SubscriptionService:
    """The SubscriptionService of /csourceSubscriptions, on the same store and collaborators
    as the entity subscriptions' one."""
    s = entity_subscriptions
    service = SubscriptionService(
        s.repo,
        s.tenants,
        s.contexts,
        s.registry,
        s.source,
        s.check_endpoint,
        csource=True,
        extra=temporal_member,
    )
    service.resolve_endpoint = s.resolve_endpoint
    return service
