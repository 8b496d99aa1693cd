"""Merging entity fragments from the local store and context sources (§4.3.6, §5.7.1.4, §5.7.2.4).

Layer: federation/ (pure: no I/O). A distributed retrieve or query gets the same entity from
several places: the local store, inclusive sources (they add to what the broker holds),
exclusive and redirect sources (they own the attributes they register) and auxiliary sources
(they only fill gaps). Each arrives as a ``Fragment`` (an expanded ``EntityRecord`` plus where it
came from); ``merge_entity`` builds the one entity the client sees:

* entity types and scopes are the union, in first-seen order; ``createdAt`` is the earliest,
  ``modifiedAt`` the latest;
* an attribute owned by an exclusive/redirect fragment comes from the owners only (a stale
  local copy never shadows it); else from the local store and inclusive sources; an auxiliary
  source contributes an attribute only when no other fragment has it at all;
* within that set, instances are keyed by ``datasetId`` (the default instance has none): for
  one key the instance with the most recent ``observedAt`` wins, then the most recent
  ``modifiedAt``, and on a tie the first fragment (the local store comes first).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

from city_os.ngsild.representation import EntityRecord

Origin = Literal["local", "inclusive", "exclusive", "redirect", "auxiliary"]
OWNER_MODES: frozenset[str] = frozenset({"exclusive", "redirect"})
_DEFAULT_DATASET = "@none"


@dataclass(frozen=True)
class Fragment:
    record: EntityRecord
    origin: Origin = "local"
    # Attributes an exclusive/redirect source owns for this entity (None: every attribute it sent).
    owned: frozenset[str] | None = None
    source: str = ""  # registration id (for reporting)

    def owns(self, attr: str) -> bool:
        if self.origin not in OWNER_MODES:
            return False
        return self.owned is None or attr in self.owned


def _rank(fragment: Fragment, attr: str) -> int:
    """2: owner of the attribute, 1: local or inclusive, 0: auxiliary."""
    if fragment.owns(attr):
        return 2
    return 0 if fragment.origin == "auxiliary" else 1


def _newer(candidate: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether ``candidate`` replaces ``current`` for the same datasetId: newest observedAt,
    then newest modifiedAt; ISO 8601 UTC timestamps compare as strings."""
    for member in ("observedAt", "modifiedAt"):
        new, old = candidate.get(member), current.get(member)
        if isinstance(new, str) and isinstance(old, str) and new != old:
            return new > old
        if isinstance(new, str) and not isinstance(old, str):
            return True
        if isinstance(old, str) and not isinstance(new, str):
            return False
    return False


def _instances(fragments: list[Fragment], attr: str) -> list[dict[str, Any]]:
    by_dataset: dict[str, dict[str, Any]] = {}
    for fragment in fragments:
        for instance in fragment.record.attrs.get(attr, ()):
            key = str(instance.get("datasetId", _DEFAULT_DATASET))
            current = by_dataset.get(key)
            if current is None or _newer(instance, current):
                by_dataset[key] = instance
    return list(by_dataset.values())


def _union(lists: Iterable[list[str] | None]) -> list[str]:
    return list(dict.fromkeys(item for items in lists if items for item in items))


def merge_entity(fragments: list[Fragment]) -> EntityRecord:
    """One entity from its fragments (at least one, all with the same id)."""
    assert fragments, "merge_entity needs at least one fragment"
    if len(fragments) == 1 and fragments[0].origin != "auxiliary":
        return fragments[0].record
    names = list(dict.fromkeys(a for f in fragments for a in f.record.attrs))
    attrs: dict[str, list[dict[str, Any]]] = {}
    for attr in names:
        holders = [f for f in fragments if f.record.attrs.get(attr)]
        if not holders:
            continue
        best = max(_rank(f, attr) for f in holders)
        chosen = _instances([f for f in holders if _rank(f, attr) == best], attr)
        if chosen:
            attrs[attr] = chosen
    records = [f.record for f in fragments]
    scopes = [r.scopes for r in records if r.scopes is not None]
    created = [r.created_at for r in records if r.created_at]
    modified = [r.modified_at for r in records if r.modified_at]
    return replace(
        records[0],
        types=_union(r.types for r in records),
        attrs=attrs,
        scopes=_union(scopes) if scopes else None,
        created_at=min(created) if created else records[0].created_at,
        modified_at=max(modified) if modified else records[0].modified_at,
    )


def merge_entities(groups: Iterable[list[Fragment]]) -> list[EntityRecord]:
    """Fragments grouped per entity id (in answer order) → merged entities."""
    return [merge_entity(group) for group in groups if group]


def group_by_id(fragments: Iterable[Fragment]) -> list[list[Fragment]]:
    """Fragments grouped per entity id, ids in first-seen order (local fragments first when
    the caller lists them first)."""
    groups: dict[str, list[Fragment]] = {}
    for fragment in fragments:
        groups.setdefault(fragment.record.id, []).append(fragment)
    return list(groups.values())
