"""Memory of the remote @context cache (issue "Robustness"): RSS after 1,000 distinct contexts.

Layer: bench/. A local context server (in this process) serves ``COUNT`` distinct contexts of
``TERMS`` terms (~13 kB of JSON each); ``city-os serve`` with ``CITYOS_CONTEXT_CACHE_BYTES`` =
``BOUND`` resolves each once (a query whose Link header names it: fetch, pyld processing in the
worker thread, caching). The server's RSS (``/proc/<pid>/status``) is read after a warm-up
(``WARMUP`` queries with one context) and after the last distinct one; its growth is printed
next to the configured bound, together with what the cache reports holding
(``cityos_context_cache_bytes``) and what it would hold unbounded (the same estimate, every
context kept). Before the bound (issue 16) every context stayed: 150 contexts of 0.8 MB took a
broker from 212 MB to 966 MB.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

from bench import stack
from city_os.core.context_cache import TERM_MAP_BASE, TERM_MAP_COST

COUNT = 1000
TERMS = 250
BOUND = 16 * 1024 * 1024
CONCURRENCY = 4
WARMUP = 300


@dataclass
class ContextMemory:
    rss_before: int
    rss_after: int
    cache_bytes: int
    unbounded: int
    seconds: float
    failures: int


def _rss(pid: int) -> int:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) * 1024 if match else 0


def _document(n: int) -> bytes:
    terms = {f"n{n}term{i}": f"https://example.org/bench/{n}/vocab#term{i}" for i in range(TERMS)}
    return orjson.dumps({"@context": terms})


async def _context_server() -> tuple[web.AppRunner, int]:
    async def serve(request: web.Request) -> web.Response:
        body = _document(int(request.match_info["n"]))
        return web.Response(body=body, content_type="application/ld+json")

    app = web.Application()
    app.router.add_get("/ctx/{n}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = stack.free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


async def _resolve(http: aiohttp.ClientSession, api: int, ctx_port: int, n: int) -> bool:
    link = f'<http://127.0.0.1:{ctx_port}/ctx/{n}>; rel="http://www.w3.org/ns/json-ld#context"'
    url = f"http://127.0.0.1:{api}/ngsi-ld/v1/entities?type=n{n}term0"
    async with http.get(url, headers={"Link": link, "NGSILD-Tenant": "bench-ctx"}) as resp:
        await resp.read()
        return resp.status == 200  # the context fetched, processed and used by the query


async def _cache_bytes(http: aiohttp.ClientSession, api: int) -> int:
    async with http.get(f"http://127.0.0.1:{api}/metrics") as resp:
        text = await resp.text()
    match = re.search(r"^cityos_context_cache_bytes (\S+)$", text, re.MULTILINE)
    return int(float(match.group(1))) if match else -1


async def _measure(api: int, pid: int) -> ContextMemory:
    runner, ctx_port = await _context_server()
    try:
        async with aiohttp.ClientSession() as http:
            # The tenant must exist: a query of a tenant without entities is a 404 before any
            # @context is resolved (the bench then measured nothing).
            seed = {"id": "urn:ngsi-ld:Seed:1", "type": "Seed"}
            headers = {"NGSILD-Tenant": "bench-ctx", "Content-Type": "application/json"}
            url = f"http://127.0.0.1:{api}/ngsi-ld/v1/entities"
            async with http.post(url, data=orjson.dumps(seed), headers=headers) as resp:
                assert resp.status in (201, 409), await resp.text()
            for _ in range(WARMUP):  # one context, cached: pyld, the thread, pools, allocator
                await _resolve(http, api, ctx_port, -1)
            before = _rss(pid)
            started = time.monotonic()
            failures = 0
            queue = iter(range(COUNT))

            async def worker() -> None:
                nonlocal failures
                for n in queue:
                    failures += not await _resolve(http, api, ctx_port, n)

            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
            seconds = time.monotonic() - started
            after = _rss(pid)
            cached = await _cache_bytes(http, api)
    finally:
        await runner.cleanup()
    per_context = (len(_document(0)) + 200) * (1 + TERM_MAP_COST) + TERM_MAP_BASE
    return ContextMemory(before, after, cached, COUNT * per_context, seconds, failures)


def run(dsn: str) -> ContextMemory:
    port = stack.free_port()
    env = stack.server_env(dsn, port, 4)
    env["CITYOS_CONTEXT_CACHE_BYTES"] = str(BOUND)
    env["CITYOS_CONTEXT_CACHE_ENTRIES"] = str(COUNT * 2)  # the byte bound decides here
    env["CITYOS_OUTBOUND_ALLOW"] = "loopback"  # the context server is local
    with stack.running("contexts", stack.api_commands(1), env, port) as srv:
        return asyncio.run(_measure(port, srv.pids[0]))


def print_results(res: ContextMemory) -> None:
    mb = 1024 * 1024
    growth = res.rss_after - res.rss_before
    # The cache counts what it holds; the process's other growth (allocator arenas, small LRU
    # caches of names) comes on top: 10 % of the bound is allowed for it.
    verdict = "OK" if growth <= BOUND * 1.1 else "MISS"
    print(f"\n@context cache memory ({COUNT} distinct remote contexts of {TERMS} terms)")
    print(
        f"  RSS {res.rss_before / mb:.0f} MB -> {res.rss_after / mb:.0f} MB: "
        f"+{growth / mb:.1f} MB, configured bound {BOUND / mb:.0f} MB "
        f"(CITYOS_CONTEXT_CACHE_BYTES) + 10 %: {verdict}"
    )
    print(
        f"  cache holds {res.cache_bytes / mb:.1f} MB by its own count; unbounded it would hold "
        f"~{res.unbounded / mb:.0f} MB; {COUNT / res.seconds:.0f} contexts/s, "
        f"{res.failures} failed requests"
    )
