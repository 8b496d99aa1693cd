"""Start-up of the temporal room inside an app: the service, and the partition maintenance
loop (partitions created ahead, partitions past each tenant's retention dropped).

Layer: temporal/ (wiring, like app.py's cleanup contexts; no request handling).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
from aiohttp import web

from city_os.api.keys import ENTITIES, POOL, SETTINGS, TEMPORAL, TENANTS
from city_os.store.postgres.temporal import TemporalRepository
from city_os.temporal.service import TemporalService

log = logging.getLogger(__name__)


async def maintain_once(service: TemporalService) -> int:
    """One maintenance pass over every tenant; returns the partitions dropped."""
    settings = await service.repo.settings()
    dropped = 0
    for tenant, schema in await service.tenants.all():
        capture, days = settings.get(tenant, (True, None))
        retention = timedelta(days=days) if days else None
        try:
            if not capture:  # a tenant migration re-creates the triggers enabled
                await service.repo.apply_capture(schema, capture)
            dropped += await service.repo.maintain(schema, retention)
        except (
            asyncpg.UndefinedFunctionError,
            asyncpg.UndefinedTableError,
            asyncpg.InvalidSchemaNameError,
        ) as exc:
            # A tenant whose schema went away meanwhile (or is not migrated yet): the others
            # are still maintained.
            log.warning("temporal maintenance skipped tenant %r: %s", tenant, exc)
    return dropped


async def _loop(service: TemporalService, interval: float) -> None:
    while True:
        try:
            await maintain_once(service)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("temporal partition maintenance failed; retrying")
        await asyncio.sleep(interval)


async def temporal_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: after the database context (needs POOL and TENANTS)."""
    settings = app[SETTINGS]
    repo = TemporalRepository(app[POOL])
    app[TEMPORAL] = TemporalService(
        repo, app[TENANTS], settings.temporal_max_instances, app[ENTITIES]
    )
    task = asyncio.create_task(_loop(app[TEMPORAL], settings.temporal_maintenance_interval))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
