"""``--only writecost``: PostgreSQL CPU per entity write, split by the trigger families, robust to
other load on the machine.

Layer: bench/. No HTTP: one connection runs the store's own statements
(``store.postgres.entity_sql``, parameters built as the store builds them, ``bench.write_cost``)
against a tenant of ``PRELOAD`` analyzed entities, and reads the CPU time of its backend process
(``/proc/<pid>/schedstat``, nanoseconds on a CPU) around each statement. Four configurations of
the same tenant alternate round by round (the triggers switched with ALTER TABLE … DISABLE
TRIGGER): everything on, history capture off, attribute values (``attr_values``) off, both off.
CPU time, unlike wall time, does not count the waits for a CPU, so a loaded machine changes the
figures far less than the throughput; the medians of alternating rounds cancel the drift that
remains. What the configurations differ by is what the trigger family costs per write.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg

from bench.write_cost import _created, _insert_params, _update_params
from city_os.ngsild.representation import EntityRecord
from city_os.store.postgres.db import Tenants, _init_connection
from city_os.store.postgres.entity_sql import EntityStatements, _record

TENANT = "bench-writecost"
PRELOAD = 3000  # entities in the tenant (analyzed) before the measured rounds
ROUNDS = 3
OPS = 100  # creates and updates per configuration and round
BATCHES = 3  # batch statements (of BATCH entities) per configuration and round
BATCH = 100
_TEMPORAL = ("entities_temporal_insert", "entities_temporal_update")
_VALUES = ("entities_values_added", "entities_values_changed")
CONFIGS: dict[str, tuple[str, ...]] = {  # name → triggers disabled
    "all on": (),
    "no history capture": _TEMPORAL,
    "no attr_values": _VALUES,
    "neither": _TEMPORAL + _VALUES,
}
KINDS = ("create", "partial update", "partial update, observedAt", "batch create")
_TYPE = "https://uri.etsi.org/ngsi-ld/default-context/AirQualityObserved"
_ATTR = "https://uri.etsi.org/ngsi-ld/default-context/temperature"
_AT = "2026-01-01T00:00:00Z"


@dataclass
class StatementCpu:
    """µs of backend CPU per entity written: samples[(config, kind)] = one per round."""

    samples: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)

    def median(self, config: str, kind: str) -> float:
        return statistics.median(self.samples[(config, kind)])


def _attrs() -> dict[str, Any]:
    """The stored form of the foundation workload's entity (bench.workload)."""

    def prop(value: Any, unit: str | None = None) -> list[dict[str, Any]]:
        one = {"type": "Property", "value": value, "createdAt": _AT, "modifiedAt": _AT}
        return [one | {"unitCode": unit}] if unit else [one]

    core, dc = "https://uri.etsi.org/ngsi-ld/", "https://uri.etsi.org/ngsi-ld/default-context/"
    point = {"type": "Point", "coordinates": [130.2988, 33.2635]}
    return {
        f"{dc}dateObserved": prop({"@type": "DateTime", "@value": "2026-05-01T09:00:00Z"}),
        f"{core}location": [{"type": "GeoProperty", "value": point, "createdAt": _AT,
                             "modifiedAt": _AT}],
        _ATTR: prop(21.4, "CEL"),
        f"{dc}relativeHumidity": prop(0.62, "P1"),
        f"{dc}no2": prop(18.2, "GQ"),
        f"{dc}pm25": prop(9.1, "GQ"),
        f"{dc}name": prop("Saga Ekimae station"),
        f"{dc}refDevice": [{"type": "Relationship", "object": "urn:ngsi-ld:Device:saga-aq-017",
                            "createdAt": _AT, "modifiedAt": _AT}],
    }  # fmt: skip


def _record_of(eid: str) -> EntityRecord:
    return EntityRecord(eid, [_TYPE], _attrs(), None, _AT, _AT, None)


def _cpu_ns(pid: int) -> int:
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


