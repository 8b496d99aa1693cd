"""Application factory: ``create_app(settings)`` wires pools, caches and services explicitly.

Everything with a lifecycle (PostgreSQL pool, @context loader, background tasks) is created in
aiohttp's cleanup_ctx and stored under typed AppKeys; nothing happens at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Middleware

from city_os.api import (
    apikeys,
    audit,
    batch,
    contexts,
    csource,
    csource_subscriptions,
    discovery,
    docs,
    entities,
    entitymaps,
    indexes,
    info,
    me,
    ops,
    permissions,
    push,
    query,
    remote_notify,
    schemas,
    streams,
    subjects,
    subscriptions,
    temporal,
)
from city_os.api.federation import add_warnings
from city_os.api.guard import access_guard
from city_os.api.keys import (
    CONTEXT_REGISTRY,
    CONTEXTS,
    CSOURCE_SUBSCRIPTIONS,
    DISCOVERY,
    ENTITIES,
    INDEXES,
    POOL,
    QUERIES,
    SCHEMAS,
    SETTINGS,
    STARTED,
    STREAMS,
    SUBSCRIPTIONS,
    TENANTS,
)
from city_os.api.middleware import ERROR_RENDERERS, ErrorRenderer, problem_details, request_metrics
from city_os.api.ops import KAFKA_REQUIRED, METRICS, NOTIFIER_REQUIRED
from city_os.api.rules import route_rules
from city_os.auth.authenticate import Authenticator, check_exposure
from city_os.auth.issuers import parse_issuers
from city_os.auth.lifecycle import (
    AUTHENTICATOR,
    ISSUERS,
    OUTBOUND,
    RESOLVER,
    access_context,
    authentication_context,
    notifier_access_context,
)
from city_os.auth.network import OutboundPolicy, outbound_session
from city_os.auth.ratelimit import RateLimiter
from city_os.config import Settings
from city_os.core.context_registry import USAGE_FLUSH_INTERVAL, ContextCatalog, ContextRegistry
from city_os.core.contexts import ContextLoader
from city_os.core.discovery import DiscoveryService
from city_os.core.entities import EntityService
from city_os.core.expiry import run_expiry
from city_os.core.indexes import ValueIndexService
from city_os.core.query import QueryService
from city_os.core.streams import StreamHub
from city_os.core.subscriptions import SubscriptionService
from city_os.events.relay import backlog_collector
from city_os.federation.distributed_app import distributed_context
from city_os.federation.lifecycle import csource_subscription_service, federation_context
from city_os.ngsiv2 import routes as ngsiv2
from city_os.notifier.lifecycle import notifier_context, relay_context
from city_os.observability.loop_stall import install as install_probe
from city_os.observability.metrics import (
    Metrics,
    context_cache_collector,
    pool_collector,
    written_observer,
)
from city_os.registry.active import ActiveSchemas
from city_os.registry.service import SchemaRegistry
from city_os.runtime import tune_collector
from city_os.snapshots import api as snapshots
from city_os.store.postgres.contexts import ContextRepository
from city_os.store.postgres.db import Tenants, create_pool, migrate
from city_os.store.postgres.discovery import DiscoveryRepository
from city_os.store.postgres.entities import EntityRepository
from city_os.store.postgres.indexes import ValueIndexRepository
from city_os.store.postgres.query import QueryRepository
from city_os.store.postgres.schemas import SchemaRepository
from city_os.store.postgres.streams import StreamStore
from city_os.store.postgres.subscriptions import SubscriptionRepository
from city_os.temporal.lifecycle import temporal_context

log = logging.getLogger(__name__)


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = await create_pool(
        settings.database_url,
        settings.db_pool_min,
        settings.db_pool_max,
        acquire_timeout=settings.db_acquire_timeout,
    )
    async with pool.acquire() as conn:
        await migrate(conn)
    app[POOL] = pool
    app[TENANTS] = Tenants(pool)
    app[ENTITIES] = EntityService(EntityRepository(pool), app[TENANTS], settings.base_url)
    value_indexes = ValueIndexRepository(pool, settings.database_url)
    app[INDEXES] = ValueIndexService(value_indexes, app[TENANTS])
    await app[INDEXES].start()
    queries = QueryRepository(pool, value_indexes)
    app[QUERIES] = QueryService(app[ENTITIES], queries)
    app[DISCOVERY] = DiscoveryService(app[ENTITIES], DiscoveryRepository(pool))
    yield
    await app[INDEXES].close()
    await app[ENTITIES].repo.waker.close()
    await pool.close()


async def _contexts(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    repository = ContextRepository(app[POOL])
    catalog = ContextCatalog(repository)
    # Remote @contexts are client-chosen URLs: fetched through the outbound network policy.
    session = outbound_session(
        app[OUTBOUND],
        # Per-host pools: a host that never answers queues behind itself only.
        connector_options={"limit": 256, "limit_per_host": settings.context_connections_per_host},
    )
    loader = ContextLoader(
        timeout=settings.context_fetch_timeout,
        max_bytes=settings.context_max_bytes,
        ttl=settings.context_cache_ttl,
        max_term_maps=settings.context_cache_entries,
        max_documents=settings.context_cache_entries,
        max_cache_bytes=settings.context_cache_bytes,
        deadline=settings.context_resolve_timeout,
        connections_per_host=settings.context_connections_per_host,
        limits=settings.limits,
        store=catalog,
        on_use=catalog.used,
        session=session,
    )
    registry = ContextRegistry(repository, catalog, loader, settings.base_url)
    await registry.start()
    app[METRICS].collectors.append(context_cache_collector(loader.stats))
    app[CONTEXTS] = loader
    app[CONTEXT_REGISTRY] = registry
    flusher = asyncio.create_task(catalog.run(USAGE_FLUSH_INTERVAL))
    yield
    flusher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await flusher
    await loader.close()
    await session.close()


async def _schemas(app: web.Application) -> AsyncIterator[None]:
    """Active schemas in memory (LISTEN keeps them current), hooked into every entity write."""
    repository = SchemaRepository(app[POOL])
    active = ActiveSchemas(repository, app[CONTEXTS], app[SETTINGS].database_url)
    await active.start()
    app[SCHEMAS] = SchemaRegistry(repository, active, app[TENANTS])
    app[ENTITIES].validators.append(active.validate)
    yield
    await active.close()


async def _subscriptions(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[SUBSCRIPTIONS] = SubscriptionService(
        SubscriptionRepository(app[POOL]),
        app[TENANTS],
        app[CONTEXTS],
        app[CONTEXT_REGISTRY],
        settings.base_url,
        app[OUTBOUND].check_url,
    )
    # endpoint host names resolving only to refused addresses: 400 at creation (tests: RESOLVER)
    resolver = app.get(RESOLVER)
    app[SUBSCRIPTIONS].resolve_endpoint = functools.partial(
        app[OUTBOUND].check_resolved, resolver=resolver
    )
    app[CSOURCE_SUBSCRIPTIONS] = csource_subscription_service(app[SUBSCRIPTIONS])
    hub = StreamHub(StreamStore(app[POOL]), settings.database_url)
    await hub.start()
    app[STREAMS] = hub
    app[METRICS].collectors.append(hub.collect)
    yield
    await hub.close()


async def _background(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    task = asyncio.create_task(run_expiry(app[ENTITIES], settings.expiry_interval))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _observability(app: web.Application) -> AsyncIterator[None]:
    """Scrape-time gauges (pool, outbox backlog) and the entities-written counter."""
    metrics = app[METRICS]
    metrics.collectors += [pool_collector(app[POOL]), backlog_collector(app[POOL])]
    app[ENTITIES].repo.on_written = written_observer(metrics)
    yield


def _outbound(app: web.Application, settings: Settings) -> None:
    try:
        app[OUTBOUND] = OutboundPolicy.from_setting(settings.outbound_allow)
    except ValueError as exc:
        raise SystemExit(f"CITYOS_OUTBOUND_ALLOW: {exc}") from None


def _base_app(settings: Settings, *middlewares: Middleware) -> web.Application:
    metrics = Metrics()
    app = web.Application(
        middlewares=[request_metrics(metrics), problem_details, *middlewares],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[STARTED] = time.monotonic()
    return app


def _probe_stalls(app: web.Application) -> None:
    """The event-loop stall probe, started by the last start-up handler (see loop_stall)."""
    install_probe(app, app[METRICS].registry)


def create_relay_app(settings: Settings) -> web.Application:
    """``city-os relay``: the outbox relay with only /metrics, /health and /ready."""
    app = _base_app(settings)
    app[KAFKA_REQUIRED] = True
    app.cleanup_ctx.extend([_database, _observability, relay_context])
    add_routes(app, ops.routes)
    _probe_stalls(app)
    return app


def create_notifier_app(settings: Settings) -> web.Application:
    """``city-os notifier``: a notifier replica with only /metrics, /health and /ready."""
    app = _base_app(settings)
    app[NOTIFIER_REQUIRED] = True
    _outbound(app, settings)
    app.cleanup_ctx.extend(
        [_database, notifier_access_context, _observability, _contexts, notifier_context]
    )
    add_routes(app, ops.routes)
    _probe_stalls(app)
    return app


async def _tune_collector(app: web.Application) -> None:
    tune_collector()  # after every cleanup_ctx start-up: the heap at start is frozen


def create_app(settings: Settings) -> web.Application:
    """The API. Refuses (SystemExit) to serve without authentication on a non-loopback host."""
    warning = check_exposure(settings)
    if warning is not None:
        log.warning(warning)
    authenticator = Authenticator(enabled=settings.auth_enabled)
    limiter = None
    if settings.rate_limit > 0:
        limiter = RateLimiter(settings.rate_limit, settings.rate_limit_burst)
    guard = access_guard(authenticator, limiter, audit.note_refusal)
    app = _base_app(settings, guard, route_rules, snapshots.snapshot_scope)
    app[AUTHENTICATOR] = authenticator
    try:
        app[ISSUERS] = parse_issuers(settings.oidc_issuers)
    except ValueError as exc:
        raise SystemExit(f"CITYOS_OIDC_ISSUERS: {exc}") from None
    _outbound(app, settings)
    app.cleanup_ctx.extend(
        [
            authentication_context,
            _database,
            temporal_context,
            access_context,
            _observability,
            _contexts,
            _schemas,
            _subscriptions,
            federation_context(OUTBOUND),
            distributed_context(OUTBOUND),
            snapshots.snapshots_context,
            _background,
            relay_context,
            notifier_context,
        ]
    )
    app.on_startup.append(_tune_collector)
    _probe_stalls(app)
    app.on_response_prepare.append(add_warnings)  # NGSILD-Warning of distributed operations
    tables = (
        apikeys.routes,
        audit.routes,
        entities.routes,
        query.routes,
        batch.routes,
        contexts.routes,
        schemas.routes,
        indexes.routes,
        discovery.routes,
        subscriptions.routes,
        csource.routes,
        csource_subscriptions.routes,
        remote_notify.routes,
        push.routes,
        streams.routes,
        temporal.routes,
        info.routes,
        me.routes,
        permissions.routes,
        subjects.routes,
        ops.routes,
        entitymaps.routes,
        snapshots.routes,
        *ngsiv2.TABLES,
        docs.routes,
    )
    for table in tables:
        add_routes(app, table)
    renderers: dict[str, ErrorRenderer] = dict.fromkeys(ngsiv2.PREFIXES, ngsiv2.orion_error)
    app[ERROR_RENDERERS] = renderers
    docs.install(app)
    return app


def add_routes(app: web.Application, table: web.RouteTableDef) -> None:
    """Register a route table, accepting an optional trailing slash on every path."""
    for route in table:
        assert isinstance(route, web.RouteDef)
        app.router.add_route(route.method, route.path + "{_slash:/?}", route.handler)
