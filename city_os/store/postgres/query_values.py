"""q terms answered from the attribute-value table: indexes the broker keeps for ranges, equality.

Store layer, pure (no I/O). Every tenant keeps ``attr_values`` (tenant_values.sql): one row
per number or string a q term can reach in an entity's attribute, maintained by triggers in
the same statement as each entity write, with btree indexes on (attr, num), (attr, txt) and
(entity_id, attr). A q term that only compares such values becomes an EXISTS probe of that
table, which means exactly what its jsonpath means (a property test compares the two) and
which PostgreSQL can serve from whichever end is selective: the range or value index first,
or the entity walk with one index probe per entity. Unlike the jsonpath (whose selectivity the
planner guesses), the values have statistics.

Terms answered here: order comparisons (``> >= < <=``) of a number with a plain attribute
(no sub-attribute, no ``[keys]``, no linked entity), and ``==`` of a string or URI of at most
``TEXT_LIMIT`` bytes (the table keeps no longer strings). Everything else keeps its jsonpath.
The literal and the attribute are written into the SQL text (as escaped SQL literals,
``query_sql.sql_string``), not bound: the planner then knows the range and value it estimates,
in every plan, generic plans of prepared statements included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from city_os.ngsild.query import targets
from city_os.ngsild.query.ast import And, Comparison, Number, QExpr, Text, Uri
from city_os.ngsild.query.entity_selection import Expand

TEXT_LIMIT: Final = 512  # bytes; as in cityos.q_values (migration 0014)
_ORDER: Final = frozenset({">", ">=", "<", "<="})


def _term(term: Comparison, expand: Expand) -> tuple[str, str, str] | None:
    """(attribute IRI, column, SQL operator) of a term this table answers, else None."""
    path = term.path
    if len(path.names) != 1 or path.keys or path.link is not None:
        return None
    if targets.mentions_time(term.value):
        return None
    value = term.value
    if isinstance(value, Number) and term.op in _ORDER:
        return expand(path.names[0]), "num", term.op
    if isinstance(value, Text | Uri) and term.op == "==":
        if len(value.value.encode()) > TEXT_LIMIT:
            return None
        return expand(path.names[0]), "txt", "="
    return None


def driver(q: QExpr | None, expand: Expand, column: str) -> tuple[str, str, Any] | None:
    """(attribute IRI, SQL operator, value) of the first term among those ``q`` ANDs together
    that this table answers on ``column`` (``txt``: a string equality; ``num``: an order
    comparison), else None. Every entity ``q`` matches has such a value, so the entities of
    one type with it (``attr_values_type_txt``: in id order; ``attr_values_type_num``: in
    value order) are the candidates of a page of that type (store/postgres/query.py,
    ``_type_page``)."""
    terms = q.terms if isinstance(q, And) else (q,) if q is not None else ()
    for term in terms:
        if isinstance(term, Comparison) and isinstance(term.value, Number | Text | Uri):
            found = _term(term, expand)
            if found is not None and found[1] == column:
                return found[0], found[2], term.value.value
    return None


def values_condition(
    term: Comparison,
    expand: Expand,
    alias: str,
    table: str,
    quote: Callable[[str], str],
    entity_type: str | None = None,
    bind: Callable[[Any], str] | None = None,
) -> str | None:
    """The EXISTS probe of ``table`` (``schema.attr_values``) equivalent to ``term`` on the
    entity ``alias``, or None when the term is not one this table answers. ``quote`` makes an
    SQL string literal (``query_sql.sql_string``). ``entity_type`` (an IRI): the entity is
    known to have this type only, so the probe may keep to the rows of that type (``etype``),
    whose indexes list a value's entities of one type. ``bind`` (``SqlParams.add``): the
    value travels as a bound parameter instead, so the SQL text of a query shape is the
    same whatever the value (one prepared statement and its generic plan)."""
    found = _term(term, expand)
    if found is None:
        return None
    iri, column, op = found
    value = term.value
    assert isinstance(value, Number | Text | Uri)
    if bind is not None:
        literal = bind(value.value) + ("::numeric" if isinstance(value, Number) else "::text")
    elif isinstance(value, Number):
        literal = f"{quote(value.text)}::numeric"
    else:
        literal = quote(value.value)
    typed = f" AND v.etype = {quote(entity_type)}" if entity_type is not None else ""
    return (
        f"EXISTS (SELECT 1 FROM {table} v WHERE v.entity_id = {alias}.id AND v.attr = {quote(iri)}"
        f"{typed} AND v.{column} {op} {literal})"
    )
