"""Input limits: what the broker accepts at most, checked before any work is spent on a request.

Layer: ngsild/ (pure, no I/O). One ``Limits`` value (built from ``Settings``) travels with every
request (``RequestContext.limits``). Each check raises a ProblemDetails error naming the limit
(``limit``: the setting; ``maximum``: its value), so a client knows what to change and an
operator which setting to raise. The byte limits on ids and names keep every key within
PostgreSQL's btree index rows (2,704 bytes: the entity id, the (types, id) index, the geo table's
(entity, attribute, datasetId) key); the structural ones bound the CPU a body can cost (a JSON
document of many small containers costs ~150 ns per container to parse, hundreds to walk) and
the recursion of every later stage (Python's stack, orjson's 255 levels of output, jsonb).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import orjson

from city_os.errors import BadRequestData, NgsiLdError, PayloadTooLarge

# PostgreSQL's largest btree index row (8 kB pages) and what our (types, id) key costs in it:
# the tuple and array headers, then 4 bytes of length and up to 3 of padding per element.
BTREE_ROW_BYTES: Final = 2704
_TYPES_KEY_OVERHEAD: Final = 48
_TYPES_KEY_PER_TYPE: Final = 8


@dataclass(frozen=True, slots=True)
class Limits:
    json_depth: int = 32
    json_containers: int = 120_000
    attributes: int = 1000
    entity_types: int = 32
    id_bytes: int = 1024
    name_bytes: int = 512
    order_by_keys: int = 16
    query_selectors: int = 100
    join_level: int = 16


DEFAULT_LIMITS: Final = Limits()

# The setting behind each limit, as clients see it in the ProblemDetails ``limit`` member.
SETTING: Final = {
    "json_depth": "CITYOS_MAX_JSON_DEPTH",
    "json_containers": "CITYOS_MAX_JSON_CONTAINERS",
    "attributes": "CITYOS_MAX_ATTRIBUTES",
    "entity_types": "CITYOS_MAX_ENTITY_TYPES",
    "id_bytes": "CITYOS_MAX_ID_BYTES",
    "name_bytes": "CITYOS_MAX_NAME_BYTES",
    "order_by_keys": "CITYOS_MAX_ORDER_BY_KEYS",
    "query_selectors": "CITYOS_MAX_QUERY_SELECTORS",
    "join_level": "CITYOS_MAX_JOIN_LEVEL",
}


def exceeded(
    limits: Limits, name: str, detail: str, cls: type[NgsiLdError] = BadRequestData
) -> NgsiLdError:
    """The error for limit ``name`` (a ``Limits`` field), with the setting and its value."""
    maximum = getattr(limits, name)
    setting = SETTING[name]
    return cls(f"{detail}; at most {maximum} (limit {setting})", limit=setting, maximum=maximum)


def check_count(limits: Limits, name: str, count: int, what: str) -> None:
    if count > getattr(limits, name):
        raise exceeded(limits, name, f"{what}: {count}")


def check_bytes(limits: Limits, name: str, value: str, what: str) -> str:
    """``value`` if its UTF-8 encoding fits limit ``name`` (``id_bytes`` / ``name_bytes``)."""
    maximum = getattr(limits, name)
    # len(str) bounds the bytes from below and 4 * len(str) from above: encode only between.
    if len(value) > maximum or (len(value) * 4 > maximum and len(value.encode()) > maximum):
        size = len(value.encode(errors="surrogatepass"))
        raise exceeded(limits, name, f"{what} takes {size} bytes in UTF-8")
    return value


def check_types_key(limits: Limits, entity_id: str, types: list[str]) -> None:
    """The entity's id and types together must fit one btree row of the (types, id) index."""
    check_count(limits, "entity_types", len(types), "entity types")
    size = _TYPES_KEY_OVERHEAD + len(entity_id.encode())
    size += sum(len(t.encode()) + _TYPES_KEY_PER_TYPE for t in types)
    if size > BTREE_ROW_BYTES:
        raise BadRequestData(
            f"the entity's id and types together take {size} bytes in the types index; at most "
            f"{BTREE_ROW_BYTES} fit (use shorter type IRIs, fewer types or a shorter id)",
            limit="PostgreSQL btree row",
            maximum=BTREE_ROW_BYTES,
        )


