"""The load client: raw HTTP/1.1 keep-alive over N connections, one request in flight on each.

Runs in its own process (see ``run_in_process``) on uvloop so it never shares an event loop with
the server or the ceilings. A request costs a bytes concatenation, one write and a header scan;
aiohttp's client costs several times more CPU per request, which on two cores would be taken from
the server under test. The client reports its own CPU time so the table can show it is not the
bottleneck.

Also here, shared by the notify, lag and relay groups: ``paced_patches`` (the open-loop writer of
``PATCH …/attrs/<attr>`` with a unique value per write, in the client process) and
``post_batches`` (seeding entities over HTTP from the bench process).
"""

from __future__ import annotations

import asyncio
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

import aiohttp

from bench.workload import ENTITY_TYPE, PREFIX, Scenario, batch_json, entity_id, request_maker


@dataclass
class LoadResult:
    ops: int = 0  # successful requests inside the measured window
    errors: int = 0  # unexpected status or broken connection inside the window
    seconds: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    client_cpu: float = 0.0  # client CPU seconds / wall seconds in the window (1.0 = one core)
    sent: int = 0  # requests issued in total (warm-up included): ids 0..sent-1 were used
    statuses: dict[int, int] = field(default_factory=dict)

    def set_latencies(self, lat: list[float]) -> None:
        """Percentiles of request latencies given in seconds."""
        if lat:
            lat.sort()
            res = [lat[min(len(lat) - 1, int(len(lat) * p))] * 1000 for p in (0.5, 0.95, 0.99)]
            self.p50_ms, self.p95_ms, self.p99_ms = res

    def rate(self, per_op: int = 1) -> float:
        return self.ops * per_op / self.seconds if self.seconds else 0.0


