"""The ceilings the API is compared with, each measured in the same run on the same machine.

* ``http``: a minimal aiohttp + uvloop app answering the same routes with fixed responses after
  reading (and JSON-parsing) the body: what the HTTP layer alone allows.
* ``null``: a raw asyncio protocol answering every request with a fixed response, the cheapest
  server possible: what the load client itself allows (its own ceiling).
* ``db``: raw asyncpg against a plain ``(id text, doc jsonb)`` table: the same JSON inserted,
  fetched, patched or batch-inserted at the same concurrency through a pool of the same size.

``python -m bench.ceilings http|null PORT`` runs a server in its own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import orjson

from bench.loadgen import LoadResult
from bench.workload import (
    BATCH_SIZE,
    PREFIX,
    Scenario,
    batch_json,
    entity_id,
    entity_json,
    retrieved_json,
)

# ------------------------------------------------------------------------------------ http


def http_app() -> object:
    from aiohttp import web

    async def create(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        return web.Response(status=201, headers={"Location": f"{PREFIX}/entities/{body['id']}"})

    async def retrieve(request: web.Request) -> web.Response:
        eid = request.match_info["entityId"]
        return web.Response(body=retrieved_json(eid), content_type="application/json")

    async def patch(request: web.Request) -> web.Response:
        orjson.loads(await request.read())
        return web.Response(status=204)

    async def batch(request: web.Request) -> web.Response:
        ids = [e["id"] for e in orjson.loads(await request.read())]
        return web.Response(status=201, body=orjson.dumps(ids), content_type="application/json")

    page = orjson.dumps([{"id": f"urn:ngsi-ld:Entity:{n}", "type": "Entity"} for n in range(20)])

    async def query(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="application/json")

    app = web.Application(client_max_size=2 * 1024 * 1024)
    app.router.add_get(PREFIX + "/entities", query)
    app.router.add_patch(PREFIX + "/entities/{entityId}/attrs", patch)
    app.router.add_post(PREFIX + "/entities", create)
    app.router.add_get(PREFIX + "/entities/{entityId}", retrieve)
    app.router.add_patch(PREFIX + "/entities/{entityId}/attrs/{attrId}", patch)
    app.router.add_post(PREFIX + "/entityOperations/create", batch)
    return app


class _NullServer(asyncio.Protocol):
    """Answers each complete request (header + Content-Length body) with a fixed 201/200/204."""

    _ANSWERS: ClassVar[dict[bytes, bytes]] = {
        b"P": b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        b"G": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    }
    _PATCH = b"HTTP/1.1 204 No Content\r\n\r\n"

    def connection_made(self, transport: Any) -> None:  # uvloop's is no asyncio.Transport
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        out = []
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end]
            i = head.find(b"Content-Length: ")
            j = head.find(b"\r\n", i)
            length = int(head[i + 16 : j if j > 0 else len(head)]) if i >= 0 else 0
            if len(buf) < end + 4 + length:
                break
            out.append(self._PATCH if head[:2] == b"PA" else self._ANSWERS[head[:1]])
            buf = buf[end + 4 + length :]
        self.buf = buf
        if out:
            self.transport.write(b"".join(out))


def serve(kind: str, port: int) -> None:
    import uvloop

    if kind == "http":
        from aiohttp import web

        uvloop.install()
        web.run_app(http_app(), host="127.0.0.1", port=port, access_log=None, print=None)  # type: ignore[arg-type]
        return

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_NullServer, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(main())


# -------------------------------------------------------------------------------------- db

SETUP = "DROP TABLE IF EXISTS bench_raw; CREATE TABLE bench_raw (id text PRIMARY KEY, doc jsonb)"
_SQL = {
    "create": "INSERT INTO bench_raw (id, doc) VALUES ($1, $2::jsonb)",
    "retrieve": "SELECT doc FROM bench_raw WHERE id = $1",
    "update": "UPDATE bench_raw SET doc = jsonb_set(doc, '{temperature,value}', $2::jsonb) "
    "WHERE id = $1",
    "batch": "INSERT INTO bench_raw (id, doc) "
    "SELECT d->>'id', d FROM jsonb_array_elements($1::jsonb) AS d",
}


async def _create_pool(dsn: str, size: int, within: float = 120.0) -> Any:
    """A pool of ``size`` connections; on a shared server whose connection slots are all taken
    (other engineers' tests), wait for free ones instead of failing the run."""
    import asyncpg

    deadline = time.monotonic() + within
    while True:
        try:
            pool = await asyncpg.create_pool(dsn, min_size=size, max_size=size)
            assert pool is not None
            return pool
        except asyncpg.TooManyConnectionsError:
            if time.monotonic() > deadline:
                raise
            print("  (PostgreSQL has no free connection slot: waiting)", flush=True)
            await asyncio.sleep(2.0)


async def _pool_load(
    dsn: str,
    op: Callable[[Any, int], Awaitable[bool]],
    concurrency: int,
    pool_size: int,
    warmup: float,
    duration: float,
) -> LoadResult:
    """``op(conn, seq)`` on a pooled connection, ``concurrency`` at a time, timed like the load
    client: latencies and successes inside the measured window only."""
    import asyncpg

    pool = await _create_pool(dsn, pool_size)
    res = LoadResult()
    lat: list[float] = []
    counter = 0
    clock = time.perf_counter
    t0 = clock() + warmup
    t1 = t0 + duration

    async def worker() -> None:
        nonlocal counter
        while True:
            if clock() >= t1:
                return
            seq = counter
            counter += 1
            start = clock()
            try:
                async with pool.acquire() as conn:
                    ok = await op(conn, seq)
            except asyncpg.PostgresError:
                ok = False
            if start >= t0:
                lat.append(clock() - start)
                if ok:
                    res.ops += 1
                else:
                    res.errors += 1

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(max(0.0, t0 - clock()))
    ru0, w0 = resource.getrusage(resource.RUSAGE_SELF), clock()
    await asyncio.gather(*tasks)
    ru1, w1 = resource.getrusage(resource.RUSAGE_SELF), clock()
    await pool.close()
    res.seconds = duration
    res.client_cpu = (ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime) / (w1 - w0)
    res.sent = counter
    res.set_latencies(lat)
    return res


async def _db(
    dsn: str, sc: Scenario, concurrency: int, pool_size: int, warmup: float, duration: float
) -> LoadResult:
    sql = _SQL[sc.kind]
    pick = random.Random(42).randrange

    def args(seq: int) -> tuple[object, ...]:
        if sc.kind == "create":
            eid = entity_id(sc.prefix, seq)
            return eid, entity_json(eid).decode()
        if sc.kind == "batch":
            return (batch_json(sc.prefix, seq * BATCH_SIZE).decode(),)
        eid = entity_id(sc.seed_prefix, pick(sc.existing))
        return (eid,) if sc.kind == "retrieve" else (eid, str(seq % 400 / 10))

    async def op(conn: Any, seq: int) -> bool:
        if sc.kind == "retrieve":
            return await conn.fetchval(sql, *args(seq)) is not None
        return not (await conn.execute(sql, *args(seq))).endswith(" 0")

    return await _pool_load(dsn, op, concurrency, pool_size, warmup, duration)


def run_db(
    dsn: str, sc: Scenario, concurrency: int, pool_size: int, warmup: float, duration: float
) -> LoadResult:
    """The raw asyncpg ceiling of one scenario (run in the client process, not the bench's)."""
    import uvloop

    return uvloop.run(_db(dsn, sc, concurrency, pool_size, warmup, duration))


Statement = tuple[str, list[Any]]


def run_sql(
    dsn: str,
    statements: list[Statement],
    concurrency: int,
    pool_size: int,
    warmup: float,
    duration: float,
) -> LoadResult:
    """The SQL ceiling of a query: the statements the API issues for one request (page, then
    count), fetched on one pooled connection per operation; ok when the first returns rows."""
    import uvloop

    async def op(conn: Any, seq: int) -> bool:
        rows = [await conn.fetch(sql, *args) for sql, args in statements]
        return bool(rows[0])

    return uvloop.run(_pool_load(dsn, op, concurrency, pool_size, warmup, duration))


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
