"""Which entities a query, purge, count or subscription is about: the parsed selection.

Layer: ngsild/ (pure dataclasses, no I/O). A ``Selection`` combines the ASTs of the selection
languages (ast.py) with entity selectors and the ``attrs`` filter; names stay terms, and
``Names`` says how they expand. Two engines evaluate it with the same meaning: the SQL query
engine (store/postgres/query.py) and the in-process evaluator (evaluate.py) of the notifier.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from city_os.ngsild.query.ast import GeoQuery, QExpr, ScopeExpr, TypeExpr

Expand = Callable[[str], str]


@dataclass(frozen=True)
class EntitySelector:
    """One EntitySelector (§5.2.33): ids take precedence over idPattern; no types = any type."""

    types: TypeExpr | None = None
    ids: tuple[str, ...] = ()
    id_pattern: str | None = None


@dataclass(frozen=True)
class Selection:
    """Which entities a query, purge or count is about; names are terms, expanded when evaluated."""

    selectors: tuple[EntitySelector, ...] = ()  # OR-ed; empty = every entity
    attrs: tuple[str, ...] = ()  # expanded IRIs: the entity has at least one of them
    q: QExpr | None = None
    geo: GeoQuery | None = None
    scope: ScopeExpr | None = None


@dataclass(frozen=True)
class Names:
    """How terms of the request expand: entity types and attribute names."""

    type: Expand
    attr: Expand
