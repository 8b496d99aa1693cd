"""ORDER BY of entity queries (``orderBy``, §4.23): ``OrderKey`` → SQL items, pure (no I/O).

Store layer, like query_sql: items over the entities table aliased ``e``; attribute paths,
reference geometries and collation names never enter the SQL text unchecked (bound parameters,
``check_collation``). ``QueryRepository.page`` appends ``e.id`` to every order, so that pages
are stable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from city_os.store.postgres.query_sql import SqlParams

_COLUMNS_BY_NAME = {
    "id": "e.id",
    "type": "e.types",
    "createdAt": "e.created_at",
    "modifiedAt": "e.modified_at",
}


@dataclass(frozen=True)
class OrderKey:
    """One ``orderBy`` key (§4.23): an entity column, or a path into ``attrs`` (for ``#>``).

    With ``near`` (GeoJSON geometry text), ``target`` is a GeoProperty IRI and entities are
    ordered by the distance of its nearest instance from ``near``.
    """

    target: str | tuple[str, ...]
    desc: bool = False
    near: str | None = None


_DATETIME_TYPES = "ARRAY['DateTime', 'https://uri.etsi.org/ngsi-ld/DateTime']"


def order_sql(schema: str, key: OrderKey, params: SqlParams, collation: str | None) -> list[str]:
    """ORDER BY items for one key: absent values last; numbers < strings < booleans < other
    JSON (§4.23.2), each compared natively (DateTime values as instants, ``cityos.q_datetime``);
    strings in ``collation`` when one is given."""
    direction = "DESC" if key.desc else "ASC"
    collate = f' COLLATE "{check_collation(collation)}"' if collation else ""
    if key.near is not None:
        assert isinstance(key.target, tuple)
        reference = f"ST_SetSRID(ST_GeomFromGeoJSON({params.add(key.near)}::text), 4326)"
        attr = params.add(key.target[0])
        distance = (
            f"(SELECT min(ST_Distance(g.geom::geography, {reference}::geography)) "
            f"FROM {schema}.geo g WHERE g.entity_id = e.id AND g.attr = {attr})"
        )
        return [f"{distance} {direction} NULLS LAST"]
    if isinstance(key.target, str):
        column = _COLUMNS_BY_NAME[key.target]
        if key.target == "id":
            column += collate
        return [f"{column} {direction} NULLS LAST"]
    value = f"(e.attrs #> {params.add(list(key.target))}::text[])"
    kind = f"jsonb_typeof({value})"
    return [
        f"({value} IS NULL OR {kind} = 'null')",
        f"CASE {kind} WHEN 'number' THEN 0 WHEN 'string' THEN 1 WHEN 'boolean' THEN 2 ELSE 3 END"
        f" {direction}",
        f"CASE WHEN {kind} = 'number' THEN {value}::numeric END {direction}",
        f"(CASE WHEN {kind} = 'string' THEN {value} #>> '{{}}' END){collate} {direction}",
        # DateTime values ({"@type": "DateTime", "@value": …}) by the instant, whatever offset
        f"CASE WHEN {kind} = 'object' AND {value} ->> '@type' = ANY({_DATETIME_TYPES})"
        f" THEN cityos.q_datetime({value} ->> '@value') END {direction}",
        f"{value} {direction}",
    ]


def check_collation(name: str) -> str:
    """Collation names come from pg_collation (``QueryRepository.collation``); refuse any
    other shape, so a name can never break out of its quoted identifier."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"not a collation name: {name!r}")
    return name
