"""Pure JSON-LD layer: turns one @context list into memoized term maps for the hot path.

pyld is correct but slow per call, so each distinct @context list is processed by pyld exactly
once into a ``TermMap``; expanding or compacting an attribute name, entity type or VocabProperty
value is then a dict lookup. No I/O here: every document a context needs is handed in by the
caller (``city_os.core.contexts.ContextLoader`` fetches them).

``TermMap`` calls pyld's internal IRI helpers (``_expand_iri``/``_compact_iri``) on the processed
active context; ``tests/unit/test_jsonld_termmap.py`` compares the results with pyld's public
``expand``/``compact`` so a pyld upgrade that changes those internals fails loudly.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeVar

import orjson
from pyld import jsonld
from pyld.context_resolver import ContextResolver
from pyld.iri_resolver import resolve as resolve_iri

from city_os.errors import BadRequestData

CORE_CONTEXT_URL: Final = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
NGSI_LD: Final = "https://uri.etsi.org/ngsi-ld/"

# A context item as it appears in an @context array; None resets the active context.
ContextItem = str | dict[str, Any] | None
ContextKey = tuple[str, ...]

_CORE_URL = re.compile(
    r"https?://uri\.etsi\.org/ngsi-ld/(?:v1/)?ngsi-ld-core-context(?:-v\d+\.\d+(?:\.\d+)?)?\.jsonld"
)
# Compaction picks a term by the shape of the value; attribute keys always hold NGSI-LD
# attribute node objects (a node object without @id), so one representative value suffices.
_ATTRIBUTE_NODE: Final = {
    "@type": [NGSI_LD + "Property"],
    NGSI_LD + "hasValue": [{"@value": 0}],
}
# pyld bounds remote context URLs per resolution to 10; NGSI-LD payloads may list more.
_MAX_CONTEXT_URLS: Final = 64
_V = TypeVar("_V")

# A memo is cleared when it reaches this size, so random attribute names can't grow it forever.
_MEMO_MAX: Final = 50_000


def is_core_context_url(url: str) -> bool:
    """True for every URL naming an NGSI-LD core context, versioned or not.

    They all resolve to the bundled v1.9 document: the broker works offline and has no other
    version bundled, and every later version is a superset of the earlier ones' terms.
    """
    return _CORE_URL.fullmatch(url) is not None


class _Processor(jsonld.JsonLdProcessor):  # type: ignore[misc]
    """pyld's processor holding the inverse context of the one active context it serves.

    pyld builds an inverse context (every term, sorted) on the first compaction and keeps it in
    a module-wide LRU cache: for a 10,000-term context that took ~150 ms on whichever thread
    compacted first, i.e. the event loop while it rendered a response. ``TermMap`` builds it
    with the term map, where pyld's processing already runs (a worker thread), and keeps it
    for as long as the term map lives, whatever the LRU cache evicts."""

    _active: Any = None
    _inverse: Any = None

    def keep_inverse(self, active: Any) -> None:
        self._active = active
        self._inverse = super()._get_inverse_context(active)

    def _get_inverse_context(self, active_ctx: Any) -> Any:
        if active_ctx is self._active:
            return self._inverse
        return super()._get_inverse_context(active_ctx)


class MissingContextDocument(LookupError):
    """pyld asked for a URL the caller did not supply; the loader fetches it and retries."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


def canonical_context(context: object) -> list[ContextItem]:
    """The context list processed for a request: user items first, the core context last.

    The NGSI-LD core context is always processed last (GS CIM 009 §5.5.7: its terms cannot be
    overridden by user contexts; brokers append it to the request's context). Any core URL in the
    request, whatever its version, is removed from its position and the one canonical core URL
    appended, so ``[core, user]`` and ``[user]`` give the same term map. Raises ``BadRequestData``
    for items that cannot be contexts (numbers, booleans, nested arrays, relative URLs).
    """
    items: list[object]
    if context is None:
        items = []
    elif isinstance(context, list):
        items = list(context)
    else:
        items = [context]
    out: list[ContextItem] = []
    for item in items:
        if isinstance(item, str):
            if not jsonld._is_absolute_iri(item):
                raise BadRequestData(f"Invalid @context: {item!r} is not an absolute URL")
            if not is_core_context_url(item):
                out.append(item)
        elif item is None or isinstance(item, dict):
            out.append(item)
        else:
            raise BadRequestData(
                f"Invalid @context: an @context entry must be a URL or an object, not {item!r}"
            )
    out.append(CORE_CONTEXT_URL)
    return out


