"""Distributed query overhead (issue #15): a query fanned out to 3 sources of 10,000 entities each,
next to the same query on one broker holding all 30,000 (the ceiling measured in the same run).

Layer: bench/. Four ``city-os serve`` processes on the bench database: three context sources
(each its own tenant with 10,000 entities) and the federating broker, whose tenant registers
the three (inclusive) and holds nothing itself; the broker's process also holds all 30,000 in a
tenant of their own for the single-broker query. The query selects by type and ``q`` and
returns a full page (100 of 102 matches, 34 per source); each run is ``REQUESTS`` requests at
``CONCURRENCY`` in flight, in ``ROUNDS`` rounds alternating the two (a load that changes
mid-run weighs on both). Reported: p50/p95 of both, and the p95 ratio (target ≤ 2×); beside
them the CPU per query of the four servers and of the bench database's PostgreSQL backends,
which judges a change on a loaded machine better than latency.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench import guard, stack

PER_SOURCE = 10_000
SOURCES = 3
BATCH = 1000
REQUESTS = 200
ROUNDS = 4  # the distributed and the one-broker queries alternate, REQUESTS // ROUNDS a round
CONCURRENCY = 4
TARGET = 2.0
TYPE = "BenchSite"
QUERY = {"type": TYPE, "q": "rank<34", "limit": "100"}  # 34 per source: 102 matches


@dataclass
class Result:
    federated: tuple[float, float]  # p50, p95 in ms
    single: tuple[float, float]
    answered: tuple[int, int]  # entities per page, federated and single
    load: float
    # CPU ms per query (all four servers, the bench database's PostgreSQL backends), each run
    cpu: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 0.0), (0.0, 0.0))

    @property
    def ratio(self) -> float:
        return self.federated[1] / self.single[1] if self.single[1] else float("inf")


def _entity(source: int, n: int) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:{TYPE}:s{source}-{n}",
        "type": TYPE,
        "rank": {"type": "Property", "value": n},
        "name": {"type": "Property", "value": f"site {n} of source {source}"},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [130.0 + n / 1e5, 33.0 + source / 10]},
        },
    }


async def _load(http: aiohttp.ClientSession, port: int, tenant: str, source: int) -> None:
    for start in range(0, PER_SOURCE, BATCH):
        body = [_entity(source, n) for n in range(start, start + BATCH)]
        async with http.post(
            f"http://127.0.0.1:{port}/ngsi-ld/v1/entityOperations/upsert",
            json=body,
            headers={"NGSILD-Tenant": tenant},
        ) as resp:
            if resp.status not in (201, 204):
                raise SystemExit(f"bench federation: load failed {resp.status} {await resp.text()}")


async def _register(http: aiohttp.ClientSession, port: int, source_port: int, i: int) -> None:
    body = {
        "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": TYPE}]}],
        "endpoint": f"http://127.0.0.1:{source_port}",
        "tenant": f"fed-s{i}",
        "mode": "inclusive",
    }
    async with http.post(
        f"http://127.0.0.1:{port}/ngsi-ld/v1/csourceRegistrations",
        json=body,
        headers={"NGSILD-Tenant": "fed-b"},
    ) as resp:
        if resp.status != 201:
            raise SystemExit(f"bench federation: registration {resp.status} {await resp.text()}")


async def _measure(port: int, tenant: str, requests: int) -> tuple[list[float], int]:
    url = f"http://127.0.0.1:{port}/ngsi-ld/v1/entities"
    times: list[float] = []
    sizes: list[int] = []
    queue = list(range(requests))
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            while queue:
                queue.pop()
                started = time.perf_counter()
                async with http.get(url, params=QUERY, headers={"NGSILD-Tenant": tenant}) as r:
                    body = await r.json(content_type=None)
                    if r.status != 200 or "NGSILD-Warning" in r.headers:
                        raise SystemExit(f"bench federation: query answered {r.status} {body}")
                times.append((time.perf_counter() - started) * 1000)
                sizes.append(len(body))

        for _ in range(10):  # warm-up: connections, @context, plans
            async with http.get(url, params=QUERY, headers={"NGSILD-Tenant": tenant}) as r:
                await r.read()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return times, max(sizes)


def _percentiles(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    return times[len(times) // 2], times[int(len(times) * 0.95) - 1]


def run(dsn: str, pool: int = 8) -> Result:
    ports = [stack.free_port() for _ in range(SOURCES + 1)]
    envs = []
    for port in ports:
        env = stack.server_env(dsn, port, pool)
        env.update(CITYOS_PUBLIC_URL=f"http://127.0.0.1:{port}", CITYOS_OUTBOUND_ALLOW="loopback")
        envs.append(env)
    procs = [stack.start(stack.api_commands(1), env) for env in envs]
    try:
        for port, started in zip(ports, procs, strict=True):
            stack.wait_http(port, "/ngsi-ld/v1/entities/urn:x:ready", started, timeout=300)
        broker, sources = ports[0], ports[1:]
        total = SOURCES * PER_SOURCE
        print(f"  federation: loading {SOURCES} x {PER_SOURCE:,} and {total:,} on one broker...")
        pids = [p.pid for started in procs for p in started]
        return asyncio.run(_run(broker, sources, pids))
    finally:
        for started in procs:
            stack.stop(started)


@dataclass
class _Run:
    times: list[float]
    size: int = 0
    server: float = 0.0  # CPU seconds of the four servers
    postgres: float = 0.0  # and of the bench database's backends
    queries: int = 0


async def _cpu_measure(port: int, tenant: str, pids: list[int], run: _Run, requests: int) -> None:
    """``_measure`` into ``run``, with the CPU it cost: server processes, PostgreSQL backends."""
    before = stack.cpu_snapshot()
    times, size = await _measure(port, tenant, requests)
    after = stack.cpu_snapshot()
    for pid, (comm, seconds) in after.items():
        delta = seconds - before.get(pid, (comm, 0.0))[1]
        if pid in pids:
            run.server += delta
        elif comm.startswith("postgres"):
            run.postgres += delta
    run.times += times
    run.size = max(run.size, size)
    run.queries += requests + 10  # with the warm-up


async def _run(broker: int, sources: list[int], pids: list[int]) -> Result:
    async with aiohttp.ClientSession() as http:
        for i, port in enumerate(sources, start=1):
            await _load(http, port, f"fed-s{i}", i)
            await _load(http, broker, "fed-all", i)
            await _register(http, broker, port, i)
    load = guard.wait_quiet("federation")
    fed, one = _Run([]), _Run([])
    # Rounds alternate the two (ABBA): a change of the machine's load mid-run weighs on both.
    for n in range(ROUNDS):
        order = ((fed, "fed-b"), (one, "fed-all"))
        for run, tenant in order if n % 2 == 0 else order[::-1]:
            await _cpu_measure(broker, tenant, pids, run, REQUESTS // ROUNDS)

    def cpu(run: _Run) -> tuple[float, float]:
        return run.server * 1000 / run.queries, run.postgres * 1000 / run.queries

    return Result(
        _percentiles(fed.times),
        _percentiles(one.times),
        (fed.size, one.size),
        load,
        (cpu(fed), cpu(one)),
    )


def print_results(result: Result) -> None:
    verdict = "ok" if result.ratio <= TARGET else "MISS"
    print(
        f"\nfederation (3 sources x {PER_SOURCE:,} vs one broker with {SOURCES * PER_SOURCE:,}; "
        f"{REQUESTS} queries at {CONCURRENCY} in flight; load average {result.load:.2f}, "
        f"{os.cpu_count()} cores)"
    )
    print(f"  query {QUERY}")
    print(
        f"  distributed  p50 {result.federated[0]:7.1f} ms  p95 {result.federated[1]:7.1f} ms"
        f"  ({result.answered[0]} entities per page)"
    )
    print(
        f"  one broker   p50 {result.single[0]:7.1f} ms  p95 {result.single[1]:7.1f} ms"
        f"  ({result.answered[1]} entities per page; the ceiling)"
    )
    (fed_srv, fed_pg), (one_srv, one_pg) = result.cpu
    print(
        f"  CPU per query: distributed servers {fed_srv:.1f} ms + PostgreSQL {fed_pg:.1f} ms, "
        f"one broker {one_srv:.1f} + {one_pg:.1f} ms (idle servers' background included)"
    )
    print(f"  overhead p95 {result.ratio:.2f}x (target <= {TARGET:g}x) {verdict}")
