"""The in-process evaluator on the hand-picked table the SQL engine is held to
(tests/query_cases.py), plus what only a selection has: liveness, entity selectors, the attrs
filter, linked ids, refused patterns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from city_os.errors import BadRequestData
from city_os.ngsild.query.entity_selection import EntitySelector, Names, Selection
from city_os.ngsild.query.evaluate import CompiledSelection, compile_selection
from city_os.ngsild.query.geo import parse_geoq
from city_os.ngsild.query.q import parse_q
from city_os.ngsild.query.scope import parse_scopeq
from city_os.ngsild.query.type_selection import parse_type_selection
from city_os.ngsild.representation import EntityRecord
from tests.query_cases import (
    ENTITIES,
    GEO_CASES,
    Q_CASES,
    S1,
    S2,
    SCOPE_CASES,
    ST,
    TYPE_CASES,
    K,
    expand,
)

NAMES = Names(type=expand, attr=expand)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def record(
    entity_id: str, types: list[str], scopes: list[str] | None, attrs: dict[str, Any], **extra: Any
) -> EntityRecord:
    return EntityRecord(
        id=entity_id,
        types=[expand(t) for t in types],
        attrs={expand(name): instances for name, instances in attrs.items()},
        scopes=scopes,
        created_at="2026-01-01T00:00:00Z",
        modified_at="2026-01-01T00:00:00Z",
        **extra,
    )


RECORDS = {e[0]: record(*e) for e in ENTITIES}


def selected(compiled: CompiledSelection, records: dict[str, EntityRecord] = RECORDS) -> set[str]:
    return {r.id for r in records.values() if compiled.matches(r, linked=records.get, now=NOW)}


@pytest.mark.parametrize(("q", "expected"), Q_CASES)
def test_q(q: str, expected: set[str]) -> None:
    assert selected(compile_selection(Selection(q=parse_q(q)), NAMES)) == expected


@pytest.mark.parametrize(("georel", "geometry", "coordinates", "expected"), GEO_CASES)
def test_geo(georel: str, geometry: str, coordinates: str, expected: set[str]) -> None:
    geo = parse_geoq(georel, geometry, coordinates, None)
    assert selected(compile_selection(Selection(geo=geo), NAMES)) == expected


@pytest.mark.parametrize(("scopeq", "expected"), SCOPE_CASES)
def test_scope(scopeq: str, expected: set[str]) -> None:
    assert selected(compile_selection(Selection(scope=parse_scopeq(scopeq)), NAMES)) == expected


@pytest.mark.parametrize(("selection", "expected"), TYPE_CASES)
def test_type(selection: str, expected: set[str]) -> None:
    sel = Selection(selectors=(EntitySelector(types=parse_type_selection(selection)),))
    assert selected(compile_selection(sel, NAMES)) == expected


SELECTOR_CASES: list[tuple[tuple[EntitySelector, ...], set[str]]] = [
    ((EntitySelector(ids=(S1, K)),), {S1, K}),
    ((EntitySelector(ids=(S1,), id_pattern="^urn:ngsi-ld:Station"),), {S1}),  # ids first
    ((EntitySelector(id_pattern="Shelter:k"),), {S1, S2}),  # unanchored, as ~
    ((EntitySelector(id_pattern="^urn:ngsi-ld:Shelter:kase"),), {S1}),
    ((EntitySelector(types=parse_type_selection("Shelter"), id_pattern="kinsen"),), {S2}),
    ((EntitySelector(ids=(S1,)), EntitySelector(types=parse_type_selection("Station"))), {S1, ST}),
]


@pytest.mark.parametrize(("selectors", "expected"), SELECTOR_CASES)
def test_entity_selectors(selectors: tuple[EntitySelector, ...], expected: set[str]) -> None:
    assert selected(compile_selection(Selection(selectors=selectors), NAMES)) == expected


def test_attrs_filter_wants_any_of_the_attributes() -> None:
    sel = Selection(attrs=(expand("humidity"), expand("isOpen")))
    assert selected(compile_selection(sel, NAMES)) == {S1, S2, K, "urn:ngsi-ld:District:Kinsen"}


def test_an_expired_entity_is_invisible_and_so_are_expired_linked_entities() -> None:
    records = dict(RECORDS)
    records[K] = record(
        K,
        ["District"],
        None,
        {"humidity": [{"type": "Property", "value": 40}]},
        expires_at="2026-05-31T23:59:59Z",
    )
    compiled = compile_selection(Selection(q=parse_q("humidity|refDistrict{humidity}==40")), NAMES)
    assert selected(compiled, records) == {"urn:ngsi-ld:District:Kinsen"}
    later = compiled.matches(records[K], linked=records.get, now=datetime(2026, 5, 1, tzinfo=UTC))
    assert later


def test_linked_ids_name_every_level_the_paths_follow() -> None:
    compiled = compile_selection(Selection(q=parse_q("refDistrict{humidity}==40;name")), NAMES)
    assert compiled.follows_links
    assert compiled.linked_ids(RECORDS[ST]) == {K, "urn:ngsi-ld:District:X"}
    assert not compile_selection(Selection(q=parse_q("name")), NAMES).follows_links
    with pytest.raises(ValueError, match="linked entities"):
        compiled.matches(RECORDS[ST])


def test_linked_ids_go_deeper_through_known_entities() -> None:
    records = dict(RECORDS)
    records[K] = record(
        K,
        ["District"],
        None,
        {"refCity": [{"type": "Relationship", "object": "urn:ngsi-ld:City:Saga"}]},
    )
    compiled = compile_selection(Selection(q=parse_q("refDistrict{refCity{population}}")), NAMES)
    assert compiled.linked_ids(records[S1]) == {K}
    assert compiled.linked_ids(records[S1], records.get) == {K, "urn:ngsi-ld:City:Saga"}


@pytest.mark.parametrize("q", ["name~=(?=K)", "name~=a{300}", r"name~=(a)\1", "name~=(?x)a b"])
def test_patterns_the_evaluator_cannot_mirror_are_refused(q: str) -> None:
    with pytest.raises(BadRequestData, match="not supported"):
        compile_selection(Selection(q=parse_q(q)), NAMES)


def test_id_patterns_are_checked_too() -> None:
    sel = Selection(selectors=(EntitySelector(id_pattern=r"(?<=x)y"),))
    with pytest.raises(BadRequestData, match="idPattern"):
        compile_selection(sel, NAMES)
