"""Query and purge entities (§5.7.2, §5.6.21): what a selection means, independent of HTTP and SQL.

Layer: core/. Builds a ``Selection`` from the already-parsed NGSI-LD expressions, enforces the
rules on which parameters must be present, pages through the store and trims the result to the
requested dataset instances. Purge deletes every match through ``EntityService`` (one outbox
event per entity), or strips attributes (``keep``/``drop``) through the normal update path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from city_os.auth.policy import Operation
from city_os.core.entities import EntityService, RequestContext
from city_os.errors import BadRequestData
from city_os.ngsild.entity import SYSTEM_MEMBERS, check_entity_id, expand_attr_name
from city_os.ngsild.limits import check_count
from city_os.ngsild.query.ast import (
    And,
    Comparison,
    Exists,
    GeoQuery,
    Or,
    Pattern,
    QExpr,
    Range,
    ScopeExpr,
    Text,
    TypeAnd,
    TypeExpr,
    TypeName,
    Uri,
    Value,
    ValueList,
)
from city_os.ngsild.query.entity_selection import EntitySelector, Expand, Names, Selection
from city_os.ngsild.query.evaluate import compile_selection
from city_os.ngsild.representation import EntityRecord
from city_os.store.postgres.query import QueryRepository
from city_os.store.postgres.query_order_sql import OrderKey

if TYPE_CHECKING:
    from city_os.federation.distributed import Federation

# Entity members that are never attributes (`attrs=id` is a client error, §4.5.1).
NOT_ATTRIBUTES = frozenset({"id", "type", "scope", "@id", "@type", *SYSTEM_MEMBERS, "expiresAt"})
NO_DATASET = "@none"


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int = 0
    count: bool = False
    order_by: str | None = None  # orderBy: path[;asc|desc|dist-asc|dist-desc], comma-separated
    collation: str | None = None  # BCP 47 tag for ordering strings (§4.23.3)
    order_from: str | None = None  # GeoJSON reference geometry of distance ordering


@dataclass(frozen=True)
class QueryResult:
    records: list[EntityRecord]
    total: int | None  # with count=true
    more: bool = False  # entities after this page


@dataclass(frozen=True)
class EntityQuery:
    """A parsed query: selection plus what only the core needs to know."""

    selection: Selection
    local: bool | None = None  # None: not given
    datasets: frozenset[str] | None = None  # datasetId projection; "@none" = default instance
    all_types: bool = False  # type=*
    join_level: int = 0  # depth of Linked Entity retrieval (0 = no join)


def names(ctx: RequestContext) -> Names:
    return Names(type=ctx.terms.expand_type, attr=lambda term: expand_attr_name(ctx.terms, term))


def attribute_names(ctx: RequestContext, raw: list[str]) -> tuple[str, ...]:
    """The ``attrs`` filter as IRIs; entity members and linked projections are refused."""
    out: list[str] = []
    for name in raw:
        if name in NOT_ATTRIBUTES:
            raise BadRequestData(f"attrs: {name!r} is an entity member, not an attribute")
        if "{" in name or "}" in name:
            raise BadRequestData(f"attrs: linked entity projection {name!r} is not allowed here")
        out.append(expand_attr_name(ctx.terms, name))
    return tuple(dict.fromkeys(out))


def selector(
    types: TypeExpr | None, ids: list[str] | None, id_pattern: str | None
) -> EntitySelector:
    checked = tuple(check_entity_id(i) for i in ids) if ids else ()
    return EntitySelector(types=types, ids=checked, id_pattern=id_pattern)


def entity_query(
    *,
    selectors: tuple[EntitySelector, ...],
    attrs: tuple[str, ...] = (),
    q: QExpr | None = None,
    geo: GeoQuery | None = None,
    scope: ScopeExpr | None = None,
    local: bool | None = None,
    datasets: list[str] | None = None,
    all_types: bool = False,
    join_level: int = 0,
) -> EntityQuery:
    if all_types and local is False:
        raise BadRequestData("type=* selects local entities only; it cannot go with local=false")
    return EntityQuery(
        Selection(selectors, attrs, q, geo, scope),
        local=local,
        datasets=frozenset(datasets) if datasets else None,
        all_types=all_types,
        join_level=join_level,
    )


def expand_values(
    expr: QExpr, attrs: frozenset[str], expand: Callable[[str], str], expand_attr: Expand
) -> QExpr:
    """``expandValues`` (§4.9): string values compared with these attributes (IRIs) are
    expanded against the @context first, as stored VocabProperty values are."""
    if isinstance(expr, And | Or):
        return type(expr)(tuple(expand_values(t, attrs, expand, expand_attr) for t in expr.terms))
    if not isinstance(expr, Comparison) or expand_attr(expr.path.names[0]) not in attrs:
        return expr

    def one(value: Value) -> Value:
        if isinstance(value, Text | Uri):
            return type(value)(expand(value.value))
        return value

    value = expr.value
    if isinstance(value, ValueList):
        return replace(expr, value=ValueList(tuple(one(v) for v in value.items)))
    if isinstance(value, Range):
        return expr
    return replace(expr, value=one(value))


def _q_names(expr: QExpr) -> list[tuple[str, bool]]:
    """(attribute name, linked?) for every term of a q expression."""
    if isinstance(expr, And | Or):
        return [n for t in expr.terms for n in _q_names(t)]
    assert isinstance(expr, Comparison | Pattern | Exists)
    return [(expr.path.names[0], expr.path.link is not None)]


_ORDER_COLUMNS = frozenset({"id", "type", "createdAt", "modifiedAt"})
_DIRECTIONS = {"": False, "asc": False, "desc": True, "dist-asc": False, "dist-desc": True}
_TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")


def order_keys(
    ctx: RequestContext, order_by: str | None, near: str | None = None
) -> tuple[OrderKey, ...]:
    """``orderBy`` (§4.23): entity members, attributes (their value), dot paths into them, a
    trailing ``[a.b]`` path into a compound value, and distance from ``near`` (``dist-*``)."""
    if order_by is None:
        return ()
    items = order_by.split(",")
    check_count(ctx.limits, "order_by_keys", len(items), "orderBy keys")
    keys: list[OrderKey] = []
    for item in items:
        path, _, direction = item.strip().partition(";")
        if direction not in _DIRECTIONS or not path:
            raise BadRequestData(f"orderBy: invalid item {item!r}")
        desc = _DIRECTIONS[direction]
        if direction.startswith("dist-"):
            if near is None:
                raise BadRequestData("orderBy by distance needs the reference coordinates")
            keys.append(OrderKey((expand_attr_name(ctx.terms, path),), desc, near))
            continue
        if path in _ORDER_COLUMNS:
            keys.append(OrderKey(path, desc))
            continue
        path, bracket, trail = path.partition("[")
        if bracket and (not trail.endswith("]") or len(trail) < 2):
            raise BadRequestData(f"orderBy: invalid trailing path in {item!r}")
        attr, *rest = path.split(".")
        # attrs: IRI → [instances]; a sub-attribute is one object inside the first instance.
        steps = [expand_attr_name(ctx.terms, attr), "0"]
        members = SYSTEM_MEMBERS | {"observedAt", "unitCode", "datasetId"}
        for name in rest:
            steps.append(name if name in members else expand_attr_name(ctx.terms, name))
        if steps[-1] not in members:
            steps.append("value")
        if bracket:
            steps.extend(trail[:-1].split("."))
        keys.append(OrderKey(tuple(steps), desc))
    return tuple(keys)


def collation_tags(tag: str) -> list[str]:
    """A BCP 47 tag and its fallbacks, most specific first (``de-u-co-phonebk`` → … ``de``)."""
    if not _TAG.fullmatch(tag) or len(tag) > 64:
        raise BadRequestData(f"collation: {tag!r} is not a BCP 47 language tag")
    parts = tag.split("-")
    tags = ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]
    return [t for t in tags if len(t.rsplit("-", 1)[-1]) > 1]  # no dangling singleton (u, x)


def _link_depth(expr: QExpr) -> int:
    if isinstance(expr, And | Or):
        return max(_link_depth(t) for t in expr.terms)
    depth, path = 0, expr.path
    while path.link is not None:
        depth, path = depth + 1, path.link.path
    return depth


def _qualifies(query: EntityQuery, q_names: list[tuple[str, bool]]) -> bool:
    """A query or purge must select by more than id/idPattern (§5.7.2, §5.6.21)."""
    sel = query.selection
    return bool(
        _has_types(sel)
        or query.all_types
        or sel.attrs
        or any(n not in NOT_ATTRIBUTES for n, _ in q_names)
        or sel.geo is not None
        or query.local
    )


def _has_types(sel: Selection) -> bool:
    return any(s.types is not None for s in sel.selectors)


class QueryService:
    def __init__(self, entities: EntityService, repo: QueryRepository) -> None:
        self.entities = entities
        self.repo = repo
        self.federation: Federation | None = None  # distributed query hook (federation/)

    async def query(self, ctx: RequestContext, query: EntityQuery, page: Page) -> QueryResult:
        if self.federation is not None and not query.all_types:
            result = await self._distributed(ctx, query, page)
            if result is not None:
                return result
        return await self.local_query(ctx, query, page)

    async def _distributed(
        self, ctx: RequestContext, query: EntityQuery, page: Page
    ) -> QueryResult | None:
        """Local matches merged with the sources' (None: no source matches)."""
        assert self.federation is not None
        window = page.offset + page.limit

        async def local() -> tuple[list[EntityRecord], int | None, bool]:
            found = await self.local_query(ctx, query, replace(page, limit=window, offset=0))
            return found.records, found.total, found.more

        sel = query.selection
        aggregate = None  # splitEntities: the filters apply to the merged entities (§5.7.2.4)
        if ("splitEntities", "true") in ctx.params:
            aggregate = compile_selection(Selection(q=sel.q, scope=sel.scope), names(ctx)).matches
        merged = await self.federation.query(
            ctx,
            selection_of(ctx, sel),
            window,
            local,
            attrs=sel.attrs,
            local_only=query.local,
            count=page.count,
            ordered=page.order_by is not None,
            aggregate=aggregate,
        )
        if merged is None:
            return None
        records, total, more = merged
        page_records = records[page.offset : window]
        if query.datasets is not None:
            page_records = [_only_datasets(r, query.datasets) for r in page_records]
        return QueryResult(page_records, total, more=more or len(records) > window)

    async def local_query(self, ctx: RequestContext, query: EntityQuery, page: Page) -> QueryResult:
        sel = query.selection
        q_names = _q_names(sel.q) if sel.q is not None else []
        if sel.q is not None and _link_depth(sel.q) > query.join_level:
            raise BadRequestData(
                "q follows relationships deeper than the Linked Entity retrieval (join, joinLevel)"
            )
        if not _qualifies(query, q_names):
            raise BadRequestData(
                "a query needs at least one of type, attrs, q or a geoquery (or local=true)"
            )
        order = order_keys(ctx, page.order_by, page.order_from)
        collation = None
        if page.collation is not None:
            collation = await self.repo.collation(collation_tags(page.collation))
            if collation is None:
                raise BadRequestData(f"collation {page.collation!r} is not supported")
        schema = await self.entities.schema(ctx, write=False)
        access = self.entities.access
        visible = await access.visible(ctx) if access is not None else None
        # One row beyond the page tells whether a next page exists without counting.
        limit = page.limit + 1 if page.limit else 0
        stored, total = await self.repo.page(
            schema,
            sel,
            names(ctx),
            limit=limit,
            offset=page.offset,
            count=page.count,
            order=order,
            collation=collation,
            visible=visible,
        )
        records = [s.record for s in stored[: page.limit]]
        if access is not None:
            await access.log_page(ctx, schema, records, "query")
        if query.datasets is not None:
            records = [_only_datasets(r, query.datasets) for r in records]
        return QueryResult(records, total, more=len(stored) > page.limit)

    async def purge(
        self,
        ctx: RequestContext,
        query: EntityQuery,
        *,
        keep: frozenset[str] | None = None,
        drop: frozenset[str] | None = None,
    ) -> None:
        """Delete matching entities, or only attributes of them (§5.6.21)."""
        sel = query.selection
        q_names = _q_names(sel.q) if sel.q is not None else []
        if any(linked for _, linked in q_names):
            raise BadRequestData("purge: q cannot follow relationships (linked entity queries)")
        if not _qualifies(query, q_names):
            raise BadRequestData(
                "purge needs type, attrs, q on a non-system attribute or a geoquery "
                "(or local=true); id and idPattern alone are not enough"
            )
        if keep is not None and drop is not None:
            raise BadRequestData("purge: keep and drop cannot be combined")
        schema = await self.entities.schema(ctx, write=False)
        access = self.entities.access  # a purge never touches what the caller may not delete
        visible = await access.visible(ctx, Operation.DELETE) if access is not None else None
        ids = await self.repo.ids(schema, sel, names(ctx), visible)
        if keep is None and drop is None:
            await self.entities.delete_many(ctx, schema, ids, "purged")
            return
        await self.entities.purge_attributes(ctx, ids, keep=keep, drop=drop)


def selection_of(ctx: RequestContext, sel: Selection) -> dict[str, Any]:
    """What the registration index matches a query on: entity ids and types (IRIs)."""
    ids = [i for s in sel.selectors for i in s.ids]
    types: list[str] = []
    for s in sel.selectors:
        types.extend(ctx.terms.expand_type(n) for n in _type_names(s.types))
    return {
        "entity_id": ids[0] if len(ids) == 1 else None,
        "types": types or None,
        "geometry": sel.geo,
    }


def _type_names(expr: TypeExpr | None) -> list[str]:
    if expr is None:
        return []
    if isinstance(expr, TypeName):
        return [expr.name]
    if isinstance(expr, TypeAnd):
        return [n.name for n in expr.names]
    return [n for term in expr.terms for n in _type_names(term)]


def _only_datasets(record: EntityRecord, datasets: frozenset[str]) -> EntityRecord:
    attrs = {}
    for iri, instances in record.attrs.items():
        kept = [i for i in instances if i.get("datasetId", NO_DATASET) in datasets]
        if kept:
            attrs[iri] = kept
    return replace(record, attrs=attrs)