def context_key(items: Sequence[ContextItem]) -> ContextKey:
    """A stable hashable identity of a canonical context list (inline objects as sorted JSON)."""
    key: list[str] = []
    for item in items:
        if isinstance(item, str):
            key.append(item)
        else:
            try:
                key.append(orjson.dumps(item, option=orjson.OPT_SORT_KEYS).decode())
            except TypeError as exc:
                raise BadRequestData(f"Invalid @context: {exc}") from None
    return tuple(key)


def context_urls(context: object, base: str | None = None) -> list[str]:
    """Every URL a context value references directly: items, ``@import`` and scoped contexts.

    Relative references are resolved against ``base`` (the URL of the document holding them).
    URLs inside the documents those URLs name are not included — the caller recurses.
    """
    found: list[str] = []

    def visit(value: object) -> None:
        if isinstance(value, str):
            found.append(_resolve_reference(value, base))
        elif isinstance(value, list):
            for item in value:
                visit(item)
        elif isinstance(value, dict):
            imported = value.get("@import")
            if isinstance(imported, str):
                found.append(_resolve_reference(imported, base))
            for definition in value.values():
                if isinstance(definition, dict) and "@context" in definition:
                    visit(definition["@context"])

    visit(context)
    return found


def _resolve_reference(url: str, base: str | None) -> str:
    return resolve_iri(url, base) if base else url


class TermMap:
    """One processed @context list; answers term ↔ IRI questions from memo dicts.

    Built from the context (anything ``canonical_context`` accepts) and ``documents``: the parsed
    JSON of every URL the context needs, nested ones included. Core URLs are looked up as
    ``CORE_CONTEXT_URL``. A URL missing from ``documents`` raises ``MissingContextDocument``; a
    context pyld rejects raises ``BadRequestData`` with pyld's message.

    Property-scoped and type-scoped contexts are not applied: answers are those of the top-level
    active context, i.e. for attribute names and types of an entity node.
    """

    __slots__ = (
        "_active",
        "_attr_compacted",
        "_attr_expanded",
        "_processor",
        "_type_compacted",
        "_type_expanded",
        "_vocab_compacted",
        "_vocab_expanded",
        "context_value",
        "items",
        "key",
        "urls",
    )

    def __init__(self, context: object, documents: Mapping[str, Any]) -> None:
        self.items: tuple[ContextItem, ...] = tuple(canonical_context(context))
        self.key: ContextKey = context_key(self.items)
        #: What a response's @context carries: one URL as a string, otherwise the list.
        self.context_value: str | list[ContextItem] = (
            CORE_CONTEXT_URL if len(self.items) == 1 else list(self.items)
        )
        loaded: set[str] = set()

        def load(url: str, options: object = None) -> dict[str, Any]:
            name = CORE_CONTEXT_URL if is_core_context_url(url) else url
            if name not in documents:
                raise MissingContextDocument(url)
            loaded.add(name)
            # pyld rewrites relative URLs inside the document in place; keep the caller's intact.
            return {
                "contextUrl": None,
                "documentUrl": url,
                "document": copy.deepcopy(documents[name]),
            }

        self._processor = _Processor()
        options = {
            "base": "",
            "processingMode": "json-ld-1.1",
            "documentLoader": load,
            # A private resolver cache: pyld's module-level one would outlive our document TTLs.
            "contextResolver": ContextResolver({}, load, max_context_urls=_MAX_CONTEXT_URLS),
        }
        initial = self._processor._get_initial_context(options)
        try:
            self._active: Any = self._processor.process_context(initial, list(self.items), options)
        except jsonld.JsonLdError as exc:
            missing = _missing_document(exc)
            if missing is not None:
                raise missing from None
            raise BadRequestData(f"Invalid @context: {summarise_jsonld_error(exc)}") from None
        except (ValueError, TypeError, AttributeError) as exc:
            # pyld lets some malformed input escape as plain Python errors (e.g. a relative
            # @import with no base); they are still the client's context at fault.
            raise BadRequestData(f"Invalid @context: {exc}") from None
        _reject_scoped_contexts(self._active, documents.get(CORE_CONTEXT_URL))
        self._processor.keep_inverse(self._active)
        #: The URLs (core as ``CORE_CONTEXT_URL``) whose documents were used.
        self.urls: frozenset[str] = frozenset(loaded)
        self._attr_expanded: dict[str, str | None] = {}
        self._type_expanded: dict[str, str] = {}
        self._vocab_expanded: dict[str, str] = {}
        self._attr_compacted: dict[str, str] = {}
        self._type_compacted: dict[str, str] = {}
        self._vocab_compacted: dict[str, str] = {}

    def expand_attr(self, term: str) -> str | None:
        """The IRI of an attribute (property key), or None where JSON-LD expansion drops it."""
        try:
            return self._attr_expanded[term]
        except KeyError:
            pass
        iri = self._processor._expand_iri(self._active, term, vocab=True)
        if iri is None or not (jsonld._is_absolute_iri(iri) or jsonld._is_keyword(iri)):
            iri = None
        _remember(self._attr_expanded, term, iri)
        return iri  # type: ignore[no-any-return]

    def expand_type(self, term: str) -> str:
        """The IRI of an entity type name (an ``@type`` value)."""
        try:
            return self._type_expanded[term]
        except KeyError:
            pass
        iri = self._processor._expand_iri(self._active, term, vocab=True, base="")
        # Only a term explicitly mapped to null expands to None; keep the name as given.
        result = iri if isinstance(iri, str) else term
        _remember(self._type_expanded, term, result)
        return result

    def expand_vocab_value(self, value: str) -> str:
        """The IRI of a VocabProperty ``vocab`` value (the core context types it ``@vocab``)."""
        try:
            return self._vocab_expanded[value]
        except KeyError:
            pass
        iri = self._processor._expand_iri(self._active, value, vocab=True, base="")
        result = iri if isinstance(iri, str) else value
        _remember(self._vocab_expanded, value, result)
        return result

    def compact_attr(self, iri: str) -> str:
        """The key pyld's compaction gives an attribute IRI holding an attribute node object."""
        try:
            return self._attr_compacted[iri]
        except KeyError:
            pass
        result = self._compact(iri, value=_ATTRIBUTE_NODE)
        if ":" in result and iri.startswith(NGSI_LD):
            result = self._core_term(iri) or result
        _remember(self._attr_compacted, iri, result)
        return result

    def _core_term(self, iri: str) -> str | None:
        """The plain term of a core IRI whose core definition carries a type coercion, for an
        attribute named like a core member (ETSI 422_08_01: an attribute called ``vocab``).
        pyld's term selection skips such a term for an attribute node (the coercion does not
        fit the value) and gives ``ngsi-ld:hasVocab``; the client wrote ``vocab``, and that
        name expands back to the same IRI, so it is the name the attribute goes out under."""
        terms = sorted(
            term
            for term, definition in self._active.get("mappings", {}).items()
            if definition and definition.get("@id") == iri and ":" not in term
        )
        return min(terms, key=len) if terms else None

    def compact_type(self, iri: str) -> str:
        """The name pyld's compaction gives a type IRI (an ``@type`` value)."""
        try:
            return self._type_compacted[iri]
        except KeyError:
            pass
        result = self._compact(iri)
        _remember(self._type_compacted, iri, result)
        return result

    def compact_vocab_value(self, iri: str) -> str:
        """The string pyld's compaction gives a VocabProperty ``vocab`` value IRI."""
        try:
            return self._vocab_compacted[iri]
        except KeyError:
            pass
        result = self._compact(iri, base="")
        _remember(self._vocab_compacted, iri, result)
        return result

    def _compact(self, iri: str, value: object = None, base: str | None = None) -> str:
        try:
            term = self._processor._compact_iri(
                self._active, iri, value=value, vocab=True, base=base
            )
        except jsonld.JsonLdError:
            # "IRI confused with prefix": pyld refuses to compact e.g. a stored "ex:x" that was
            # never expanded once "ex" became a prefix; the IRI as stored is the honest answer.
            return iri
        return term if isinstance(term, str) else iri

    def __repr__(self) -> str:
        return f"TermMap({self.context_value!r})"


