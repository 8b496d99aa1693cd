"""Service layer: resolves request @contexts into cached ``TermMap``s, fetching remote documents.

Core context URLs (any version) and the W3C data-integrity context the v1.9 core imports are
served from the bundled copies and never touch the network. Other URLs are fetched over http(s)
with a timeout and a size cap, concurrently, once per URL even under concurrent requests, and
kept for a TTL in memory (and handed to an optional persistent store as "Cached"). Failures are
remembered only briefly. Error mapping (GS CIM 009 §5.5.7): cannot retrieve → 504
LdContextNotAvailable; retrieved but not a usable JSON-LD context, or too large → 400
BadRequestData.

Bounds: the whole resolution of one request (nested and ``@import``ed documents included) has
one deadline; each remote host has its own few connections (aiohttp's per-host limit), so a
host that never answers only delays fetches from itself; the caches hold documents as their
JSON bytes and term maps (pyld's processed contexts) in least-recently-used order within a byte
and an entry budget (``core.context_cache``); one request references at most 64 remote
documents. pyld's processing is pure Python and takes ~1.3 s for a 1 MB context: it runs in a
worker thread, where the interpreter's switch interval (1 ms, set at
start-up) keeps the event loop answering meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from importlib import resources
from typing import Any, Final, Protocol

import aiohttp
import orjson

from city_os.core.context_cache import CacheStats, ContextCache, Entry
from city_os.errors import BadRequestData, LdContextNotAvailable, NgsiLdError
from city_os.ngsild.jsonld import (
    CORE_CONTEXT_URL,
    MissingContextDocument,
    TermMap,
    canonical_context,
    context_key,
    context_urls,
    is_core_context_url,
)
from city_os.ngsild.limits import (
    DEFAULT_LIMITS,
    Limits,
    check_document,
    parse_json,
)

log = logging.getLogger(__name__)

DATA_INTEGRITY_CONTEXT_URL: Final = "https://w3id.org/security/data-integrity/v2"
_ACCEPT: Final = "application/ld+json, application/json;q=0.9"
_CHUNK: Final = 64 * 1024
# pyld may still ask for a URL our prefetch walk missed (e.g. a reference pyld resolves
# differently); each round fetches it and reprocesses. Bounded so a pathological context fails.
_MAX_ROUNDS: Final = 8
# Remote documents one request's @context may reference in all (pyld allows as many).
MAX_CONTEXT_URLS: Final = 64


class ContextStore(Protocol):
    """Persistent /jsonldContexts storage backing the loader (hosted and cached contexts)."""

    async def get(self, url: str) -> dict[str, Any] | None:
        """The document for ``url`` if the store holds a usable one, else None."""
        ...

    async def put_cached(self, url: str, body: dict[str, Any]) -> None:
        """Record a freshly fetched remote context as a "Cached" context."""
        ...


def bundled_documents() -> dict[str, dict[str, Any]]:
    """The documents shipped with city-os, keyed by the URL they answer for."""
    package = resources.files("city_os") / "contexts"
    return {
        CORE_CONTEXT_URL: orjson.loads((package / "ngsi-ld-core-context-v1.9.jsonld").read_bytes()),
        DATA_INTEGRITY_CONTEXT_URL: orjson.loads(
            (package / "w3id-security-data-integrity-v2.jsonld").read_bytes()
        ),
    }


class ContextLoader:
    """Resolves @context values to ``TermMap``s; owns the document and term-map caches.

    ``session`` is used if given (and then not closed here); otherwise one is created on first
    fetch and closed by ``close()``. ``on_use`` is called with the URLs behind every resolved
    context (usage statistics); it must be cheap and must not block.
    """

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        max_bytes: int = 1024 * 1024,
        ttl: float = 3600.0,
        failure_ttl: float = 1.0,
        max_term_maps: int = 1024,
        max_documents: int = 1024,
        max_cache_bytes: int = 64 * 1024 * 1024,
        deadline: float = 10.0,
        connections_per_host: int = 4,
        limits: Limits = DEFAULT_LIMITS,
        session: aiohttp.ClientSession | None = None,
        store: ContextStore | None = None,
        on_use: Callable[[frozenset[str]], None] | None = None,
    ) -> None:
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._ttl = ttl
        self._failure_ttl = failure_ttl
        self._cache = ContextCache(max_cache_bytes, max_documents, max_term_maps)
        self._deadline = deadline
        self._per_host = connections_per_host
        self._limits = limits
        self._session = session
        self._owns_session = session is None
        self._store = store
        self._on_use = on_use
        self._bundled = bundled_documents()
        self._inflight: dict[str, asyncio.Future[Entry]] = {}
        self._building: dict[tuple[str, ...], asyncio.Future[TermMap]] = {}

    def stats(self) -> CacheStats:
        """What the caches hold (the ``cityos_context_cache_*`` gauges)."""
        return self._cache.stats()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    def forget(self, url: str) -> None:
        """Drop a URL's document (e.g. after DELETE /jsonldContexts); term maps rebuild lazily."""
        self._cache.forget(url)

    async def term_map(self, context: object) -> TermMap:
        """The TermMap for a request's @context value (None: the core context only)."""
        items = canonical_context(context)
        key = context_key(items)
        cached = self._cache.term_map(key)
        if cached is not None:
            return self._used(cached)
        try:
            async with asyncio.timeout(self._deadline):
                return await self._resolve(items, key)
        except TimeoutError:
            raise LdContextNotAvailable(
                f"the @context could not be resolved within {self._deadline:g} s (its nested "
                "and imported contexts included)"
            ) from None

    async def _resolve(self, items: list[Any], key: tuple[str, ...]) -> TermMap:
        documents = dict(self._bundled)
        pending = [u for u in context_urls(items) if not self._is_bundled(u)]
        for _ in range(_MAX_ROUNDS):
            await self._collect(pending, documents)
            cached = self._cache.term_map(key)
            if cached is not None:
                return self._used(cached)
            try:
                term_map = await self._build(key, items, documents)
            except MissingContextDocument as missing:
                pending = [missing.url]
                continue
            except BadRequestData as exc:
                raise self._blame(exc, items, documents) from None
            if self._cache.term_map(key) is None:
                self._cache.put_term_map(term_map)
            return self._used(term_map)
        raise BadRequestData("Invalid @context: too many nested @context references")

    async def _build(
        self, key: tuple[str, ...], items: list[Any], documents: dict[str, Any]
    ) -> TermMap:
        """pyld's processing in a worker thread, once for concurrent requests of one context."""
        future = self._building.get(key)
        if future is None:
            future = asyncio.ensure_future(asyncio.to_thread(_term_map, items, documents))
            self._building[key] = future
            future.add_done_callback(lambda _: self._building.pop(key, None))
        return await asyncio.shield(future)

    async def document(self, url: str) -> dict[str, Any]:
        """The raw JSON-LD document at ``url`` (bundled, cached, stored or fetched)."""
        if is_core_context_url(url):
            return self._bundled[CORE_CONTEXT_URL]
        if url in self._bundled:
            return self._bundled[url]
        entry = await self._entry(url)
        if entry.error is not None:
            # A fresh instance per raise: a remembered failure is raised to many requests.
            raise type(entry.error)(entry.error.detail, **entry.error.extra)
        assert entry.raw is not None
        document: dict[str, Any] = parse_json(entry.raw)
        return document

    async def refetch(self, url: str) -> dict[str, Any]:
        """Download ``url`` again past every cache (DELETE ?reload=true); caches are untouched."""
        return (await self._fetch(url))[0]

    # -- term maps -------------------------------------------------------------------------

    def _used(self, term_map: TermMap) -> TermMap:
        if self._on_use is not None:
            self._on_use(term_map.urls)
        return term_map

    def _blame(
        self, exc: BadRequestData, items: list[Any], documents: dict[str, Any]
    ) -> BadRequestData:
        """Name the remote context at fault, found by processing each one on its own."""
        for url in context_urls(items):
            if self._is_bundled(url) or url not in documents:
                continue
            try:
                TermMap(url, documents)
            except BadRequestData as own:
                return BadRequestData(f"{own.detail} (in @context {url})")
            except MissingContextDocument:
                continue
        return exc

    # -- documents -------------------------------------------------------------------------

    def _is_bundled(self, url: str) -> bool:
        return is_core_context_url(url) or url in self._bundled

    async def _collect(self, urls: list[str], documents: dict[str, Any]) -> None:
        """Fetch ``urls`` and every URL their documents reference, level by level."""
        pending = {u for u in urls if u not in documents and not self._is_bundled(u)}
        while pending:
            if len(documents) - len(self._bundled) + len(pending) > MAX_CONTEXT_URLS:
                raise BadRequestData(
                    f"Invalid @context: it references more than {MAX_CONTEXT_URLS} remote "
                    "documents (nested and imported ones included)"
                )
            batch = sorted(pending)
            found = await asyncio.gather(*(self.document(u) for u in batch))
            pending = set()
            for url, document in zip(batch, found, strict=True):
                documents[url] = document
                for ref in context_urls(document.get("@context"), base=url):
                    if ref not in documents and not self._is_bundled(ref):
                        pending.add(ref)

    async def _entry(self, url: str) -> Entry:
        entry = self._cache.document(url)
        if entry is not None:
            return entry
        future = self._inflight.get(url)
        if future is None:
            future = asyncio.ensure_future(self._load(url))
            self._inflight[url] = future
            future.add_done_callback(lambda _: self._inflight.pop(url, None))
        # Shielded: one caller giving up (client disconnect) must not cancel the others' fetch.
        return await asyncio.shield(future)

    async def _load(self, url: str) -> Entry:
        now = time.monotonic()
        try:
            document = await self._from_store(url)
            if document is None:
                document, raw = await self._fetch(url)
                await self._put_store(url, document)
            else:
                raw = orjson.dumps(document)
        except NgsiLdError as exc:
            entry = Entry(None, exc, now + self._failure_ttl)
        else:
            entry = Entry(raw, None, now + self._ttl)
        self._cache.put_document(url, entry)
        return entry

    async def _from_store(self, url: str) -> dict[str, Any] | None:
        if self._store is None:
            return None
        try:
            document = await self._store.get(url)
        except Exception:
            log.exception("context store lookup failed for %s", url)
            return None
        if document is None:
            return None
        return self._checked(url, document)

    async def _put_store(self, url: str, document: dict[str, Any]) -> None:
        if self._store is None:
            return
        try:
            await self._store.put_cached(url, document)
        except Exception:
            # The fetched context is still good for this request; persistence is best effort.
            log.exception("context store write failed for %s", url)

    async def _fetch(self, url: str) -> tuple[dict[str, Any], bytes]:
        if not url.startswith(("http://", "https://")):
            if ":" not in url:
                raise BadRequestData(f"Invalid @context: {url!r} is not an absolute URL")
            raise LdContextNotAvailable(
                f"@context {url} cannot be retrieved: only http and https URLs are supported"
            )
        if self._session is None:
            # Per-host connection limits: one slow host queues behind itself only.
            connector = aiohttp.TCPConnector(limit=256, limit_per_host=self._per_host)
            self._session = aiohttp.ClientSession(connector=connector)
        try:
            async with self._session.get(
                url,
                headers={"Accept": _ACCEPT},
                allow_redirects=True,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            ) as response:
                if response.status != 200:
                    raise LdContextNotAvailable(
                        f"@context {url} cannot be retrieved: HTTP {response.status}"
                    )
                if (response.content_length or 0) > self._max_bytes:
                    raise self._too_large(url)
                body = bytearray()
                async for chunk in response.content.iter_chunked(_CHUNK):
                    body += chunk
                    if len(body) > self._max_bytes:
                        raise self._too_large(url)
        except TimeoutError:
            raise LdContextNotAvailable(
                f"@context {url} cannot be retrieved: no response within {self._timeout:g} s"
            ) from None
        except aiohttp.ClientError as exc:
            reason = str(exc) or type(exc).__name__
            raise LdContextNotAvailable(f"@context {url} cannot be retrieved: {reason}") from None
        try:
            document = parse_json(bytes(body))
        except orjson.JSONDecodeError:
            raise BadRequestData(f"Invalid @context: {url} is not a JSON document") from None
        return self._checked(url, document), bytes(body)

    def _too_large(self, url: str) -> BadRequestData:
        return BadRequestData(
            f"Invalid @context: {url} is larger than the {self._max_bytes} bytes allowed"
        )

    def _checked(self, url: str, document: object) -> dict[str, Any]:
        """The document if it is a JSON-LD context document within the limits (depth, U+0000:
        pyld recurses over it), else BadRequestData naming the URL."""
        try:
            check_document(document, self._limits)
        except BadRequestData as exc:
            raise BadRequestData(f"Invalid @context {url}: {exc.detail}") from None
        return _checked(url, document)


def _term_map(items: list[Any], documents: dict[str, Any]) -> TermMap:
    """pyld's processing, in a worker thread. The collector is not paused here: pyld leaves
    reference cycles, and a 1.3 s pause would end in one scan of everything it allocated."""
    return TermMap(items, documents)


def _checked(url: str, document: object) -> dict[str, Any]:
    """The document if it has the shape of a JSON-LD context document, else BadRequestData."""
    if not isinstance(document, dict) or "@context" not in document:
        raise BadRequestData(f"Invalid @context: {url} is not a JSON object with an @context")
    value = document["@context"]
    if value is not None and not isinstance(value, str | list | dict):
        raise BadRequestData(
            f"Invalid @context: the @context of {url} must be a URL, an object or an array"
        )
    return document
