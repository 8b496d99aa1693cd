"""Start-up of the federation room inside an app: the registration service and the
per-replica registration index (LISTEN keeps it current), hooked together so the index is
refreshed right after each of this process's own commits.

Layer: federation/ (wiring, like app.py's cleanup contexts; no request handling).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from city_os.api.keys import ENTITIES, POOL, REGISTRATION_INDEX, REGISTRATIONS, SETTINGS, TENANTS
from city_os.core.subscriptions import SubscriptionService
from city_os.federation.csource_subscriptions import temporal_member
from city_os.federation.index import RegistrationIndex
from city_os.federation.registrations import RegistrationService
from city_os.store.postgres.csource import RegistrationRepository

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
        yield
        await index.close()

    return context


def csource_subscription_service(entity_subscriptions: SubscriptionService) -> SubscriptionService:
    """The SubscriptionService of /csourceSubscriptions, on the same store and collaborators
    as the entity subscriptions' one."""
    s = entity_subscriptions
    return SubscriptionService(
        s.repo,
        s.tenants,
        s.contexts,
        s.registry,
        s.source,
        s.check_endpoint,
        csource=True,
        extra=temporal_member,
    )
