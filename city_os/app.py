"""Application factory: ``create_app(settings)`` wires pools, caches and services explicitly.

Everything with a lifecycle (PostgreSQL pool, @context loader, background tasks) is created in
aiohttp's cleanup_ctx and stored under typed AppKeys; nothing happens at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from aiohttp import web

from city_os.api import (
    batch,
    contexts,
    discovery,
    entities,
    indexes,
    info,
    ops,
    query,
    schemas,
)
from city_os.api.keys import (
    CONTEXT_REGISTRY,
    CONTEXTS,
    DISCOVERY,
    ENTITIES,
    INDEXES,
    POOL,
    QUERIES,
    SCHEMAS,
    SETTINGS,
    STARTED,
    TENANTS,
)
from city_os.api.middleware import problem_details, request_metrics
from city_os.api.ops import KAFKA_REQUIRED, METRICS, RELAY
from city_os.config import Settings
from city_os.core.context_registry import USAGE_FLUSH_INTERVAL, ContextCatalog, ContextRegistry
from city_os.core.contexts import ContextLoader
from city_os.core.discovery import DiscoveryService
from city_os.core.entities import EntityService
from city_os.core.expiry import run_expiry
from city_os.core.indexes import ValueIndexService
from city_os.core.query import QueryService
from city_os.events.relay import OutboxRelay, RelayConfig, backlog_collector
from city_os.observability.metrics import (
    Metrics,
    context_cache_collector,
    pool_collector,
    written_observer,
)
from city_os.registry.active import ActiveSchemas
from city_os.registry.service import SchemaRegistry
from city_os.runtime import tune_collector
from city_os.store.postgres.contexts import ContextRepository
from city_os.store.postgres.db import Tenants, create_pool, migrate
from city_os.store.postgres.entities import EntityRepository
from city_os.store.postgres.indexes import ValueIndexRepository
from city_os.store.postgres.query import QueryRepository
from city_os.store.postgres.schemas import SchemaRepository


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
    app[DISCOVERY] = DiscoveryService(app[ENTITIES], queries)
    yield
    await app[INDEXES].close()
    await app[ENTITIES].repo.waker.close()
    await pool.close()


async def _contexts(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    repository = ContextRepository(app[POOL])
    catalog = ContextCatalog(repository)
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


async def _schemas(app: web.Application) -> AsyncIterator[None]:
    """Active schemas in memory (LISTEN keeps them current), hooked into every entity write."""
    repository = SchemaRepository(app[POOL])
    active = ActiveSchemas(repository, app[CONTEXTS], app[SETTINGS].database_url)
    await active.start()
    app[SCHEMAS] = SchemaRegistry(repository, active, app[TENANTS])
    app[ENTITIES].validators.append(active.validate)
    yield
    await active.close()


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


def _base_app(settings: Settings) -> web.Application:
    metrics = Metrics()
    app = web.Application(
        middlewares=[request_metrics(metrics), problem_details],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[STARTED] = time.monotonic()
    return app


def create_relay_app(settings: Settings) -> web.Application:
    """``city-os relay``: the outbox relay with only /metrics, /health and /ready."""
    app = _base_app(settings)
    app[KAFKA_REQUIRED] = True
    app.cleanup_ctx.extend([_database, _observability, _relay])
    add_routes(app, ops.routes)
    return app


async def _tune_collector(app: web.Application) -> None:
    tune_collector()  # after every cleanup_ctx start-up: the heap at start is frozen


def create_app(settings: Settings) -> web.Application:
    app = _base_app(settings)
    app.cleanup_ctx.extend([_database, _observability, _contexts, _schemas, _background, _relay])
    app.on_startup.append(_tune_collector)
    tables = (
        entities.routes,
        query.routes,
        batch.routes,
        contexts.routes,
        schemas.routes,
        indexes.routes,
        discovery.routes,
        info.routes,
        ops.routes,
    )
    for table in tables:
        add_routes(app, table)
    return app


def add_routes(app: web.Application, table: web.RouteTableDef) -> None:
    """Register a route table, accepting an optional trailing slash on every path."""
    for route in table:
        assert isinstance(route, web.RouteDef)
        app.router.add_route(route.method, route.path + "{_slash:/?}", route.handler)
