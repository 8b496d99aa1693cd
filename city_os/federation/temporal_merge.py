"""Merging temporal entities from the local store and context sources (§4.3.6, §5.7.3.4).

Layer: federation/ (pure: no I/O). A distributed temporal retrieve or query gets the evolution
of one entity from several places, each as a ``Part``: the temporal entity in compacted JSON
(normalized, §4.5.7: an array of instances per attribute; or temporalValues, §4.5.9: one item
per datasetId holding ``[value, time]`` pairs), where it came from and, for exclusive and
redirect sources, the attributes it owns. ``merge_temporal`` builds the one entity the client
sees:

* entity types and scopes are the union, in first-seen order (the local store comes first);
* an attribute owned by an exclusive/redirect part comes from the owners only (local instances
  of it are dropped); else from the local store and inclusive sources, their instances put
  together and de-duplicated (by instanceId; without one, by equal content); an auxiliary
  part gives an attribute only when no other part has an instance of it;
* the instances of each attribute are in time order (``timeproperty``), and with ``lastN`` only
  the last N are kept (after the merge: each place sent its own last N, so the union holds the
  overall last N).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

Body = dict[str, Any]
HEAD = frozenset({"id", "type", "scope", "createdAt", "modifiedAt", "deletedAt"})
# §4.5.9: the members holding the [value, time] pairs (as in temporal/render.py).
PAIRS = frozenset(
    {"values", "objects", "languageMaps", "vocabs", "jsons", "valueLists", "objectLists"}
)


@dataclass(frozen=True)
class Part:
    body: Body
    origin: str = "local"  # local, inclusive, exclusive, redirect, auxiliary
    owned: frozenset[str] | None = None  # compacted names an owner owns (None: all it sent)
    owner: bool = False
    source: str = ""  # the registration id of the source ("": the local store)

    def owns(self, attr: str) -> bool:
        return self.owner and (self.owned is None or attr in self.owned)


def merge_temporal(
    parts: list[Part], *, last_n: int | None = None, timeproperty: str = "observedAt"
) -> Body:
    if len(parts) == 1 and last_n is None and parts[0].origin == "local":
        return parts[0].body
    out: Body = {"id": parts[0].body.get("id")}
    types = _union(p.body.get("type") for p in parts)
    if types:
        out["type"] = types[0] if len(types) == 1 else types
    scopes = _union(p.body.get("scope") for p in parts)
    if scopes:
        out["scope"] = scopes[0] if len(scopes) == 1 else scopes
    for member in ("createdAt", "modifiedAt", "deletedAt"):
        stamps = [p.body[member] for p in parts if isinstance(p.body.get(member), str)]
        if stamps:
            out[member] = min(stamps) if member == "createdAt" else max(stamps)
    names: list[str] = []
    for part in parts:
        names.extend(k for k in part.body if k not in HEAD and k not in names)
    for name in names:
        owners = [p for p in parts if p.owns(name)]
        if owners:
            chosen = [p for p in owners if name in p.body]
        else:
            chosen = [p for p in parts if p.origin in ("local", "inclusive") and name in p.body]
            if not any(_has_instances(p.body[name]) for p in chosen):
                chosen = chosen + [p for p in parts if p.origin == "auxiliary" and name in p.body]
        if chosen:
            out[name] = _merge_attr([p.body[name] for p in chosen], last_n, timeproperty)
    return out


def _union(values: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        for item in value if isinstance(value, list) else [value] if value is not None else []:
            if item not in out:
                out.append(item)
    return out


def _has_instances(value: Any) -> bool:
    if isinstance(value, list):
        return (
            any(_has_instances(v) for v in value) if value and _simplified(value) else bool(value)
        )
    if isinstance(value, dict):
        return any(bool(value.get(k)) for k in PAIRS) if _simplified(value) else True
    return False


def _simplified(value: Any) -> bool:
    """temporalValues form: an item (or items) holding [value, time] pairs."""
    items = value if isinstance(value, list) else [value]
    return bool(items) and all(isinstance(i, dict) and PAIRS & set(i) for i in items)


def _merge_attr(values: list[Any], last_n: int | None, timeproperty: str) -> Any:
    if all(_simplified(v) for v in values if v):
        return _merge_simplified(values, last_n)
    instances: list[Body] = []
    seen: set[str] = set()
    for value in values:
        for inst in value if isinstance(value, list) else [value]:
            if not isinstance(inst, dict):
                continue
            key = inst.get("instanceId")
            if not isinstance(key, str):
                key = orjson.dumps(inst, option=orjson.OPT_SORT_KEYS).decode()
            if key not in seen:
                seen.add(key)
                instances.append(inst)
    instances.sort(key=lambda i: _instant(i, timeproperty))
    if last_n is not None:
        instances = instances[-last_n:] if last_n > 0 else []
    return instances


def _instant(inst: Body, timeproperty: str) -> str:
    value = inst.get(timeproperty)
    return value if isinstance(value, str) else ""


def _merge_simplified(values: list[Any], last_n: int | None) -> Any:
    """temporalValues items of one attribute, merged per datasetId: the pairs of every place,
    without repeats, in time order."""
    items: dict[Any, Body] = {}
    for value in values:
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, dict):
                continue
            member = next(iter(PAIRS & set(item)))
            kept = items.setdefault(item.get("datasetId"), {**item, member: []})
            pairs = kept.setdefault(member, [])
            for pair in item.get(member) or []:
                if pair not in pairs:
                    pairs.append(pair)
    merged = []
    for item in items.values():
        for member in PAIRS & set(item):
            pairs = sorted(item[member], key=_pair_instant)
            item[member] = pairs[-last_n:] if last_n else pairs
        merged.append(item)
    return merged[0] if len(merged) == 1 else merged


def _pair_instant(pair: Any) -> str:
    if isinstance(pair, list) and len(pair) >= 2 and isinstance(pair[-1], str):
        return pair[-1]
    return ""
