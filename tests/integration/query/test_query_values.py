"""The attribute-value table (tenant_values.sql, query_values.py) against PostgreSQL's jsonpath.

Property tests: for any stored shape of an attribute's instances (nested arrays, objects,
strings that look like numbers, lists, language maps, several instances), the EXISTS probe of
the values ``cityos.q_values`` derives answers a q term exactly as the term's jsonpath does.
Trigger tests: after inserts, partial and full updates, changes of types and deletes through
real statements, a tenant's ``attr_values`` holds exactly ``cityos.q_values`` of every entity's
attrs, with the entity's type where it has only one (``etype``).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from city_os.ngsild.query.q import parse_q
from city_os.store.postgres.db import migrate, tenant_ddl
from city_os.store.postgres.query_sql import SqlParams, q_to_sql

DSN = os.environ.get("CITYOS_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/cityos_test")
WORDS = ["30", "abc", "7", "x", "urn:ngsi-ld:X:1"]


@pytest.fixture(scope="module")
def sync_conn() -> Iterator[tuple[asyncio.AbstractEventLoop, asyncpg.Connection]]:
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(asyncpg.connect(DSN, server_settings={"timezone": "UTC"}))
    loop.run_until_complete(conn.execute("CREATE EXTENSION IF NOT EXISTS postgis"))
    loop.run_until_complete(migrate(conn))
    # The values of the one entity whose attrs are in qsrc, as the triggers would store them.
    loop.run_until_complete(
        conn.execute(
            "CREATE TEMP TABLE qsrc (attrs jsonb); INSERT INTO qsrc VALUES ('{}');"
            "CREATE TEMP VIEW qv AS SELECT 'e1'::text AS entity_id, v.attr, v.num, v.txt"
            " FROM qsrc, cityos.q_values(qsrc.attrs) v"
        )
    )
    yield loop, conn
    loop.run_until_complete(conn.close())
    loop.close()


_SCALARS = st.one_of(
    st.integers(-50, 50),
    st.floats(-50, 50, allow_nan=False, allow_infinity=False),
    st.sampled_from([*WORDS, True, False, None]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("ab"), inner),
    max_leaves=6,
)
_INSTANCE = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["Property", "Relationship", "ListProperty"]),
        "value": _VALUES,
        "json": _VALUES,
        "valueList": _VALUES,
        "object": _VALUES,
        "objectList": _VALUES,
        "vocab": _VALUES,
        "languageMap": st.dictionaries(st.sampled_from(["en", "ja"]), _VALUES, min_size=1),
        "observedAt": _VALUES,
    },
)
# Mostly lists of instances (the stored form), sometimes any JSON (bad stored data).
_ATTRIBUTE = st.lists(_INSTANCE | _VALUES, min_size=1, max_size=3) | _VALUES
_TERMS = st.one_of(
    st.builds(
        lambda op, n: f"a{op}{n}", st.sampled_from([">", ">=", "<", "<="]), st.integers(-40, 40)
    ),
    st.builds(lambda w: f'a=="{w}"', st.sampled_from(WORDS)),
    st.just("a==urn:ngsi-ld:X:1"),
)


@settings(max_examples=200, deadline=None)
@given(attribute=_ATTRIBUTE, other=_ATTRIBUTE, q=_TERMS)
def test_value_probes_match_the_jsonpath(
    sync_conn: tuple[asyncio.AbstractEventLoop, asyncpg.Connection],
    attribute: Any,
    other: Any,
    q: str,
) -> None:
    loop, conn = sync_conn
    attrs = json.dumps({"a": attribute, "b": other})
    expr = parse_q(q)
    params = SqlParams(start=2)
    plain, _ = q_to_sql(expr, lambda t: t, params=params)
    probed, args = q_to_sql(expr, lambda t: t, params=params, values_table="pg_temp.qv")
    assert "pg_temp.qv" in probed, q
    sql = (
        f"SELECT coalesce({plain}, false) AS want, coalesce({probed}, false) AS got"
        " FROM (SELECT 'e1'::text AS id, $1::jsonb AS attrs) AS e"
    )

    async def both() -> asyncpg.Record:
        await conn.execute("UPDATE qsrc SET attrs = $1::jsonb", attrs)
        return await conn.fetchrow(sql, attrs, *args)

    row = loop.run_until_complete(both())
    assert row["got"] == row["want"], (q, attribute)


def test_long_strings_keep_the_jsonpath() -> None:
    long = "x" * 513
    probed, _ = q_to_sql(parse_q(f'a=="{long}"'), lambda t: t, values_table="s.attr_values")
    assert "attr_values" not in probed
    probed, _ = q_to_sql(parse_q('a=="short";b>3'), lambda t: t, values_table="s.attr_values")
    assert probed.count("s.attr_values") == 2


def test_probes_keep_to_the_one_type_of_the_entity_not_of_linked_ones() -> None:
    q = parse_q('a>1;r{b}=="x"')
    sql, _ = q_to_sql(
        q, lambda t: t, values_table="s.attr_values", entities_table="s.entities", entity_type="T"
    )
    # a of e: only type T's rows; b of the linked entity l1: any type.
    assert sql.count("v.etype = E'T'") == 1
    assert "v.entity_id = e.id AND v.attr = E'a' AND v.etype = E'T'" in sql
    assert "v.entity_id = l1.id AND v.attr = E'b' AND v.txt" in sql


def test_the_triggers_keep_the_values(
    sync_conn: tuple[asyncio.AbstractEventLoop, asyncpg.Connection],
) -> None:
    loop, conn = sync_conn
    schema = "qvals_" + uuid.uuid4().hex[:12]
    insert = (
        f"INSERT INTO {schema}.entities (id, types, attrs, created_at, modified_at)"
        " SELECT d->>'id', ARRAY['T'], d->'attrs', now(), now()"
        " FROM jsonb_array_elements($1::jsonb) d"
    )
    at = {"createdAt": "2026-05-01T00:00:00Z", "modifiedAt": "2026-05-01T00:00:00Z"}
    docs = [
        {"id": f"e{n}", "attrs": {"a": [{"value": n, **at}], "b": [{"value": f"w{n}", **at}]}}
        for n in range(5)
    ]
    a = [{"value": 99, **at}, {"value": [1, [2]], "datasetId": "d", **at}]
    c = {"c": [{"object": "urn:x", **at}]}
    check = (
        f"SELECT (SELECT array_agg(x ORDER BY x) FROM (SELECT entity_id || attr || coalesce("
        f"num::text, '') || coalesce(txt, '') || coalesce(etype, '-') AS x"
        f" FROM {schema}.attr_values) s) IS NOT DISTINCT"
        f" FROM (SELECT array_agg(x ORDER BY x) FROM (SELECT e.id || v.attr || coalesce("
        f"v.num::text, '') || coalesce(v.txt, '') || CASE cardinality(e.types) WHEN 1"
        f" THEN e.types[1] ELSE '-' END AS x FROM {schema}.entities e,"
        f" cityos.q_values(e.attrs) v) s)"
    )

    async def run() -> list[tuple[str, bool, int]]:
        await conn.execute(tenant_ddl(schema))
        steps: list[tuple[str, bool, int]] = []
        try:

            async def step(name: str, sql: str, *args: Any) -> None:
                await conn.execute(sql, *args)
                count = await conn.fetchval(f"SELECT count(*) FROM {schema}.attr_values")
                steps.append((name, await conn.fetchval(check), count))

            await step("insert", insert, json.dumps(docs))
            await step(
                "partial",
                f"UPDATE {schema}.entities SET attrs = jsonb_set(attrs, '{{a}}', $1::jsonb)"
                " WHERE id = 'e1'",
                json.dumps(a),
            )
            await step(
                "replace",
                f"UPDATE {schema}.entities SET attrs = $1::jsonb WHERE id IN ('e2', 'e3')",
                json.dumps(c),
            )
            await step("unchanged", f"UPDATE {schema}.entities SET modified_at = now()")
            await step(
                "two types", f"UPDATE {schema}.entities SET types = ARRAY['T', 'U'] WHERE id = 'e4'"
            )
            await step(
                "retyped",
                f"UPDATE {schema}.entities SET types = ARRAY['U'],"
                f" attrs = jsonb_set(attrs, '{{a}}', $1::jsonb) WHERE id IN ('e3', 'e4')",
                json.dumps(a),
            )
            await step("delete", f"DELETE FROM {schema}.entities WHERE id IN ('e0', 'e2')")
            # The backfill of an existing tenant: drop the table, apply the tenant DDL again.
            await conn.execute(f"DROP TABLE {schema}.attr_values")
            await step("backfill", tenant_ddl(schema))
        finally:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        return steps

    steps = loop.run_until_complete(run())
    # e0..e4 with a and b (10); e1's a now 99, 1, 2 (12); e2, e3 one object each (10);
    # unchanged (10); e4 of two types (10); e3, e4 of type U with e1's a (e3 3 more, e4 2: 15);
    # e0 and e2 gone (12); the backfill rebuilds the same 12.
    assert steps == [
        ("insert", True, 10),
        ("partial", True, 12),
        ("replace", True, 10),
        ("unchanged", True, 10),
        ("two types", True, 10),
        ("retyped", True, 15),
        ("delete", True, 12),
        ("backfill", True, 12),
    ]
