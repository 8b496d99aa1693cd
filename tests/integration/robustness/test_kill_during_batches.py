"""SIGKILL during a stream of batch upserts: every batch is stored whole (entities and one
outbox row per entity) or not at all, and every acknowledged batch is stored.

Three clients stream 100-entity upserts (50 new entities, 50 shared existing ones: creates,
replaces and the optimistic retries between concurrent batches) into a real ``city-os serve``;
it is killed with SIGKILL while batches are in flight, twice (the second broker starts on the
database the first one left). Each entity carries the number of the batch that wrote it, so
the outbox tells, per batch, how many of its entity changes were committed.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aiohttp
import asyncpg
import orjson

from city_os.store.postgres.db import schema_name
from tests.conftest import TEST_DSN
from tests.integration.robustness.support import API, poll, serve

BATCH_IRI = "https://uri.etsi.org/ngsi-ld/default-context/batch"
SHARED = 150
STREAMS = 3
PER_BATCH = 100


def _entity(entity_id: str, batch: int) -> dict[str, Any]:
    return {
        "id": entity_id,
        "type": "Sensor",
        "batch": {"type": "Property", "value": batch},
        "level": {"type": "Property", "value": random.random(), "unitCode": "MTR"},
    }


class Stream:
    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.sent: dict[int, list[str]] = {}  # batch number → entity ids
        self.acked: set[int] = set()

    async def run(self, url: str, numbers: list[int], acked_total: list[int]) -> None:
        headers = {"NGSILD-Tenant": self.tenant, "Content-Type": "application/json"}
        async with aiohttp.ClientSession() as http:
            for n in numbers:
                ids = [f"urn:ngsi-ld:Sensor:b{n}-{i}" for i in range(PER_BATCH // 2)]
                ids += random.sample([f"urn:ngsi-ld:Sensor:s{i}" for i in range(SHARED)], 50)
                self.sent[n] = ids
                body = orjson.dumps([_entity(i, n) for i in ids])
                try:
                    async with http.post(
                        url + f"{API}/entityOperations/upsert", data=body, headers=headers
                    ) as resp:
                        text = await resp.text()
                        assert resp.status in (201, 204), text  # all valid: no 207
                        self.acked.add(n)
                        acked_total.append(n)
                except (aiohttp.ClientError, ConnectionError):
                    return  # the broker was killed: this batch is in flight


async def _batches_stored(tenant: str) -> dict[int, int]:
    """Outbox rows per batch number (the value each change event carries)."""
    conn = await asyncpg.connect(TEST_DSN)
    try:
        rows = await conn.fetch(
            "SELECT (payload::jsonb #>> ARRAY['data','entity','attrs',$2,'0','value'])::int"
            " AS batch, count(*) AS n FROM cityos.outbox WHERE tenant = $1 GROUP BY 1",
            tenant,
            BATCH_IRI,
        )
        return {r["batch"]: r["n"] for r in rows}
    finally:
        await conn.close()


async def _consistent_with_outbox(tenant: str) -> None:
    """Each entity's stored state is the one its last outbox row carries."""
    conn = await asyncpg.connect(TEST_DSN)
    try:
        rows = await conn.fetch(
            f"""SELECT e.id, e.attrs #>> ARRAY[$2, '0', 'value'] AS stored, (
                    SELECT o.payload::jsonb #>> ARRAY['data','entity','attrs',$2,'0','value']
                    FROM cityos.outbox o WHERE o.tenant = $1 AND o.entity_id = e.id
                    ORDER BY o.seq DESC LIMIT 1) AS evented
                FROM {schema_name(tenant)}.entities e""",
            tenant,
            BATCH_IRI,
        )
        assert rows
        bad = [(r["id"], r["stored"], r["evented"]) for r in rows if r["stored"] != r["evented"]]
        assert not bad, bad[:5]
    finally:
        await conn.close()


async def test_sigkill_leaves_every_batch_whole_or_absent(tenant: str) -> None:
    headers = {"NGSILD-Tenant": tenant, "Content-Type": "application/json"}
    streams = [Stream(tenant) for _ in range(STREAMS)]
    next_number = 1
    for round_ in range(2):
        async with serve(db_pool_max="8") as broker:
            if round_ == 0:
                shared = [_entity(f"urn:ngsi-ld:Sensor:s{i}", 0) for i in range(SHARED)]
                async with (
                    aiohttp.ClientSession() as http,
                    http.post(
                        broker.url + f"{API}/entityOperations/create",
                        data=orjson.dumps(shared),
                        headers=headers,
                    ) as resp,
                ):
                    assert resp.status == 201, await resp.text()
            acked: list[int] = []
            tasks = []
            for stream in streams:
                numbers = list(range(next_number, next_number + 1000))
                next_number += 1000
                tasks.append(asyncio.create_task(stream.run(broker.url, numbers, acked)))
            kill_after = random.randint(4, 10)

            async def enough(acked: list[int] = acked, kill_after: int = kill_after) -> bool:
                return len(acked) >= kill_after

            await poll(enough)
            broker.kill()  # SIGKILL while every stream has a batch in flight
            await asyncio.gather(*tasks)
    stored = await _batches_stored(tenant)
    sent = {n: ids for s in streams for n, ids in s.sent.items()}
    acked_all = {n for s in streams for n in s.acked}
    in_flight = set(sent) - acked_all
    assert len(in_flight) >= 2 * STREAMS - 1, "the kills must hit batches in flight"
    for n in sent:
        count = stored.get(n, 0)
        assert count in (0, PER_BATCH), f"batch {n} is half-stored: {count} of {PER_BATCH}"
        if n in acked_all:
            assert count == PER_BATCH, f"acknowledged batch {n} is not stored"
    unknown = set(stored) - set(sent) - {0}
    assert not unknown, unknown
    await _consistent_with_outbox(tenant)
    # New entities exist exactly for the batches stored.
    conn = await asyncpg.connect(TEST_DSN)
    try:
        ids = {r["id"] for r in await conn.fetch(f"SELECT id FROM {schema_name(tenant)}.entities")}
    finally:
        await conn.close()
    for n, entity_ids in sent.items():
        new = [i for i in entity_ids if ":b" in i]
        present = sum(i in ids for i in new)
        assert present == (len(new) if stored.get(n) else 0), (n, present)
