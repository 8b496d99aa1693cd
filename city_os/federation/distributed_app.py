"""Start-up of distributed operations inside an app: the source client and the hooks.

Layer: federation/ (wiring, like federation/lifecycle.py; no request handling). After the
registration index exists, ``distributed_context`` creates the outbound client (network policy,
per-host pools, timeouts and concurrency from CITYOS_FEDERATION_*), the ``Federation`` named by
this broker's public origin (its identity in ``Via``), and installs it in the entity, query
and temporal services and under ``FEDERATION`` for the API's forwarded writes; and the
distributed subscriptions (hooked on the Subscription service's changes) with the relay of the
notifications sources send back (stored by this process's notifier when it has one).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from city_os.api.federation import ENTITY_MAPS, FEDERATION
from city_os.api.keys import (
    CONTEXTS,
    CSOURCE_SUBSCRIPTIONS,
    DISCOVERY,
    ENTITIES,
    POOL,
    QUERIES,
    REGISTRATION_INDEX,
    SETTINGS,
    SUBSCRIPTIONS,
    TEMPORAL,
)
from city_os.api.ops import METRICS, NOTIFIER
from city_os.api.remote_notify import DISTRIBUTED_SUBSCRIPTIONS, RELAY
from city_os.auth.network import OutboundPolicy
from city_os.federation.client import SourceClient
from city_os.federation.distributed import Federation
from city_os.federation.distributed_subscriptions import DistributedSubscriptions
from city_os.federation.distributed_temporal import TemporalFederation
from city_os.federation.entitymap import EntityMapService
from city_os.federation.subscription_relay import NotificationRelay
from city_os.federation.via import identity
from city_os.notifier.access import NotificationAccess
from city_os.notifier.compile import Compiler
from city_os.notifier.dispatch import Dispatcher
from city_os.store.postgres.distributed_subscriptions import RemoteCopyRepository
from city_os.store.postgres.entitymaps import EntityMapRepository
from city_os.store.postgres.notifications import NotificationStore

Context = Callable[[web.Application], AsyncIterator[None]]


def distributed_context(outbound: web.AppKey[Any]) -> Context:
    """cleanup_ctx: after ``federation_context``."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        policy = app.get(outbound) or OutboundPolicy()
        client = SourceClient(
            policy,
            app.get(METRICS),
            timeout=settings.federation_timeout,
            per_host=settings.federation_connections_per_host,
            parallelism=settings.federation_concurrency,
        )
        federation = Federation(app[REGISTRATION_INDEX], client, identity(settings.base_url))
        app[FEDERATION] = federation
        app[ENTITIES].federation = federation
        app[QUERIES].federation = federation
        app[DISCOVERY].federation = federation
        if TEMPORAL in app:
            app[TEMPORAL].federation = TemporalFederation(federation)
        app[ENTITY_MAPS] = EntityMapService(
            EntityMapRepository(app[POOL]), app[QUERIES], federation, settings.base_url
        )
        distributed = _distributed_subscriptions(app, federation)
        yield
        await distributed.close()
        app[ENTITIES].federation = None
        app[QUERIES].federation = None
        if TEMPORAL in app:
            app[TEMPORAL].federation = None
        await client.close()

    return context


def _distributed_subscriptions(
    app: web.Application, federation: Federation
) -> DistributedSubscriptions:
    settings, subscriptions = app[SETTINGS], app[SUBSCRIPTIONS]
    copies = RemoteCopyRepository(app[POOL])
    distributed = DistributedSubscriptions(
        federation, subscriptions, app[CSOURCE_SUBSCRIPTIONS], copies, settings.base_url
    )
    subscriptions.on_change.append(distributed.changed)
    app[DISTRIBUTED_SUBSCRIPTIONS] = distributed
    # Without a notifier here, the rows stay leased to no live replica: one takes them over.
    fallback = NotificationStore(app[POOL], uuid.uuid4(), settings.notifier_lease)

    def delivery() -> tuple[NotificationStore, Dispatcher | None]:
        notifier = app.get(NOTIFIER)
        return (fallback, None) if notifier is None else (notifier.store, notifier.dispatcher)

    compiler = Compiler(app[CONTEXTS], settings.notifier_timeout)
    relay = app[RELAY] = NotificationRelay(
        copies, subscriptions.repo, app[ENTITIES], compiler, delivery
    )
    access = app[ENTITIES].access
    if access is not None:  # authentication on
        relay.access = NotificationAccess(access)
    return distributed
