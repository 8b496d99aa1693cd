"""Remote @context resolution is bounded: one deadline per request (nested and @import fetches
included), a connection pool per remote host (a host that never answers delays only itself),
and a cache bounded in bytes and entries with least-recently-used eviction, exported as metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from city_os.app import create_app
from city_os.core.contexts import ContextLoader
from city_os.errors import LdContextNotAvailable
from tests.conftest import test_settings as settings_for_tests
from tests.integration.robustness.support import API, check_problem, poll, snapshot

Client = TestClient  # type: ignore[type-arg]
WAITING: list[str] = []  # requests the never-answering handler holds


async def _site(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def slow_host() -> AsyncIterator[str]:
    """/chain/N answers after 0.7 s with a context importing /chain/N+1 (a 6-deep chain);
    /never/… never answers (until the test ends); /size/N/K is a K-term context."""
    app = web.Application()
    release = asyncio.Event()
    WAITING.clear()

    async def chain(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        await asyncio.sleep(0.7)  # a remote just under the per-fetch timeout
        inner: Any = {"t{n}": f"urn:t:{n}"} if n >= 6 else {"@import": f"/chain/{n + 1}"}
        return web.json_response({"@context": inner}, content_type="application/ld+json")

    async def never(request: web.Request) -> web.Response:
        WAITING.append(request.path)
        await release.wait()
        return web.json_response({"@context": {}})

    async def size(request: web.Request) -> web.Response:
        n, k = int(request.match_info["n"]), int(request.match_info["k"])
        body = {"@context": {f"c{n}t{i}": f"https://example.org/{n}/{i}" for i in range(k)}}
        return web.Response(body=orjson.dumps(body), content_type="application/ld+json")

    app.router.add_get("/chain/{n}", chain)
    app.router.add_get("/never/{n}", never)
    app.router.add_get("/size/{n}/{k}", size)
    async for base in _site(app):
        yield base
        release.set()


async def test_one_deadline_for_the_whole_resolution(slow_host: str, tenant: str) -> None:
    settings = settings_for_tests(context_fetch_timeout=1.0, context_resolve_timeout=2.0)
    async with TestClient(TestServer(create_app(settings))) as client:
        before = await snapshot(tenant)
        started = time.monotonic()
        resp = await client.post(
            f"{API}/entities",
            json={"id": "urn:ngsi-ld:T:1", "type": "T", "@context": f"{slow_host}/chain/1"},
            headers={"NGSILD-Tenant": tenant, "Content-Type": "application/ld+json"},
        )
        elapsed = time.monotonic() - started
        check_problem(resp.status, await resp.json(), 504, "LdContextNotAvailable")
        assert 1.9 < elapsed < 3.5, elapsed  # 6 fetches of 0.7 s would take 4.2 s
        assert await snapshot(tenant) == before


async def test_a_host_that_never_answers_delays_only_itself(slow_host: str) -> None:
    other = slow_host.replace("127.0.0.1", "localhost")  # another host: its own pool
    loader = ContextLoader(timeout=5.0, deadline=5.0, connections_per_host=4)
    try:
        stuck = [asyncio.create_task(loader.term_map(f"{slow_host}/never/{i}")) for i in range(120)]

        async def pool_full() -> bool:  # its 4 connections are taken, 116 fetches queue
            return len(WAITING) >= 4

        await poll(pool_full)
        started = time.monotonic()
        terms = await loader.term_map(f"{other}/size/1/3")
        assert terms.expand_attr("c1t0") == "https://example.org/1/0"
        assert time.monotonic() - started < 1.5
        assert len(WAITING) == 4  # never more than the per-host limit at that host
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
    finally:
        await loader.close()


async def test_cache_is_bounded_in_bytes_and_entries(slow_host: str) -> None:
    budget = 2_000_000  # term maps cost ~200 kB each here (80 kB + 8 B per document byte)
    loader = ContextLoader(max_cache_bytes=budget, max_documents=30, max_term_maps=30)
    try:
        for n in range(60):
            await loader.term_map(f"{slow_host}/size/{n}/300")  # ~15 kB of JSON each
            stats = loader.stats()
            assert stats.bytes <= budget and stats.documents <= 30 and stats.term_maps <= 30
        assert loader.stats().term_maps >= 2
        # The most recent ones stayed; the first ones were evicted.
        recent, first = f"{slow_host}/size/59/300", f"{slow_host}/size/0/300"
        assert recent in loader._cache and first not in loader._cache
    finally:
        await loader.close()


async def test_cache_size_is_a_metric(client: Client) -> None:
    text = await (await client.get("/metrics")).text()
    assert "cityos_context_cache_bytes " in text
    assert 'cityos_context_cache_entries{kind="document"}' in text


async def test_deadline_error_names_no_internal(slow_host: str) -> None:
    loader = ContextLoader(timeout=5.0, deadline=0.5)
    try:
        with pytest.raises(LdContextNotAvailable, match=r"within 0\.5 s"):
            await loader.term_map(f"{slow_host}/never/x")
    finally:
        await loader.close()


async def test_too_many_remote_documents_are_refused_before_fetching(
    client: Client, tenant: str
) -> None:
    urls = [f"http://127.0.0.1:9/ctx/{i}" for i in range(65)]  # port 9: nobody is asked
    before = await snapshot(tenant)
    started = time.monotonic()
    resp = await client.post(
        f"{API}/entities",
        json={"id": "urn:ngsi-ld:T:1", "type": "T", "@context": urls},
        headers={"NGSILD-Tenant": tenant, "Content-Type": "application/ld+json"},
    )
    problem = await resp.json()
    check_problem(resp.status, problem, 400, "BadRequestData")
    assert "more than 64" in problem["detail"] and time.monotonic() - started < 1
    assert await snapshot(tenant) == before
