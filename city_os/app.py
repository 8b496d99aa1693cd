"""Application factory: ``create_app(settings)`` wires pools, caches and services explicitly.

Everything with a lifecycle (PostgreSQL pool, @context loader, background tasks) is created in
aiohttp's cleanup_ctx and stored under typed AppKeys; nothing happens at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from city_os.api import batch, entities
from city_os.api.keys import CONTEXTS, ENTITIES, POOL, SETTINGS, TENANTS
from city_os.api.middleware import problem_details
from city_os.config import Settings
from city_os.core.contexts import ContextLoader
from city_os.core.entities import EntityService
from city_os.core.expiry import run_expiry
from city_os.store.postgres.db import Tenants, create_pool, migrate
from city_os.store.postgres.entities import EntityRepository


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
    async with pool.acquire() as conn:
        await migrate(conn)
    app[POOL] = pool
    app[TENANTS] = Tenants(pool)
    app[ENTITIES] = EntityService(EntityRepository(pool), app[TENANTS], settings.base_url)
    yield
    await pool.close()


async def _contexts(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    loader = ContextLoader(
        timeout=settings.context_fetch_timeout,
        max_bytes=settings.context_max_bytes,
        ttl=settings.context_cache_ttl,
    )
    app[CONTEXTS] = loader
    yield
    await loader.close()


async def _background(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    task = asyncio.create_task(run_expiry(app[ENTITIES], settings.expiry_interval))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[problem_details], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app.cleanup_ctx.extend([_contexts, _database, _background])
    for table in (entities.routes, batch.routes):
        add_routes(app, table)
    return app


def add_routes(app: web.Application, table: web.RouteTableDef) -> None:
    """Register a route table, accepting an optional trailing slash on every path."""
    for route in table:
        assert isinstance(route, web.RouteDef)
        app.router.add_route(route.method, route.path + "{_slash:/?}", route.handler)
