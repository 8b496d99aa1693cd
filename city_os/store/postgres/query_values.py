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
from typing import Final

from city_os.ngsild.query import targets
from city_os.ngsild.query.ast import Comparison, Number, Text, Uri
from city_os.ngsild.query.entity_selection import Expand

TEXT_LIMIT: Final = 512  # bytes; as in cityos.q_values (migration 0014)
_ORDER: Final = frozenset({">", ">=", "<", "<="})


def values_condition(
    term: Comparison, expand: Expand, alias: str, table: str, quote: Callable[[str], str]
) -> str | None:
    """The EXISTS probe of ``table`` (``schema.attr_values``) equivalent to ``term`` on the
    entity ``alias``, or None when the term is not one this table answers. ``quote`` makes an
    SQL string literal (``query_sql.sql_string``)."""
    path = term.path
    if len(path.names) != 1 or path.keys or path.link is not None:
        return None
    if targets.mentions_time(term.value):
        return None
    value = term.value
    if isinstance(value, Number) and term.op in _ORDER:
        column, literal = "num", f"{quote(value.text)}::numeric"
    elif isinstance(value, Text | Uri) and term.op == "==":
        if len(value.value.encode()) > TEXT_LIMIT:
            return None
        column, literal = "txt", quote(value.value)
    else:
        return None
    attr = quote(expand(path.names[0]))
    return (
        f"EXISTS (SELECT 1 FROM {table} v WHERE v.entity_id = {alias}.id"
        f" AND v.attr = {attr} AND v.{column} {term.op if column == 'num' else '='} {literal})"
    )
