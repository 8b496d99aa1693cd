"""Application factory: ``create_app(settings)`` wires pools, caches and services explicitly.

Everything with a lifecycle (PostgreSQL pool, @context loader, background tasks) is created in
aiohttp's cleanup_ctx and stored under typed AppKeys; nothing happens at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import asyncpg
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
    API_KEYS,
    AUDIT,
    CONSENTS,
    CONTEXT_REGISTRY,
    CONTEXTS,
    CSOURCE_SUBSCRIPTIONS,
    DISCOVERY,
    ENTITIES,
    INDEXES,
    PERMISSIONS,
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
from city_os.api.ops import KAFKA_REQUIRED, METRICS, NOTIFIER, NOTIFIER_REQUIRED, RELAY
from city_os.api.rules import route_rules
from city_os.auth.apikeys import ApiKeys
from city_os.auth.audit import AuditService, RefusalTrail
from city_os.auth.authenticate import Authenticator, check_exposure
from city_os.auth.consent import ConsentService
from city_os.auth.enforce import EntityAccess
from city_os.auth.issuers import Issuer, parse_issuers
from city_os.auth.network import OutboundPolicy, outbound_session
from city_os.auth.oidc import KeyStore, TokenVerifier
from city_os.auth.owners import OwnerRights
from city_os.auth.permissions import PermissionService
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
from city_os.events.relay import OutboxRelay, RelayConfig, backlog_collector
from city_os.federation.distributed_app import distributed_context
from city_os.federation.lifecycle import csource_subscription_service, federation_context
from city_os.ngsiv2 import routes as ngsiv2
from city_os.notifier.access import NotificationAccess
from city_os.notifier.service import Notifier, NotifierConfig
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
from city_os.store.postgres.auth_consent import ConsentRepository, DataSubjectRepository
from city_os.store.postgres.auth_identities import IdentityRepository
from city_os.store.postgres.auth_keys import ApiKeyRepository
from city_os.store.postgres.auth_log import LogPartitions
from city_os.store.postgres.auth_permissions import PermissionRepository
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
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
ISSUERS = web.AppKey("issuers", dict[str, Issuer])
OUTBOUND = web.AppKey("outbound", OutboundPolicy)


async def _authentication(app: web.Application) -> AsyncIterator[None]:
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


async def _access(app: web.Application) -> AsyncIterator[None]:
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
        access.owners = _owners(app[POOL], settings)
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


async def _relay(app: web.Application) -> AsyncIterator[None]:
    """The outbox relay, when Kafka is configured and the relay is enabled for this process."""
    settings = app[SETTINGS]
    if not (settings.kafka_bootstrap and settings.relay_enabled):
        yield
        return
    relay = OutboxRelay(
        app[POOL], settings.database_url, RelayConfig.from_settings(settings), app[METRICS]
    )
    app[RELAY] = relay
    task = asyncio.create_task(relay.run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _notifier(app: web.Application) -> AsyncIterator[None]:
    """The notifier, when Kafka is configured and the notifier is enabled for this process.
    Inside the broker it also refreshes its index right after each subscription change is
    committed, and settles deliveries in flight before a subscription is read."""
    settings = app[SETTINGS]
    if not (settings.kafka_bootstrap and settings.notifier_enabled):
        yield
        return
    notifier = Notifier(
        NotifierConfig.from_settings(settings),
        app[POOL],
        settings.database_url,
        app[CONTEXTS],
        app[ENTITIES],
        app[QUERIES],
        app[METRICS],
        app[OUTBOUND],
        ngsiv2.FACES,
    )
    access = app[ENTITIES].access
    if access is not None:  # notifications: only what the subscription's owner may read
        notifier.intake.access = notifier.periodic.access = NotificationAccess(access)
    await notifier.start()
    app[NOTIFIER] = notifier
    app[METRICS].collectors.append(notifier.collect)
    subscriptions = app.get(SUBSCRIPTIONS)
    if subscriptions is not None:
        subscriptions.on_change.append(notifier.index.refresh)
        subscriptions.before_read.append(notifier.settle)
    csource_subscriptions = app.get(CSOURCE_SUBSCRIPTIONS)
    if csource_subscriptions is not None:
        csource_subscriptions.on_change.append(notifier.index.refresh)
        csource_subscriptions.before_read.append(notifier.settle)
    yield
    await notifier.close()


async def _notifier_access(app: web.Application) -> AsyncIterator[None]:
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
    access.owners = _owners(pool, settings)
    yield
    await permissions.close()


def _owners(pool: asyncpg.Pool, settings: Settings) -> OwnerRights:
    grace = settings.owner_roles_grace_hours * 3600
    return OwnerRights(IdentityRepository(pool), ApiKeyRepository(pool), grace)


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
    app.cleanup_ctx.extend([_database, _observability, _relay])
    add_routes(app, ops.routes)
    _probe_stalls(app)
    return app


def create_notifier_app(settings: Settings) -> web.Application:
    """``city-os notifier``: a notifier replica with only /metrics, /health and /ready."""
    app = _base_app(settings)
    app[NOTIFIER_REQUIRED] = True
    _outbound(app, settings)
    app.cleanup_ctx.extend([_database, _notifier_access, _observability, _contexts, _notifier])
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
            _authentication,
            _database,
            temporal_context,
            _access,
            _observability,
            _contexts,
            _schemas,
            _subscriptions,
            federation_context(OUTBOUND),
            distributed_context(OUTBOUND),
            snapshots.snapshots_context,
            _background,
            _relay,
            _notifier,
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
