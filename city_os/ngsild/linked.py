"""Linked Entity retrieval (GS CIM 009 v1.9.1 §4.5.23, ``join``/``joinLevel``): pure rendering.

Layer: ngsild/, no I/O. An entity's Relationships that survive its projection name the entities
to join; ``links`` lists them per level, so the core can fetch one level in one query, and the
renderers put the fetched entities either inside the Relationship (``inline``: normalized and
concise gain an ``entity`` member, ``entityList`` for a ListRelationship; simplified replaces the
object by the entity) or after the root entities (``flat``: each entity once). Cycles stop at an
entity already on the path (inline) or already listed (flat).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from city_os.errors import BadRequestData
from city_os.ngsild.limits import DEFAULT_LIMITS, parse_int
from city_os.ngsild.representation import (
    EntityRecord,
    RenderOptions,
    TermCompactor,
    _keep_attr,
    render,
)

JoinMode = Literal["inline", "flat"]
_RELATIONSHIPS = frozenset({"Relationship", "ListRelationship"})


@dataclass(frozen=True)
class Join:
    mode: JoinMode
    level: int = 1


def parse_join(join: Any, level: Any, max_level: int = DEFAULT_LIMITS.join_level) -> Join | None:
    """``join`` and ``joinLevel`` (query parameters or Query members); None: no join."""
    if join is None or join == "@none":
        if level is not None:
            parse_level(level, max_level)
        return None
    if join not in ("flat", "inline"):
        raise BadRequestData("join must be flat, inline or @none")
    return Join(join, parse_level(level, max_level) if level is not None else 1)


def parse_level(level: Any, max_level: int = DEFAULT_LIMITS.join_level) -> int:
    """A joinLevel: a positive integer (ASCII digits in a URL) up to the limit."""
    return parse_int(level, "joinLevel", 1, max_level)


def projection_depth(opts: RenderOptions) -> int:
    """How many Relationships deep ``pick``/``omit`` reach (``a{b{c}}``: 2)."""
    return max((1 + projection_depth(child) for _, child in opts.linked), default=0)


def check_projection(opts: RenderOptions, join: Join | None) -> None:
    """A projection of linked entities needs a join at least as deep (§5.7.1.4, §5.7.2.4)."""
    depth = projection_depth(opts)
    if depth and join is None:
        raise BadRequestData("pick/omit address linked entities ({...}) but join is not given")
    if join is not None and depth > join.level:
        raise BadRequestData(
            f"pick/omit reach {depth} levels of linked entities, joinLevel is {join.level}"
        )


def child_options(opts: RenderOptions, iri: str) -> RenderOptions:
    """Output options of the entities linked through Relationship ``iri``."""
    for name, nested in opts.linked:
        if name == iri:
            return nested
    return replace(opts, attrs=None, pick=None, omit=None, linked=())


def _objects(instances: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for inst in instances:
        if inst.get("type") not in _RELATIONSHIPS:
            continue
        target = inst.get("object", inst.get("objectList"))
        for item in target if isinstance(target, list) else [target]:
            if isinstance(item, str) and item not in out:
                out.append(item)
    return out


def links(record: EntityRecord, opts: RenderOptions) -> list[tuple[str, RenderOptions]]:
    """(entity id, its output options) for every Relationship kept by ``opts``."""
    out: list[tuple[str, RenderOptions]] = []
    for iri, instances in record.attrs.items():
        if not _keep_attr(iri, opts):
            continue
        objects = _objects(instances)
        if objects:
            child = child_options(opts, iri)
            out.extend((o, child) for o in objects)
    return out


def render_inline(
    record: EntityRecord,
    linked: dict[str, EntityRecord],
    tm: TermCompactor,
    opts: RenderOptions,
    level: int,
    path: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    body = render(record, tm, opts)
    if level < 1:
        return body
    path = path | {record.id}
    for iri, instances in record.attrs.items():
        name = tm.compact_attr(iri)
        if name not in body or not _objects(instances):
            continue
        child = child_options(opts, iri)
        rendered = {
            target: render_inline(linked[target], linked, tm, child, level - 1, path)
            for target in _objects(instances)
            if target in linked and target not in path
        }
        body[name] = _embed(body[name], rendered.get, simplified=opts.format == "keyValues")
    return body


def _embed(value: Any, entity: Callable[[str], dict[str, Any] | None], *, simplified: bool) -> Any:
    """The rendered Relationship ``value`` with the linked entities put in."""
    if simplified:
        if isinstance(value, str):
            found = entity(value)
            return value if found is None else found
        if isinstance(value, list):
            return [_embed(v, entity, simplified=True) for v in value]
        if isinstance(value, dict) and isinstance(value.get("dataset"), dict):
            dataset = {k: _embed(v, entity, simplified=True) for k, v in value["dataset"].items()}
            return {**value, "dataset": dataset}
        return value
    if isinstance(value, list):
        return [_embed(v, entity, simplified=False) for v in value]
    if not isinstance(value, dict):
        return value
    target = value.get("object")
    if isinstance(target, str):
        found = entity(target)
        return {**value, "entity": found} if found is not None else value
    items = target if isinstance(target, list) else value.get("objectList")
    if isinstance(items, list):
        ids = [i.get("object") if isinstance(i, dict) else i for i in items]
        found_all = [e for e in (entity(i) for i in ids if isinstance(i, str)) if e is not None]
        if found_all:
            key = "entity" if "object" in value else "entityList"
            return {**value, key: found_all}
    return value


def render_flat(
    records: list[EntityRecord],
    linked: dict[str, EntityRecord],
    tm: TermCompactor,
    opts: RenderOptions,
    level: int,
) -> list[dict[str, Any]]:
    """The root entities, then the entities they link to, level by level, each once."""
    out = [render(r, tm, opts) for r in records]
    seen = {r.id for r in records}
    frontier = [(r, opts) for r in records]
    for _ in range(level):
        following: list[tuple[EntityRecord, RenderOptions]] = []
        for record, record_opts in frontier:
            for target, child in links(record, record_opts):
                if target in seen or target not in linked:
                    continue
                seen.add(target)
                out.append(render(linked[target], tm, child))
                following.append((linked[target], child))
        frontier = following
    return out