def check_entity(
    limits: Limits,
    entity_id: str,
    types: list[str],
    attrs: dict[str, list[dict[str, Any]]],
    members: frozenset[str],
) -> None:
    """The state about to be stored fits the limits: id and types (bytes, the types index),
    attribute instances counted with their sub-attributes, names and datasetIds in bytes.
    ``members`` are the instance members that are not sub-attributes."""
    check_bytes(limits, "id_bytes", entity_id, "the entity id")
    check_types_key(limits, entity_id, types)
    for type_iri in types:
        check_bytes(limits, "name_bytes", type_iri, "an entity type")
    count = 0
    pending: list[tuple[str, dict[str, Any]]] = [
        (name, inst) for name, instances in attrs.items() for inst in instances
    ]
    while pending:
        name, inst = pending.pop()
        count += 1
        if count > limits.attributes:
            raise exceeded(limits, "attributes", "the entity has too many attribute instances")
        check_bytes(limits, "name_bytes", name, "an attribute name")
        dataset = inst.get("datasetId")
        if isinstance(dataset, str):
            check_bytes(limits, "id_bytes", dataset, f"a datasetId of {name}")
        for key, sub in inst.items():
            if key not in members and isinstance(sub, dict):
                pending.append((key, sub))


def parse_int(raw: object, name: str, low: int, high: int) -> int:
    """An integer parameter: ASCII digits only (``int()`` also takes '²' and '٣') or a JSON
    integer, within ``[low, high]``; its digits are counted before ``int()`` sees them."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif (
        isinstance(raw, str)
        and 0 < len(raw) <= len(str(high)) + 1
        and raw.isascii()
        and (raw.isdigit() or (raw[0] == "-" and raw[1:].isdigit()))
    ):
        value = int(raw)
    else:
        raise BadRequestData(f"{name} must be an integer from {low} to {high}, got {raw!r:.40}")
    if not low <= value <= high:
        raise BadRequestData(f"{name} must be an integer from {low} to {high}, got {value:.0f}")
    return value


# -- JSON documents ----------------------------------------------------------------------------


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector paused while a burst of allocations runs (JSON parsing,
    pyld processing a context), from any thread: in a large heap the collections such a
    burst triggers stop every thread, the event loop's included, for tens of milliseconds.
    Nested and concurrent pauses are counted; the last one to end restores the collector.
    Garbage without cycles is freed by reference counting meanwhile."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def parse_json(raw: bytes | str) -> Any:
    """``orjson.loads`` with the cyclic garbage collector paused: parsing allocates one object
    per JSON container, and in a large heap the collections that triggers cost ten times the
    parse (an 80,000-position polygon: 250 ms instead of 25 ms). Nothing it allocates is
    cyclic garbage. Raises ``orjson.JSONDecodeError``."""
    with paused_gc():
        return orjson.loads(raw)


def count_containers(raw: bytes) -> int:
    """The arrays and objects of a JSON text, counted at C speed before it is parsed: every
    ``[`` and ``{``; only when that bound is over a limit are the ones inside strings (which do
    not count) removed first, by ``exact_containers``."""
    return raw.count(b"[") + raw.count(b"{")


def exact_containers(raw: bytes) -> int:
    """``count_containers`` without the brackets inside strings (a linear scan, C speed)."""
    import re

    stripped = re.sub(rb'"(?:[^"\\]|\\.)*"', b"", raw)
    return count_containers(stripped)


def check_body(raw: bytes, limits: Limits) -> bool:
    """Refuse a body with more containers than allowed (413); True when it contains an escaped
    U+0000 (``\\u0000`` after an even run of backslashes), which ``check_document`` locates."""
    if count_containers(raw) > limits.json_containers:
        count = exact_containers(raw)
        if count > limits.json_containers:
            raise exceeded(
                limits,
                "json_containers",
                f"the body holds {count} JSON arrays and objects",
                PayloadTooLarge,
            )
    return _has_nul_escape(raw)


def _has_nul_escape(raw: bytes) -> bool:
    start = raw.find(b"\\u0000")
    while start >= 0:
        run = 0
        while start - run - 1 >= 0 and raw[start - run - 1] == 0x5C:  # backslash
            run += 1
        if run % 2 == 0:  # the backslash of \u0000 is not itself escaped
            return True
        start = raw.find(b"\\u0000", start + 1)
    return False


def check_document(value: Any, limits: Limits, *, nul: bool = True) -> None:
    """Refuse a parsed JSON value nested deeper than the limit, or holding U+0000 in a string
    or member name (PostgreSQL text and jsonb cannot store it); the error names the member by
    its JSON pointer. Iterative: a document's depth never touches the Python stack."""
    for _ in walk_document(value, limits, nul=nul):
        pass


def walk_document(value: Any, limits: Limits, *, nul: bool = True) -> Iterator[None]:
    """``check_document`` as a generator yielding every 500 values (about 0.5 ms), so that an
    async caller can let other requests run between time slices of a large document.
    Depth-first over iterators (an 80,000-element array is walked in slices too); a container
    whose members are all scalars is judged by one C-level scan (``map(type, …)``) instead of
    a loop over them.
    Only a failure walks again, to name the member at fault."""
    limit = limits.json_depth
    kind = type(value)
    if kind is not dict and kind is not list:
        if nul and kind is str and "\x00" in value:
            raise _nul(())
        return
    if nul and kind is dict and _nul_key(value):
        _locate(value, limits, nul)
    if _needs_walk(value, nul) is None:
        return
    stack: list[Iterator[Any]] = [iter(_members(value))]
    seen = 0
    while stack:
        child: Any = next(stack[-1], _END)
        if child is _END:
            stack.pop()
            continue
        seen += 1
        if seen % 500 == 0:
            yield
        kind = type(child)
        if kind is dict or kind is list:
            if len(stack) + 1 > limit or (nul and kind is dict and _nul_key(child)):
                _locate(value, limits, nul)
            members = _needs_walk(child, nul)
            if members is not None:
                stack.append(iter(members))
        elif nul and kind is str and "\x00" in child:
            _locate(value, limits, nul)


_END = object()
_CONTAINERS = frozenset({dict, list})


def _members(item: dict[str, Any] | list[Any]) -> Iterable[Any]:
    return item.values() if type(item) is dict else item


def _needs_walk(item: dict[str, Any] | list[Any], nul: bool) -> Iterable[Any] | None:
    """The members to walk, or None when they are all scalars (and no string needs a look)."""
    members = _members(item)
    kinds = set(map(type, members))
    if _CONTAINERS.isdisjoint(kinds) and not (nul and str in kinds):
        return None
    return members


def _nul_key(item: dict[str, Any]) -> bool:
    return any("\x00" in key for key in item)


def _locate(value: Any, limits: Limits, nul: bool) -> None:
    """Walk again with paths and raise the error naming the first member at fault."""
    limit = limits.json_depth
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(value, 1, ())]
    while stack:
        item, depth, path = stack.pop()
        if depth > limit:
            raise exceeded(
                limits, "json_depth", f"{_pointer(path) or 'the document'} is nested too deeply"
            )
        children: Iterable[tuple[Any, Any]]
        if type(item) is dict:
            if nul:
                for key in item:
                    if "\x00" in key:
                        raise _nul((*path, key))
            children = item.items()
        elif type(item) is list:
            children = enumerate(item)
        else:
            if nul and type(item) is str and "\x00" in item:
                raise _nul(path)
            continue
        for key, child in children:
            kind = type(child)
            if kind is dict or kind is list or (nul and kind is str and "\x00" in child):
                stack.append((child, depth + 1, (*path, key)))
    raise AssertionError("walk_document found a fault that _locate does not")  # pragma: no cover


def _nul(path: tuple[Any, ...]) -> BadRequestData:
    return BadRequestData(
        f"{_pointer(path) or 'the document'} contains the character U+0000, which cannot be "
        "stored; remove it or encode it otherwise",
        member=_pointer(path),
    )


def _pointer(path: tuple[Any, ...]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)