class _Bench:
    def __init__(self, conn: asyncpg.Connection, schema: str, pid: int) -> None:
        self.conn, self.schema, self.pid = conn, schema, pid
        self.st = EntityStatements(schema)
        self.targets: list[str] = []
        self.seq = 0

    async def creates(self) -> float:
        params = [await _insert_params([_created(_record_of(self._id()))]) for _ in range(OPS)]
        start = _cpu_ns(self.pid)
        for p in params:
            await self.conn.fetch(self.st.insert, *p)
        return (_cpu_ns(self.pid) - start) / OPS / 1000

    async def batches(self) -> float:
        params = [
            await _insert_params([_created(_record_of(self._id())) for _ in range(BATCH)])
            for _ in range(BATCHES)
        ]
        start = _cpu_ns(self.pid)
        for p in params:
            async with self.conn.transaction():
                await self.conn.fetch(self.st.insert, *p)
        return (_cpu_ns(self.pid) - start) / (BATCHES * BATCH) / 1000

    async def updates(self, observed: bool) -> float:
        spent = 0
        for k in range(OPS):
            self.seq += 1
            row = await self.conn.fetchrow(self.st.get_one, self.targets[k % len(self.targets)])
            stored = _record(row)
            instance = dict(stored.record.attrs[_ATTR][0])
            minute, second = divmod(self.seq % 3600, 60)
            instance["modifiedAt"] = f"2026-01-02T00:{minute:02d}:{second:02d}Z"
            if observed:
                instance["observedAt"] = f"2026-01-01T12:{minute:02d}:{second:02d}Z"
            attrs = stored.record.attrs | {_ATTR: [instance]}
            record = replace(stored.record, attrs=attrs, modified_at=instance["modifiedAt"])
            params = await _update_params(record, stored.version, _ATTR)
            start = _cpu_ns(self.pid)
            await self.conn.fetch(self.st.update_plain, *params)
            spent += _cpu_ns(self.pid) - start
        return spent / OPS / 1000

    def _id(self) -> str:
        return f"urn:ngsi-ld:AirQualityObserved:w{uuid.uuid4().hex}"

    async def configure(self, disabled: tuple[str, ...]) -> None:
        for trigger in _TEMPORAL + _VALUES:
            action = "DISABLE" if trigger in disabled else "ENABLE"
            sql = f"ALTER TABLE {self.schema}.entities {action} TRIGGER {trigger}"
            await self.conn.execute(sql)


async def run(dsn: str) -> StatementCpu:
    out = StatementCpu()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1, init=_init_connection)
    try:
        schema = await Tenants(pool).schema(TENANT, create=True)
        async with pool.acquire() as conn:
            await conn.execute("SET jit = off")  # as the server's pool
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            b = _Bench(conn, schema, pid)
            for _ in range(PRELOAD // BATCH):
                await b.batches()
            b.targets = [r["id"] for r in await conn.fetch(
                f"SELECT id FROM {schema}.entities ORDER BY id LIMIT 200")]  # fmt: skip
            await conn.execute(f"ANALYZE {schema}.entities")
            for r in range(ROUNDS):
                order = list(CONFIGS) if r % 2 == 0 else list(reversed(CONFIGS))
                for name in order:
                    await b.configure(CONFIGS[name])
                    for kind, measure in zip(KINDS, (b.creates, lambda: b.updates(False),
                                                     lambda: b.updates(True), b.batches),
                                             strict=True):  # fmt: skip
                        out.samples.setdefault((name, kind), []).append(await measure())
                out.loads.append(os.getloadavg()[0])
            await b.configure(())
    finally:
        await pool.close()
    return out


def print_results(res: StatementCpu) -> None:
    print(
        f"\nPostgreSQL CPU per entity written (backend CPU time, µs; median of {ROUNDS}"
        f" alternating rounds; {PRELOAD} entities in the tenant; load"
        f" {min(res.loads):.1f}–{max(res.loads):.1f}):"
    )
    print(f"  {'':<28}" + "".join(f"{name:>20}" for name in CONFIGS))
    for kind in KINDS:
        cells = "".join(f"{res.median(name, kind):20.0f}" for name in CONFIGS)
        print(f"  {kind:<28}{cells}")
    print(
        "  (the difference between 'all on' and a column is what that trigger family costs per"
        " write; 'neither' is the entity, geometry and outbox rows alone)"
    )


if __name__ == "__main__":  # python -m bench.statement_cpu [dsn]: without the bench stack
    import sys

    print_results(asyncio.run(run(sys.argv[1] if len(sys.argv) > 1 else os.environ["DSN"])))
