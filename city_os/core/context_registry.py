"""Service layer of /jsonldContexts (GS CIM 009 §5.13): hosted, cached and implicit @contexts.

``ContextCatalog`` is the persistent ``ContextStore`` behind the ``ContextLoader``: it answers the
loader's look-ups from PostgreSQL (so the broker resolves its own hosted URLs without HTTP),
records every remote context the loader fetches as "Cached", and counts usage in memory — the
loader reports the URLs behind each resolved @context and the counts reach the database in one
batched UPDATE per interval (or before usage is shown), never one write per request.

``ContextRegistry`` gives the operations their NGSI-LD meaning: add (§5.13.2), list (§5.13.3),
serve (§5.13.4), delete and reload (§5.13.5), plus ``add_implicit`` for features that create
ImplicitlyCreated contexts (subscriptions). The core context is listed as a Cached context; any
versioned core URL names it. A Hosted context belongs to the NGSILD-Tenant that added it: a
request naming another tenant neither lists, serves nor deletes it. Its URL is still public —
fetched without a tenant header it is served, as JSON-LD processors dereference it that way.
Serving a context counts as a use of it; the details shown are those from before that use.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Final

from city_os.core.contexts import ContextLoader
from city_os.errors import (
    BadRequestData,
    InvalidRequest,
    LdContextNotAvailable,
    ResourceNotFound,
)
from city_os.ngsild.jsonld import CORE_CONTEXT_URL, is_core_context_url
from city_os.store.postgres.contexts import ContextRepository, StoredContext
from city_os.store.postgres.db import check_tenant

log = logging.getLogger(__name__)

HOSTED_PATH: Final = "/ngsi-ld/v1/jsonldContexts/"
KINDS: Final = ("Hosted", "Cached", "ImplicitlyCreated")
CORE_LOCAL_ID: Final = "ngsi-ld-core-context"
# Seconds between writes of the usage counted in memory (numberOfHits, lastUsage).
USAGE_FLUSH_INTERVAL: Final = 5.0
# Distinct URLs awaiting a flush; past this, uses of further new URLs are not counted.
_MAX_PENDING: Final = 10_000


def _new_id() -> str:
    return uuid.uuid4().hex


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class ContextCatalog:
    """PostgreSQL-backed ``ContextStore`` for the loader, with usage counted in memory."""

    def __init__(self, repository: ContextRepository) -> None:
        self._repository = repository
        self._pending: dict[str, tuple[int, float]] = {}

    async def get(self, url: str) -> dict[str, Any] | None:
        return await self._repository.body(url)

    async def put_cached(self, url: str, body: dict[str, Any]) -> None:
        # Uses counted before the row existed (e.g. of a just deleted entry) are not its own.
        self.discard(url)
        await self._repository.put_cached(_new_id(), url, body)

    def discard(self, url: str) -> None:
        """Forget the uses of ``url`` not yet stored (its entry was deleted)."""
        self._pending.pop(url, None)

    def used(self, urls: frozenset[str]) -> None:
        """Count one use of each URL (the loader's ``on_use``); no I/O."""
        now = time.time()
        pending = self._pending
        for url in urls:
            hits = pending.get(url)
            if hits is not None:
                pending[url] = (hits[0] + 1, now)
            elif len(pending) < _MAX_PENDING:
                pending[url] = (1, now)

    async def flush(self) -> None:
        """Add the uses counted so far to the stored counters."""
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        urls = list(batch)
        try:
            await self._repository.add_usage(
                urls,
                [batch[u][0] for u in urls],
                [datetime.fromtimestamp(batch[u][1], UTC) for u in urls],
            )
        except Exception:
            log.exception("could not store @context usage; keeping it for the next flush")
            for url, (hits, last) in batch.items():
                now_hits, now_last = self._pending.get(url, (0, last))
                self._pending[url] = (hits + now_hits, max(last, now_last))

    async def run(self, interval: float) -> None:
        """Flush every ``interval`` seconds until cancelled, then once more."""
        try:
            while True:
                await asyncio.sleep(interval)
                await self.flush()
        finally:
            await asyncio.shield(self.flush())


class ContextRegistry:
    """The /jsonldContexts operations over the catalog and the loader."""

    def __init__(
        self,
        repository: ContextRepository,
        catalog: ContextCatalog,
        loader: ContextLoader,
        base_url: str,
    ) -> None:
        self._repository = repository
        self._catalog = catalog
        self._loader = loader
        self._base = base_url.rstrip("/") + HOSTED_PATH

    async def start(self) -> None:
        """Store the core context's entry, so it is listed and counted like the others."""
        core = await self._loader.document(CORE_CONTEXT_URL)
        await self._repository.put_core(CORE_LOCAL_ID, CORE_CONTEXT_URL, core)

    async def add(self, payload: object, tenant: str) -> str:
        """Host the @context of ``payload`` for ``tenant``; returns its local id."""
        check_tenant(tenant)
        context = _context_of(payload)
        # Processing it validates it (§5.5.4) and fetches, so caches, what it references.
        await self._loader.term_map(context)
        local_id = _new_id()
        body = {"@context": context}
        await self._repository.insert(local_id, self._base + local_id, "Hosted", tenant, body)
        return local_id

    async def add_implicit(self, context: object) -> str:
        """The URL of an ImplicitlyCreated context holding ``context`` (reused if identical)."""
        body = {"@context": context}
        existing = await self._repository.find_implicit(body)
        if existing is not None:
            return existing.url
        local_id = _new_id()
        url = self._base + local_id
        await self._repository.insert(local_id, url, "ImplicitlyCreated", None, body)
        return url

    async def list(self, tenant: str, kind: str | None, details: bool) -> list[Any]:
        check_tenant(tenant)
        if details:
            await self._catalog.flush()
        rows = await self._repository.list(kind, tenant)
        if details:
            return [_info(row) for row in rows]
        return [row.url for row in rows]

    async def serve(self, ref: str, tenant: str | None, details: bool) -> dict[str, Any]:
        """The document (or, with ``details``, the information) of a context.

        ``tenant`` None (no NGSILD-Tenant sent) serves any context: its URL is public.
        """
        if details:
            await self._catalog.flush()
        row = await self._find(ref, tenant)
        self._catalog.used(frozenset((row.url,)))
        return _info(row) if details else row.body

    async def delete(self, ref: str, tenant: str, reload: bool) -> None:
        if is_core_context_url(ref) or ref == CORE_LOCAL_ID:
            if not reload:
                raise BadRequestData(
                    "the core @context cannot be deleted; reload=true refreshes it"
                )
            # The core context is bundled with the broker: there is nothing to download.
            return
        row = await self._repository.find(ref)
        if row is not None and not _visible(row, tenant):
            row = None
        if reload:
            if row is None or row.kind != "Cached":
                raise BadRequestData(
                    f"reload=true applies to Cached @contexts only; {ref} is not one"
                )
            await self._reload(row)
            return
        if row is None:
            raise ResourceNotFound(f"no @context {ref}")
        await self._repository.delete(row.local_id)
        self._catalog.discard(row.url)
        self._loader.forget(row.url)

    async def _reload(self, row: StoredContext) -> None:
        # On any failure the stored copy stays as it was (§5.13.5.4).
        try:
            document = await self._loader.refetch(row.url)
        except BadRequestData as exc:
            raise LdContextNotAvailable(
                f"@context {row.url} was downloaded but is not usable: {exc.detail}"
            ) from None
        await self._repository.replace_body(row.local_id, document)
        self._loader.forget(row.url)

    async def _find(self, ref: str, tenant: str | None) -> StoredContext:
        if tenant is not None:
            check_tenant(tenant)
        key = CORE_LOCAL_ID if is_core_context_url(ref) else ref
        row = await self._repository.find(key)
        if row is None or not _visible(row, tenant):
            raise ResourceNotFound(f"no @context {ref}")
        return row


def _visible(row: StoredContext, tenant: str | None) -> bool:
    return row.kind != "Hosted" or tenant is None or row.tenant == tenant


def _info(row: StoredContext) -> dict[str, Any]:
    info: dict[str, Any] = {
        "URL": row.url,
        "localId": row.local_id,
        "kind": row.kind,
        "createdAt": _iso(row.created_at),
    }
    if row.last_used is not None:
        info["lastUsage"] = _iso(row.last_used)
    info["numberOfHits"] = row.hits
    return info


def _context_of(payload: object) -> object:
    """The @context member of an add request, checked for shape (items are checked later)."""
    if not isinstance(payload, dict) or "@context" not in payload:
        raise InvalidRequest("the payload must be a JSON object with an @context member")
    context = payload["@context"]
    if not isinstance(context, str | dict | list):
        raise BadRequestData("@context must be a URL, an object or an array of those")
    return context