def _reject_scoped_contexts(active: Any, core: Any) -> None:
    """User contexts may not carry property- or type-scoped contexts (GS CIM 009 §5.5.7):
    they would let a payload re-map terms inside attributes, which NGSI-LD forbids."""
    core_terms = core.get("@context", {}) if isinstance(core, dict) else {}
    for term, definition in active.get("mappings", {}).items():
        if isinstance(definition, dict) and "@context" in definition and term not in core_terms:
            raise BadRequestData(f"Invalid @context: term {term!r} defines a scoped @context")


def _remember(memo: dict[str, _V], key: str, value: _V) -> None:
    if len(memo) >= _MEMO_MAX:
        memo.clear()
    memo[key] = value


def _missing_document(exc: BaseException) -> MissingContextDocument | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, MissingContextDocument):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def summarise_jsonld_error(exc: BaseException) -> str:
    """pyld's message chain in one line, with the JSON-LD error code where there is one."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 4:
        if isinstance(seen, jsonld.JsonLdError):
            message = str(seen.args[0]) if seen.args else str(seen.type)
            code = seen.code
            parts.append(f"{message} ({code})" if code else message)
        else:
            parts.append(str(seen) or type(seen).__name__)
        seen = seen.__cause__
    return "; ".join(dict.fromkeys(parts))
