"""Linked Entity retrieval (§4.5.23): pure rendering (inline, flat, cycles, projections) and the
batched level-by-level fetch of core.linked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from city_os.core.entities import EntityService, RequestContext
from city_os.core.linked import linked_entities
from city_os.errors import BadRequestData
from city_os.ngsild.linked import (
    Join,
    check_projection,
    parse_join,
    render_flat,
    render_inline,
)
from city_os.ngsild.representation import EntityRecord, RenderOptions

V = "https://uri.etsi.org/ngsi-ld/default-context/"


class Terms:
    def compact_attr(self, iri: str) -> str:
        return iri.removeprefix(V)

    def compact_type(self, iri: str) -> str:
        return iri.removeprefix(V)

    def compact_vocab_value(self, iri: str) -> str:
        return iri


def rel(target: str | list[str]) -> list[dict[str, Any]]:
    return [{"type": "Relationship", "object": target}]


def entity(eid: str, kind: str, **attrs: list[dict[str, Any]]) -> EntityRecord:
    return EntityRecord(
        id=eid,
        types=[V + kind],
        attrs={V + k: v for k, v in attrs.items()},
        scopes=None,
        created_at="2020-01-01T00:00:00Z",
        modified_at="2020-01-01T00:00:00Z",
    )


NAME = [{"type": "Property", "value": "Paris"}]
BUILDING = entity("urn:b", "Building", locatedAt=rel("urn:city"))
CITY = entity("urn:city", "City", name=NAME, isIn=rel("urn:country"))
COUNTRY = entity("urn:country", "Country", partOf=rel("urn:b"))  # closes a cycle
ALL = {e.id: e for e in (BUILDING, CITY, COUNTRY)}
TM = Terms()


def test_inline_normalized_two_levels() -> None:
    body = render_inline(BUILDING, ALL, TM, RenderOptions(), 2)
    city = body["locatedAt"]["entity"]
    assert city["id"] == "urn:city" and city["name"] == {"type": "Property", "value": "Paris"}
    assert city["isIn"]["entity"] == {
        "id": "urn:country",
        "type": "Country",
        "partOf": {"type": "Relationship", "object": "urn:b"},  # level exhausted
    }


def test_inline_stops_at_a_cycle() -> None:
    body = render_inline(BUILDING, ALL, TM, RenderOptions(), 5)
    country = body["locatedAt"]["entity"]["isIn"]["entity"]
    assert "entity" not in country["partOf"]  # urn:b is already on the path


def test_inline_simplified_replaces_the_object() -> None:
    body = render_inline(BUILDING, ALL, TM, RenderOptions(format="keyValues"), 1)
    assert body["locatedAt"] == {
        "id": "urn:city",
        "type": "City",
        "name": "Paris",
        "isIn": "urn:country",
    }


def test_inline_missing_target_keeps_the_relationship() -> None:
    lonely = entity("urn:x", "Building", locatedAt=rel("urn:nowhere"))
    body = render_inline(lonely, ALL, TM, RenderOptions(), 1)
    assert body["locatedAt"] == {"type": "Relationship", "object": "urn:nowhere"}


def test_inline_multi_object_relationship_gives_a_list() -> None:
    two = entity("urn:y", "Building", near=rel(["urn:city", "urn:country"]))
    body = render_inline(two, ALL, TM, RenderOptions(), 1)
    assert [e["id"] for e in body["near"]["entity"]] == ["urn:city", "urn:country"]


def test_flat_lists_each_entity_once_level_by_level() -> None:
    bodies = render_flat([BUILDING, CITY], ALL, TM, RenderOptions(), 3)
    assert [b["id"] for b in bodies] == ["urn:b", "urn:city", "urn:country"]
    assert "entity" not in bodies[0]["locatedAt"]


def test_nested_pick_and_omit() -> None:
    city_opts = RenderOptions(pick=frozenset({"id", V + "name"}))
    opts = RenderOptions(
        pick=frozenset({"id", V + "locatedAt"}), linked=((V + "locatedAt", city_opts),)
    )
    body = render_inline(BUILDING, ALL, TM, opts, 2)
    assert body == {
        "id": "urn:b",
        "locatedAt": {
            "type": "Relationship",
            "object": "urn:city",
            "entity": {"id": "urn:city", "name": {"type": "Property", "value": "Paris"}},
        },
    }
    omit = RenderOptions(
        omit=frozenset({"type"}),
        linked=((V + "locatedAt", RenderOptions(omit=frozenset({V + "name"}))),),
    )
    flat = render_flat([BUILDING], ALL, TM, omit, 1)
    assert flat[0] == {"id": "urn:b", "locatedAt": {"type": "Relationship", "object": "urn:city"}}
    assert flat[1] == {
        "id": "urn:city",
        "type": "City",
        "isIn": {"type": "Relationship", "object": "urn:country"},
    }


def test_a_picked_away_relationship_is_not_followed() -> None:
    opts = RenderOptions(pick=frozenset({"id"}))
    assert render_flat([BUILDING], ALL, TM, opts, 2) == [{"id": "urn:b"}]


@pytest.mark.parametrize(
    ("join", "level", "expected"),
    [
        (None, None, None),
        ("@none", "2", None),
        ("inline", None, Join("inline", 1)),
        ("flat", "3", Join("flat", 3)),
        ("flat", 2, Join("flat", 2)),
    ],
)
def test_parse_join(join: Any, level: Any, expected: Join | None) -> None:
    assert parse_join(join, level) == expected


@pytest.mark.parametrize(
    ("join", "level"), [("deep", None), ("flat", "0"), ("flat", "x"), ("flat", True)]
)
def test_parse_join_errors(join: Any, level: Any) -> None:
    with pytest.raises(BadRequestData):
        parse_join(join, level)


def test_projection_deeper_than_the_join_is_refused() -> None:
    deep = RenderOptions(linked=(("a", RenderOptions(linked=(("b", RenderOptions()),))),))
    check_projection(deep, Join("inline", 2))
    with pytest.raises(BadRequestData):
        check_projection(deep, Join("inline", 1))
    with pytest.raises(BadRequestData):
        check_projection(deep, None)


@dataclass
class Stored:
    record: EntityRecord


@dataclass
class FakeRepo:
    calls: list[list[str]] = field(default_factory=list)

    async def get_many(self, schema: str, ids: list[str]) -> dict[str, Stored]:
        self.calls.append(sorted(ids))
        return {i: Stored(ALL[i]) for i in ids if i in ALL}


@dataclass
class FakeService:
    repo: FakeRepo
    access: None = None  # access control off

    async def schema(self, ctx: RequestContext, *, write: bool) -> str:
        return "t"


async def test_fetch_is_one_batched_lookup_per_level() -> None:
    many = [entity(f"urn:b{i}", "Building", locatedAt=rel("urn:city")) for i in range(20)]
    repo = FakeRepo()
    service = cast(EntityService, FakeService(repo))
    ctx = cast(RequestContext, None)
    found = await linked_entities(service, ctx, many, RenderOptions(), Join("flat", 5))
    assert repo.calls == [["urn:city"], ["urn:country"], ["urn:b"]]
    assert set(found) >= {"urn:city", "urn:country", "urn:b"}
