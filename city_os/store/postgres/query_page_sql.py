"""The candidates of a page picked from attr_values: SQL, pure (no I/O).

Store layer. Used by ``QueryRepository._type_page`` (a page of one type) and ``_driven_page``
(of any types) when ``q`` ANDs a string equality that the attribute-value table answers
(``query_values.driver``): the entities (of the type) with that string come in id order from
``attr_values_type_txt`` (``attr_values_txt_id``), and each is checked in turn (a fence per
candidate, ``OFFSET 0`` in a LATERAL: the planner underestimates how many pass and would rather
hash every value of the other terms than stop after the page). Without a type, the planner's
choice is a merge of those ids with a walk of the primary key, which reads (and checks, the
caller's readable scope included) every entity up to the page's last match: 3,246 rows for a
page of 21 matches out of 100,200 entities, where the candidates are 21 (``make bench``, group
``enforce``, case rel). If an order comparison is ANDed in too and fewer than ``RANGE_FIRST``
of the (type's) values lie in its range, those entities, sorted by id, are the candidates
instead; one count (an InitPlan reading at most ``RANGE_FIRST`` index entries) picks the
branch at run time. Values are bound parameters, so
each query shape is one prepared statement whose generic plan the server keeps.
"""

from __future__ import annotations

from typing import Final

from city_os.ngsild.query.ast import QExpr
from city_os.ngsild.query.entity_selection import Names
from city_os.store.postgres.query_sql import SqlParams, sql_string
from city_os.store.postgres.query_values import driver

# Either way the cost is about this many index probes: with fewer values in the range, the walk
# of the equality's entities is longer than the sort of the range's entities.
RANGE_FIRST: Final = 1000


def driven_ids(
    schema: str,
    q: QExpr | None,
    names: Names,
    the_type: str | None,
    check: str,
    first: str,
    params: SqlParams,
) -> str:
    """SELECT of the first ``first`` ids (placeholder) in id order of the entities of
    ``the_type`` (None: of any types) that pass ``check`` (a SELECT over ``e`` with ``d.id``
    the candidate), given that ``q`` has a string equality ``query_values.driver`` finds."""
    found = driver(q, names.attr, "txt")
    assert found is not None
    etype = "" if the_type is None else f"v.etype = {sql_string(names.type(the_type))} AND "
    of_type = f"FROM {schema}.attr_values v WHERE {etype}v.attr ="
    cands = (
        f"SELECT v.entity_id AS id {of_type} {sql_string(found[0])}"
        f" AND v.txt = {params.add(found[2])}::text"
    )
    ranged = driver(q, names.attr, "num")
    with_ = ""
    if ranged is not None:
        in_range = (
            f"{of_type} {sql_string(ranged[0])} AND v.num {ranged[1]} {params.add(ranged[2])}"
            "::numeric"
        )
        many = params.add(RANGE_FIRST)
        with_ = (
            f"WITH r AS MATERIALIZED (SELECT count(*) AS n FROM (SELECT 1 {in_range}"
            f" LIMIT {many}) x) "
        )
        cands = (
            f"(SELECT v.entity_id AS id {in_range} AND (SELECT n FROM r) < {many}"
            f" ORDER BY 1) UNION ALL ({cands} AND (SELECT n FROM r) >= {many} ORDER BY 1)"
        )
    return (
        f"{with_}SELECT DISTINCT ON (d.id) d.id FROM ({cands}) d"
        f" CROSS JOIN LATERAL ({check} OFFSET 0) c ORDER BY d.id LIMIT {first}"
    )
