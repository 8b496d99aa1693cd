"""Which registrations match a query (§5.10.2.4) or a distributed operation (§4.3.6).

Layer: federation/ (pure, no I/O). One evaluator serves both the discovery query of
/csourceRegistrations and the per-replica index (index.py), so both answer alike:

* entity part: some RegistrationInfo matches — an item without entities matches any entity;
  otherwise one EntityInfo whose types meet the asked types (any of them), whose id equals an
  asked id or matches the asked idPattern (an EntityInfo with an idPattern matches an asked
  id that it matches, and any asked pattern: two patterns cannot be compared), and, when
  ``attrs`` are asked, the item names none (all attributes) or one of them;
* ``q`` and ``csf`` on the registration as an entity (``as_record``): its context-source
  properties and its members ``endpoint``, ``registrationName``, ``description``, ``mode``,
  ``tenant`` under their core IRIs; ``geoQ`` on ``location`` (or ``observationSpace``,
  ``operationSpace`` as ``geoproperty``); ``scopeQ`` on ``scope``;
* time: ``timerel`` with ``timeproperty`` observedAt on ``observationInterval``, createdAt /
  modifiedAt on ``managementInterval`` (a registration without that interval does not match);
  without a temporal query only sources of the latest information are considered (an
  ``observationInterval`` that does not hold the present excludes the registration).
Expired registrations never match.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from city_os.federation.model import EntityInfo, Registration
from city_os.ngsild.entity import parse_datetime
from city_os.ngsild.query.entity_selection import Names, Selection
from city_os.ngsild.query.evaluate import CompiledSelection, compile_selection
from city_os.ngsild.query.regex import compile_pattern
from city_os.ngsild.representation import EntityRecord

CORE: Final = "https://uri.etsi.org/ngsi-ld/"
_TEXT_MEMBERS: Final = ("endpoint", "registrationName", "description", "mode", "tenant")
_GEO_MEMBERS: Final = ("location", "observationSpace", "operationSpace")
_RECORDS: dict[int, tuple[Registration, EntityRecord]] = {}


def as_record(reg: Registration) -> EntityRecord:
    """The registration as an entity, for q, csf, geoQ and scopeQ (cached per object)."""
    hit = _RECORDS.get(id(reg))
    if hit is not None and hit[0] is reg:
        return hit[1]
    attrs: dict[str, list[dict[str, Any]]] = {}
    for iri, value in reg.properties.items():
        if isinstance(value, dict) and value.get("type") in ("Property", "Relationship"):
            attrs[iri] = [value]
        else:
            attrs[iri] = [{"type": "Property", "value": value}]
    texts = (reg.endpoint, reg.registration_name, reg.description, reg.mode, reg.tenant)
    for name, value in zip(_TEXT_MEMBERS, texts, strict=True):
        if value is not None:
            attrs[CORE + name] = [{"type": "Property", "value": value}]
    for name, geo in zip(
        _GEO_MEMBERS, (reg.location, reg.observation_space, reg.operation_space), strict=True
    ):
        if geo is not None:
            attrs[CORE + name] = [{"type": "GeoProperty", "value": geo}]
    record = EntityRecord(
        id=reg.id,
        types=[CORE + "ContextSourceRegistration"],
        attrs=attrs,
        scopes=list(reg.scope) or None,
        created_at=reg.created_at or "",
        modified_at=reg.modified_at or "",
    )
    if len(_RECORDS) > 4096:
        _RECORDS.clear()
    _RECORDS[id(reg)] = (reg, record)
    return record


@dataclass(frozen=True)
class TimeFilter:
    timerel: str  # before | after | between
    at: datetime
    end: datetime | None = None
    timeproperty: str = "observedAt"


@dataclass(frozen=True)
class RegistrationFilter:
    """What a registration must match; names expanded, expressions compiled once."""

    ids: frozenset[str] = frozenset()
    id_pattern: str | None = None
    types: frozenset[str] | None = None  # any of them; None: any type
    attrs: frozenset[str] = frozenset()  # one of them; empty: any attribute
    selection: CompiledSelection | None = None  # q, geoQ, scopeQ
    csf: CompiledSelection | None = None
    time: TimeFilter | None = None
    _pattern: Any = field(default=None, compare=False)

    @classmethod
    def build(
        cls,
        names: Names,
        *,
        ids: Iterable[str] = (),
        id_pattern: str | None = None,
        types: Iterable[str] | None = None,
        attrs: Iterable[str] = (),
        selection: Selection | None = None,
        csf: Selection | None = None,
        time: TimeFilter | None = None,
    ) -> RegistrationFilter:
        """``types`` and ``attrs`` expanded already; the selections' names expand with
        ``names`` (the request's terms)."""
        pattern = compile_pattern(id_pattern, "idPattern") if id_pattern else None
        return cls(
            ids=frozenset(ids),
            id_pattern=id_pattern,
            types=None if types is None else frozenset(types),
            attrs=frozenset(attrs),
            selection=compile_selection(selection, names) if selection else None,
            csf=compile_selection(csf, names) if csf else None,
            time=time,
            _pattern=pattern,
        )

    # --------------------------------------------------------------------- matching

    def _entity_matches(self, info: EntityInfo) -> bool:
        if self.types is not None and info.types and self.types.isdisjoint(info.types):
            return False
        if self.ids:
            if info.id is not None:
                return info.id in self.ids
            if info.id_pattern is not None:
                return any(info.matches(i, None) for i in self.ids)
            return True
        if self._pattern is not None and info.id is not None:
            return bool(self._pattern.search(info.id))
        return True

    def _information_matches(self, reg: Registration) -> bool:
        for info in reg.information:
            if info.entities and not any(self._entity_matches(e) for e in info.entities):
                continue
            if self.attrs and info.attrs and self.attrs.isdisjoint(info.attrs):
                continue
            return True
        return False

    def _time_matches(self, reg: Registration, now: datetime) -> bool:
        if self.time is None:
            interval = reg.observation_interval
            return interval is None or interval.overlaps(now, None)
        t = self.time
        interval = (
            reg.observation_interval if t.timeproperty == "observedAt" else reg.management_interval
        )
        if interval is None:
            return False
        if t.timerel == "between":
            return interval.overlaps(t.at, t.end)
        if t.timerel == "before":
            return parse_datetime(interval.start_at) < t.at
        end = interval.end_at
        return end is None or parse_datetime(end) > t.at

    def matches(self, reg: Registration, now: datetime) -> bool:
        if reg.expired(now) or not self._information_matches(reg):
            return False
        if not self._time_matches(reg, now):
            return False
        for compiled in (self.selection, self.csf):
            if compiled is not None and not compiled.matches(as_record(reg), now=now):
                return False
        return True


def select(
    registrations: Iterable[Registration], flt: RegistrationFilter, now: datetime
) -> list[Registration]:
    return [r for r in registrations if flt.matches(r, now)]
