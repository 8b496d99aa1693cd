"""The remote @context cache: documents and term maps in one least-recently-used budget.

Layer: core/. Documents are kept as their JSON bytes (what the budget counts; parsed on use)
and term maps (pyld's processed contexts) at their measured memory cost, both within
``max_bytes`` and an entry count each. Term maps go first while they hold more than three
quarters of the bytes: a document is cheaper to keep than a map. A term map expires with the
earliest of its documents.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from city_os.errors import NgsiLdError
from city_os.ngsild.jsonld import TermMap

# Memory of a term map (tracemalloc): ~80 kB of its own (the processed core context) and 7-8
# bytes per byte of the remote documents it was built from (250 to 20,000 terms).
TERM_MAP_BASE: Final = 80_000
TERM_MAP_COST: Final = 8


_NEVER: Final = float("inf")


@dataclass(slots=True)
class Entry:
    raw: bytes | None  # the document's JSON (parsed on use: bytes are what the budget counts)
    error: NgsiLdError | None
    expires: float

    @property
    def cost(self) -> int:
        return len(self.raw or b"") + 200


@dataclass(slots=True)
class _CachedTermMap:
    term_map: TermMap
    expires: float
    cost: int


@dataclass(frozen=True, slots=True)
class CacheStats:
    documents: int
    term_maps: int
    bytes: int


class ContextCache:
    def __init__(self, max_bytes: int, max_documents: int, max_term_maps: int) -> None:
        self._max_bytes = max_bytes
        self._max_documents = max_documents
        self._max_term_maps = max_term_maps
        self._documents: OrderedDict[str, Entry] = OrderedDict()
        self._term_maps: OrderedDict[tuple[str, ...], _CachedTermMap] = OrderedDict()
        self._doc_bytes = 0
        self._map_bytes = 0

    def stats(self) -> CacheStats:
        return CacheStats(
            len(self._documents), len(self._term_maps), self._doc_bytes + self._map_bytes
        )

    def __contains__(self, url: str) -> bool:
        return url in self._documents

    def document(self, url: str) -> Entry | None:
        """The entry of ``url`` if it is fresh (and now the most recently used)."""
        entry = self._documents.get(url)
        if entry is None or entry.expires <= time.monotonic():
            return None
        self._documents.move_to_end(url)
        return entry

    def put_document(self, url: str, entry: Entry) -> None:
        self._drop_document(url)
        if entry.cost > self._max_bytes:
            return
        self._documents[url] = entry
        self._doc_bytes += entry.cost
        self._evict()

    def term_map(self, key: tuple[str, ...]) -> TermMap | None:
        cached = self._term_maps.get(key)
        if cached is None:
            return None
        if cached.expires <= time.monotonic():
            self._drop_term_map(key)
            return None
        self._term_maps.move_to_end(key)
        return cached.term_map

    def put_term_map(self, term_map: TermMap) -> None:
        known = [self._documents[u] for u in term_map.urls if u in self._documents]
        expires = min((e.expires for e in known), default=_NEVER)
        cost = TERM_MAP_BASE + TERM_MAP_COST * sum(e.cost for e in known)
        if cost > self._max_bytes:
            return  # larger than the whole budget: used for this request only
        self._drop_term_map(term_map.key)
        self._term_maps[term_map.key] = _CachedTermMap(term_map, expires, cost)
        self._map_bytes += cost
        self._evict()

    def forget(self, url: str) -> None:
        """Drop a URL's document and every term map built from it."""
        self._drop_document(url)
        for key in [k for k, v in self._term_maps.items() if url in v.term_map.urls]:
            self._drop_term_map(key)

    def _drop_term_map(self, key: tuple[str, ...]) -> None:
        cached = self._term_maps.pop(key, None)
        if cached is not None:
            self._map_bytes -= cached.cost

    def _drop_document(self, url: str) -> None:
        entry = self._documents.pop(url, None)
        if entry is not None:
            self._doc_bytes -= entry.cost

    def _evict(self) -> None:
        """Least recently used first; term maps before documents while they hold more than
        their three quarters of the byte budget."""
        while self._term_maps and (
            len(self._term_maps) > self._max_term_maps
            or self._map_bytes > self._max_bytes * 3 // 4
            or (self._map_bytes + self._doc_bytes > self._max_bytes and not self._documents)
        ):
            self._drop_term_map(next(iter(self._term_maps)))
        while self._documents and (
            len(self._documents) > self._max_documents
            or self._map_bytes + self._doc_bytes > self._max_bytes
        ):
            self._drop_document(next(iter(self._documents)))
