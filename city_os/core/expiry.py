"""Transient entities (§4.21): remove entities whose expiresAt has passed, with their events.

Layer: core/. Reads already hide expired entities; this sweep deletes them for real, through the
same optimistic delete path as every other write, so each expiry yields exactly one event even
with several broker processes sweeping.
"""

from __future__ import annotations

import asyncio
import functools
import logging

from city_os.core.contexts import bundled_documents
from city_os.core.entities import EntityService, RequestContext
from city_os.ngsild.entity import now_iso
from city_os.ngsild.jsonld import CORE_CONTEXT_URL, TermMap

log = logging.getLogger(__name__)
BATCH = 500


@functools.cache
def core_terms() -> TermMap:
    """Expiry events need no user @context: they carry expanded IRIs."""
    return TermMap(CORE_CONTEXT_URL, bundled_documents())


async def sweep_once(service: EntityService) -> int:
    removed = 0
    for tenant, schema in await service.tenants.all():
        while True:
            expired = await service.repo.expired(schema, BATCH)
            if not expired:
                break
            ctx = RequestContext(tenant=tenant, terms=core_terms(), now=now_iso())
            done = await service.delete_many(ctx, schema, [s.record.id for s in expired], "expired")
            removed += len(done)
            if len(expired) < BATCH:
                break
    return removed


async def run_expiry(service: EntityService, interval: float) -> None:
    while True:
        try:
            await sweep_once(service)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("expiry sweep failed; retrying")
        await asyncio.sleep(interval)