class Conn(asyncio.Protocol):
    """One keep-alive connection; ``request`` sends bytes and resolves to the response status."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.buf = b""
        self.waiter: asyncio.Future[int] | None = None
        self.status = 0
        self.need = -1  # bytes still expected after the header; -1 = header not complete
        self.lost = False

    def connection_made(self, transport: Any) -> None:  # uvloop's is no asyncio.Transport
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed by the server"))

    def request(self, data: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.need = -1
        self.buf = b""
        self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if self.need < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            head = buf[:end]
            self.status = int(head[9:12])
            i = head.find(b"Content-Length:")
            if i < 0:
                i = head.lower().find(b"content-length:")
            if i >= 0:
                j = head.find(b"\r\n", i)
                self.need = int(head[i + 15 : j if j > 0 else len(head)])
            elif b"chunked" in head.lower():
                self.need = -2
            else:
                self.need = 0
            buf = buf[end + 4 :]
        if self.need == -2:  # chunked: wait for the last chunk (not sent by aiohttp here)
            if not buf.endswith(b"0\r\n\r\n"):
                self.buf = buf
                return
        elif len(buf) < self.need:
            self.buf = buf
            return
        self.buf = b""
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.status)


async def _run(
    host: str, port: int, sc: Scenario, concurrency: int, warmup: float, duration: float
) -> LoadResult:
    loop = asyncio.get_running_loop()
    make = request_maker(sc)
    expected = sc.expected_status
    conns = []

    async def connect() -> Conn:
        transport, proto = await loop.create_connection(Conn, host, port)
        proto.transport = transport
        return proto

    for _ in range(concurrency):
        conns.append(await connect())
    counter = 0
    lat: list[float] = []
    res = LoadResult()
    statuses: dict[int, int] = {}
    clock = time.perf_counter
    t0 = clock() + warmup
    t1 = t0 + duration

    async def worker(conn: Conn) -> None:
        nonlocal counter
        while True:
            if clock() >= t1:
                return
            seq = counter
            counter += 1
            data = make(seq)
            start = clock()
            try:
                if conn.lost:
                    conn = await connect()
                status = await conn.request(data)
            except (ConnectionError, OSError):
                status = 0
            if start >= t0:
                lat.append(clock() - start)
                statuses[status] = statuses.get(status, 0) + 1
                if status == expected:
                    res.ops += 1
                else:
                    res.errors += 1

    tasks = [asyncio.create_task(worker(c)) for c in conns]
    await asyncio.sleep(max(0.0, t0 - clock()))
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    w0 = clock()
    await asyncio.gather(*tasks)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    w1 = clock()
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    res.seconds = duration
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    res.client_cpu = cpu / (w1 - w0)
    res.sent = counter
    res.statuses = statuses
    res.set_latencies(lat)
    return res


def run_load(
    host: str, port: int, sc: Scenario, concurrency: int, warmup: float, duration: float
) -> LoadResult:
    import uvloop

    return uvloop.run(_run(host, port, sc, concurrency, warmup, duration))


def client_process() -> ProcessPoolExecutor:
    """The one process the load client runs in (spawned: no state inherited from the bench)."""
    return ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))


# ------------------------------------------------------- paced partial updates (client process)


def pct(values: list[float], p: float) -> float:
    """The ``p`` quantile (0…1) of ``values`` (NaN when empty)."""
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


@dataclass(frozen=True)
class Paced:
    """``n`` PATCHes of ``attr`` (value = the write's sequence number) over ``entities`` existing
    entities ``entity_id(prefix, 0 … entities-1)``, at ``rate``/s (0: as fast as they go), open
    loop over ``connections`` keep-alive connections."""

    prefix: str
    attr: str
    n: int
    rate: float
    entities: int = 1000
    connections: int = 16


# (sequence number, status, wall time of the response) of one paced write
Answer = tuple[int, int, float]


async def _paced(port: int, plan: Paced) -> list[Answer]:
    loop = asyncio.get_running_loop()
    conns: list[Conn] = []
    for _ in range(plan.connections):
        transport, proto = await loop.create_connection(Conn, "127.0.0.1", port)
        proto.transport = transport
        conns.append(proto)
    head = b"Host: bench\r\nContent-Type: application/json\r\n"
    done: list[Answer] = []
    counter = 0
    clock = time.perf_counter
    t0 = clock() + 0.1

    async def worker(conn: Conn) -> None:
        nonlocal counter
        while counter < plan.n:
            seq = counter
            counter += 1
            eid = entity_id(plan.prefix, seq % plan.entities)
            body = b'{"value":' + str(seq).encode() + b"}"
            data = f"PATCH {PREFIX}/entities/{eid}/attrs/{plan.attr} HTTP/1.1\r\n".encode()
            data += head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
            if plan.rate:
                delay = t0 + seq / plan.rate - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
            try:
                status = await conn.request(data)
            except (ConnectionError, OSError):
                status = 0
            done.append((seq, status, time.time()))

    await asyncio.gather(*(worker(c) for c in conns))
    for c in conns:
        c.transport.close()
    return done


def paced_patches(port: int, plan: Paced) -> list[Answer]:
    """Run ``plan`` against ``127.0.0.1:port`` (call it in the client process)."""
    import uvloop

    return uvloop.run(_paced(port, plan))


async def post_batches(
    port: int,
    prefix: str,
    total: int,
    size: int = 1000,
    tenant: str = "",
    model: str = ENTITY_TYPE,
) -> None:
    """Seed ``total`` entities ``entity_id(prefix, 0 … total-1, model)`` by batch create."""
    url = f"http://127.0.0.1:{port}{PREFIX}/entityOperations/create"
    headers = {"Content-Type": "application/json", **({"NGSILD-Tenant": tenant} if tenant else {})}
    async with aiohttp.ClientSession() as http:
        for first in range(0, total, size):
            body = batch_json(prefix, first, min(size, total - first), model)
            async with http.post(url, data=body, headers=headers) as resp:
                if resp.status != 201:
                    raise SystemExit(f"bench: batch create {resp.status} {await resp.text()}")
