"""Where a write's time goes inside PostgreSQL: EXPLAIN ANALYZE of the server's own statements.

Layer: bench/. Used by the ``full`` group after its scenarios: it takes an entity the run stored
in the tenant, builds the parameters of a create (one entity and a batch chunk of ``CHUNK``) and of
a partial update exactly as the store does (``store.postgres.entity_sql``), runs each statement
``ROUNDS`` times under EXPLAIN (ANALYZE, FORMAT JSON) in a transaction that is rolled back, and
reports the median milliseconds per part: each table the statement writes (entity row, geometry,
outbox; the node's time includes reading its input) and each trigger (history capture,
attr_values), per entity. Wall time of a backend that is alone on its connection: on a loaded
machine it includes waits for a CPU, so compare the parts with each other, not across runs.
"""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg
import orjson

from city_os.core.fragments import stored_entity
from city_os.events.model import attribute_changes, change_event
from city_os.ngsild.representation import EntityRecord
from city_os.store.postgres.db import _init_connection
from city_os.store.postgres.entity_sql import (
    EntityStatements,
    Write,
    _encoded,
    _geo_rows,
    _record,
)

ROUNDS = 15
CHUNK = 100  # entities of the batch statement (the store writes up to 200 per statement)


@dataclass
class Breakdown:
    """Median ms per part of one statement, per entity written."""

    label: str
    entities: int
    parts: dict[str, float] = field(default_factory=dict)
    total: float = 0.0


def _nodes(plan: dict[str, Any], out: dict[str, float]) -> None:
    if plan.get("Node Type") == "ModifyTable":
        name = f"{plan['Operation'].lower()} {plan['Relation Name']}"
        out[name] = out.get(name, 0.0) + float(plan["Actual Total Time"])
    for child in plan.get("Plans", ()):
        _nodes(child, out)


def _parts(explained: Any) -> tuple[dict[str, float], float]:
    doc = orjson.loads(explained) if isinstance(explained, str | bytes) else explained
    top = doc[0]
    parts: dict[str, float] = {}
    _nodes(top["Plan"], parts)
    for trig in top.get("Triggers", ()):
        parts[f"trigger {trig['Trigger Name']}"] = float(trig["Time"])
    return parts, float(top["Execution Time"])


async def _measure(
    conn: asyncpg.Connection, label: str, sql: str, params: list[Any], n: int
) -> Breakdown:
    samples: dict[str, list[float]] = defaultdict(list)
    totals: list[float] = []
    for i in range(ROUNDS + 1):
        tr = conn.transaction()
        await tr.start()
        try:
            raw = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, *params)
        finally:
            await tr.rollback()
        if i == 0:
            continue  # the first one plans and warms the caches
        parts, total = _parts(raw)
        for name, ms in parts.items():
            samples[name].append(ms)
        totals.append(total)
    out = Breakdown(label, n, total=statistics.median(totals) / n)
    out.parts = {name: statistics.median(v) / n for name, v in samples.items()}
    # What no node or trigger accounts for: reading the JSON parameters, the CTE joins, the
    # end of the statement; on a loaded machine mostly waits for a CPU.
    out.parts["rest"] = max(0.0, out.total - sum(out.parts.values()))
    return out


def _created(record: EntityRecord) -> Write:
    ev = change_event(
        kind="created",
        tenant="bench",
        entity_id=record.id,
        types=record.types,
        changes=attribute_changes(None, record.attrs),
        entity=stored_entity(record),
        time=record.created_at,
        source="http://bench",
    )
    return Write(record, ev)


async def _insert_params(writes: list[Write]) -> list[Any]:
    rows = [
        {
            "id": w.record.id,
            "types": w.record.types,
            "scopes": w.record.scopes,
            "attrs": w.record.attrs,
            "created_at": w.record.created_at,
            "expires_at": w.record.expires_at,
        }
        for w in writes
    ]
    return await _encoded(rows, _geo_rows(writes), writes)


async def _update_params(record: EntityRecord, version: int, attr: str) -> list[Any]:
    attrs = dict(record.attrs)
    instance = dict(attrs[attr][0])
    instance["value"] = 12.3
    attrs[attr] = [instance]
    after = replace(record, attrs=attrs)
    ev = change_event(
        kind="updated",
        tenant="bench",
        entity_id=after.id,
        types=after.types,
        changes=attribute_changes(record.attrs, attrs, [attr]),
        entity=stored_entity(after),
        time=after.modified_at,
        source="http://bench",
    )
    write = Write(after, ev, version, geo_changed=False)
    row = {
        "id": after.id,
        "types": after.types,
        "scopes": after.scopes,
        "attrs": after.attrs,
        "modified_at": after.modified_at,
        "expires_at": after.expires_at,
        "version": version,
    }
    return await _encoded([row], None, [write])


async def explain_writes(dsn: str, schema: str, id_like: str, attr_suffix: str) -> list[Breakdown]:
    """Breakdowns of create, batch create (per entity) and partial update of ``attr_suffix``
    for a stored entity of ``schema`` whose id is LIKE ``id_like``."""
    conn = await asyncpg.connect(dsn, server_settings={"jit": "off"})
    try:
        await _init_connection(conn)
        st = EntityStatements(schema)
        row = await conn.fetchrow(st.get_one.replace("id = $1", "id LIKE $1"), id_like)
        if row is None:
            return []
        stored = _record(row)
        rec = stored.record

        def fresh() -> EntityRecord:
            return replace(rec, id=f"{rec.id}-explain-{uuid.uuid4().hex[:8]}")

        one = await _insert_params([_created(fresh())])
        many = await _insert_params([_created(fresh()) for _ in range(CHUNK)])
        attr = next(a for a in rec.attrs if a.endswith(attr_suffix))
        upd = await _update_params(rec, stored.version, attr)
        return [
            await _measure(conn, "create", st.insert, one, 1),
            await _measure(conn, f"batch create ({CHUNK} a statement)", st.insert, many, CHUNK),
            await _measure(conn, "partial update", st.update_plain, upd, 1),
        ]
    finally:
        await conn.close()


def print_breakdowns(rows: list[Breakdown], load1: float) -> None:
    if not rows:
        return
    print(
        f"  inside PostgreSQL (EXPLAIN ANALYZE of the server's statements, median of {ROUNDS},"
        f" ms per entity, load {load1:.2f}):"
    )
    for b in rows:
        parts = ", ".join(
            f"{name} {ms:.3f}" for name, ms in sorted(b.parts.items(), key=lambda kv: -kv[1])
        )
        print(f"    {b.label:<31} {b.total:.3f} = {parts}")
