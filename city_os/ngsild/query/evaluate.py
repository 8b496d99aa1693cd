"""In-process evaluation of a ``Selection``: does this entity state match? (for the notifier)

Layer: ngsild/ (pure, no I/O). A subscription is compiled once (``compile_selection``: names
expanded, patterns and geometries prepared) and evaluated against every change event's entity
(the stored, expanded form: ``EntityRecord``) without a database round trip. The answer is the
SQL query engine's (store/postgres/query.py ``where_clause``) for the same selection and
entity, which a property test checks on generated entities and queries:

* the entity is live (a transient entity past ``expiresAt`` is invisible);
* some entity selector matches: ``ids`` (then ``idPattern`` is ignored), else ``idPattern``
  (a PostgreSQL regex, here RE2: regex.py), and the type selection (``A,B``, ``(A;B)``);
* the ``attrs`` filter: the entity has at least one of the attributes;
* ``q`` (evaluate_q.py), ``geoQ`` (evaluate_geo.py) and ``scopeQ`` (``+`` is one level, ``#``
  the scope and every level below it; ``/#`` any scope at all).

Attribute instances with their own ``expiresAt`` still count, as they do in SQL (only rendering
drops them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from city_os.ngsild.query.ast import (
    And,
    Or,
    QExpr,
    ScopeAnd,
    ScopeExpr,
    ScopeOr,
    TypeAnd,
    TypeExpr,
    TypeName,
    TypeOr,
)
from city_os.ngsild.query.entity_selection import EntitySelector, Expand, Names, Selection
from city_os.ngsild.query.evaluate_geo import compile_geo
from city_os.ngsild.query.evaluate_q import Context, Lookup, QTerm, compile_q
from city_os.ngsild.query.regex import compile_pattern
from city_os.ngsild.representation import EntityRecord

_EntityTest = Callable[[EntityRecord], bool]


@dataclass(frozen=True, slots=True)
class CompiledSelection:
    """A selection ready to test entities: ``matches`` is pure and takes microseconds."""

    selectors: tuple[_EntityTest, ...]
    attrs: frozenset[str]
    q: QTerm | None
    geo: _EntityTest | None
    scope: _EntityTest | None
    follows_links: bool = False  # q has rel{…} paths: ``matches`` needs ``linked``

    def matches(
        self,
        entity: EntityRecord,
        *,
        linked: Lookup | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Whether ``entity`` is selected. ``linked`` gives the entities a q with ``rel{…}``
        paths follows (None when not stored: see ``linked_ids``); ``now`` defaults to the
        clock, read only if an ``expiresAt`` needs it."""
        ctx = Context(linked, now)
        if entity.expires_at is not None and not ctx.live(entity):
            return False
        if self.selectors and not any(test(entity) for test in self.selectors):
            return False
        if self.attrs and self.attrs.isdisjoint(entity.attrs):
            return False
        if self.scope is not None and not self.scope(entity):
            return False
        if self.q is not None and not self.q.test(entity, ctx):
            return False
        return self.geo is None or self.geo(entity)

    def linked_ids(self, entity: EntityRecord, linked: Lookup | None = None) -> set[str]:
        """The ids of the entities the q's linked paths follow from ``entity``. A path of
        several levels (``a{b{c}}``) goes on through the entities ``linked`` already knows:
        fetch what is missing and ask again until nothing new comes back."""
        found: set[str] = set()
        if self.q is not None:
            self.q.linked_ids(entity, linked, found)
        return found


def compile_selection(sel: Selection, names: Names) -> CompiledSelection:
    """Compile once (expansion, regexes, geometries); raises BadRequestData for what cannot be
    evaluated here (regex.check_pattern), as subscription creation should."""
    return CompiledSelection(
        selectors=tuple(_selector(s, names) for s in sel.selectors),
        attrs=frozenset(sel.attrs),
        q=compile_q(sel.q, names.attr) if sel.q is not None else None,
        geo=compile_geo(sel.geo, names.attr) if sel.geo is not None else None,
        scope=_scope(sel.scope) if sel.scope is not None else None,
        follows_links=sel.q is not None and _has_links(sel.q),
    )


def _has_links(expr: QExpr) -> bool:
    if isinstance(expr, And | Or):
        return any(_has_links(t) for t in expr.terms)
    return expr.path.link is not None


def _selector(selector: EntitySelector, names: Names) -> _EntityTest:
    ids = frozenset(selector.ids)
    pattern = None
    if not ids and selector.id_pattern is not None:
        pattern = compile_pattern(selector.id_pattern, "idPattern").search
    types = _types(selector.types, names.type) if selector.types is not None else None

    def test(entity: EntityRecord) -> bool:
        if ids and entity.id not in ids:
            return False
        if pattern is not None and not pattern(entity.id):
            return False
        return types is None or types(entity.types)

    return test


def _types(expr: TypeExpr, expand: Expand) -> Callable[[list[str]], bool]:
    """Any of the single types, or all types of an ``(A;B)`` group."""
    terms = expr.terms if isinstance(expr, TypeOr) else (expr,)
    singles = frozenset(expand(t.name) for t in terms if isinstance(t, TypeName))
    groups = tuple(
        frozenset(expand(n.name) for n in t.names) for t in terms if isinstance(t, TypeAnd)
    )
    return lambda types: not singles.isdisjoint(types) or any(g.issubset(types) for g in groups)


def _scope(expr: ScopeExpr) -> _EntityTest:
    test = _scope_test(expr)
    return lambda entity: bool(entity.scopes) and test(entity.scopes or [])


def _scope_test(expr: ScopeExpr) -> Callable[[list[str]], bool]:
    if isinstance(expr, ScopeOr | ScopeAnd):
        tests = tuple(_scope_test(t) for t in expr.terms)
        if isinstance(expr, ScopeAnd):
            return lambda scopes: all(t(scopes) for t in tests)
        return lambda scopes: any(t(scopes) for t in tests)
    levels, descendants = expr.levels, expr.descendants
    if not levels:  # /#: any scope
        return bool
    if "+" not in levels and not descendants:
        exact = "/" + "/".join(levels)
        return lambda scopes: exact in scopes
    size = len(levels)

    def one(scope: str) -> bool:
        parts = scope.split("/")[1:]  # stored scopes are /Level/Level… (ngsild.entity)
        if len(parts) < size or (len(parts) > size and not descendants):
            return False
        return all(want in ("+", got) for want, got in zip(levels, parts, strict=False))

    return lambda scopes: any(one(s) for s in scopes)
