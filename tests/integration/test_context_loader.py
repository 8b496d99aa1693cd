"""ContextLoader against a real HTTP server on 127.0.0.1: fetching, caching, caps and errors."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

from city_os.core.contexts import ContextLoader
from city_os.errors import BadRequestData, LdContextNotAvailable
from city_os.ngsild.jsonld import CORE_CONTEXT_URL, NGSI_LD

SCHEMA = "https://schema.org/"
MAX_BYTES = 4096
TIMEOUT = 0.5


@dataclass
class ContextServer:
    base: str
    hits: Counter[str] = field(default_factory=Counter)
    late_ready: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"


def _json(body: Any) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/ld+json")


@pytest.fixture
async def server() -> AsyncIterator[ContextServer]:
    app = web.Application()
    state = ContextServer(base="")

    async def handle(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        state.hits[name] += 1
        if name == "valid.jsonld":
            return _json({"@context": {"brand": SCHEMA + "brand", "Car": SCHEMA + "Car"}})
        if name == "nested.jsonld":
            # One relative and one absolute reference, resolved against this document's URL.
            return _json({"@context": ["inner.jsonld", state.url("valid.jsonld")]})
        if name == "inner.jsonld":
            return _json({"@context": {"speed": "http://example.org/speed"}})
        if name == "not-json.jsonld":
            return web.Response(text="<html>nope</html>", content_type="text/html")
        if name == "no-context.jsonld":
            return _json({"brand": SCHEMA + "brand"})
        if name == "number-context.jsonld":
            return _json({"@context": 5})
        if name == "invalid-iri.jsonld":
            return _json({"@context": {"x": "not an iri"}})
        if name in ("large.jsonld", "large-chunked.jsonld"):
            terms = {f"t{i}": f"http://example.org/{i}" for i in range(400)}
            body = orjson.dumps({"@context": terms})
            if name == "large.jsonld":
                return web.Response(body=body, content_type="application/ld+json")
            response = web.StreamResponse()
            response.content_type = "application/ld+json"
            await response.prepare(request)  # no Content-Length: the cap must hold while streaming
            for start in range(0, len(body), 1000):
                await response.write(body[start : start + 1000])
            await response.write_eof()
            return response
        if name == "slow.jsonld":
            await asyncio.wait_for(state.release.wait(), timeout=10)
            return _json({"@context": {}})
        if name == "counted.jsonld":
            await asyncio.sleep(0.1)  # keep the first fetch in flight while the others arrive
            return _json({"@context": {"counted": "http://example.org/counted"}})
        if name == "late.jsonld" and state.late_ready.is_set():
            return _json({"@context": {"late": "http://example.org/late"}})
        if name == "redirect.jsonld":
            raise web.HTTPFound(state.url("valid.jsonld"))
        if name == "accept.jsonld":
            return _json({"@context": {}, "accept": request.headers.get("Accept")})
        return web.Response(status=404)

    app.router.add_get("/ctx/{name}", handle)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.base = f"http://127.0.0.1:{port}/ctx"
    yield state
    state.release.set()
    await runner.cleanup()


@pytest.fixture
async def loader() -> AsyncIterator[ContextLoader]:
    loader = ContextLoader(timeout=TIMEOUT, max_bytes=MAX_BYTES, ttl=60, failure_ttl=0.3)
    yield loader
    await loader.close()


async def _until(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_core_only_never_fetches(loader: ContextLoader) -> None:
    tm = await loader.term_map(None)
    assert tm.context_value == CORE_CONTEXT_URL
    assert tm.expand_attr("location") == NGSI_LD + "location"
    versioned = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.3.jsonld"
    assert await loader.term_map(versioned) is tm
    assert (await loader.document(versioned))["@context"]["@vocab"] == NGSI_LD + "default-context/"


async def test_valid_context_is_fetched_once(server: ContextServer, loader: ContextLoader) -> None:
    url = server.url("valid.jsonld")
    tm = await loader.term_map(url)
    assert tm.expand_attr("brand") == SCHEMA + "brand"
    assert tm.compact_type(SCHEMA + "Car") == "Car"
    assert tm.context_value == [url, CORE_CONTEXT_URL]
    assert await loader.term_map([url]) is tm
    assert (await loader.document(url))["@context"]["brand"] == SCHEMA + "brand"
    assert server.hits["valid.jsonld"] == 1


async def test_request_headers_and_redirects(server: ContextServer, loader: ContextLoader) -> None:
    document = await loader.document(server.url("accept.jsonld"))
    assert document["accept"] == "application/ld+json, application/json;q=0.9"
    tm = await loader.term_map(server.url("redirect.jsonld"))
    assert tm.expand_attr("brand") == SCHEMA + "brand"


async def test_nested_contexts_are_resolved(server: ContextServer, loader: ContextLoader) -> None:
    tm = await loader.term_map([server.url("nested.jsonld")])
    assert tm.expand_attr("speed") == "http://example.org/speed"
    assert tm.expand_attr("brand") == SCHEMA + "brand"
    assert server.hits["inner.jsonld"] == 1


async def test_inline_context_with_nested_url(server: ContextServer, loader: ContextLoader) -> None:
    tm = await loader.term_map({"@import": server.url("valid.jsonld"), "x": "http://x.org/x"})
    assert tm.expand_attr("brand") == SCHEMA + "brand"
    assert tm.expand_attr("x") == "http://x.org/x"


@pytest.mark.parametrize(
    "name",
    ["not-json.jsonld", "no-context.jsonld", "number-context.jsonld", "invalid-iri.jsonld"],
)
async def test_invalid_contexts_are_bad_request_data(
    server: ContextServer, loader: ContextLoader, name: str
) -> None:
    url = server.url(name)
    with pytest.raises(BadRequestData) as caught:
        await loader.term_map([{"ex": "http://example.org/"}, url])
    assert url in caught.value.detail


@pytest.mark.parametrize("name", ["large.jsonld", "large-chunked.jsonld"])
async def test_too_large_is_bad_request_data(
    server: ContextServer, loader: ContextLoader, name: str
) -> None:
    url = server.url(name)
    with pytest.raises(BadRequestData) as caught:
        await loader.term_map(url)
    assert url in caught.value.detail
    assert str(MAX_BYTES) in caught.value.detail


async def test_slow_context_times_out(server: ContextServer, loader: ContextLoader) -> None:
    url = server.url("slow.jsonld")
    with pytest.raises(LdContextNotAvailable) as caught:
        await loader.term_map(url)
    assert url in caught.value.detail
    assert caught.value.status == 504


async def test_not_found_is_not_available(server: ContextServer, loader: ContextLoader) -> None:
    url = server.url("missing.jsonld")
    with pytest.raises(LdContextNotAvailable) as caught:
        await loader.term_map(url)
    assert url in caught.value.detail
    assert "404" in caught.value.detail


async def test_connection_refused_fails_fast() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ctx.jsonld"
    loader = ContextLoader(timeout=10)
    started = time.monotonic()
    try:
        with pytest.raises(LdContextNotAvailable) as caught:
            await loader.term_map(url)
    finally:
        await loader.close()
    assert time.monotonic() - started < 2
    assert url in caught.value.detail


@pytest.mark.parametrize(
    ("context", "error"),
    [
        ("not a uri", BadRequestData),
        (5, BadRequestData),
        ("ftp://example.org/ctx.jsonld", LdContextNotAvailable),
    ],
)
async def test_unusable_references(
    loader: ContextLoader, context: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        await loader.term_map(context)


async def test_concurrent_first_calls_fetch_once(
    server: ContextServer, loader: ContextLoader
) -> None:
    url = server.url("counted.jsonld")
    maps = await asyncio.gather(*(loader.term_map(url) for _ in range(10)))
    assert all(tm is maps[0] for tm in maps)
    assert maps[0].expand_attr("counted") == "http://example.org/counted"
    assert server.hits["counted.jsonld"] == 1


async def test_failures_are_remembered_only_briefly(
    server: ContextServer, loader: ContextLoader
) -> None:
    url = server.url("late.jsonld")
    with pytest.raises(LdContextNotAvailable):
        await loader.term_map(url)
    server.late_ready.set()

    async def available() -> bool:
        try:
            tm = await loader.term_map(url)
        except LdContextNotAvailable:
            return False
        return tm.expand_attr("late") == "http://example.org/late"

    await _until(available, within=2)


class MemoryStore:
    def __init__(self, hosted: dict[str, dict[str, Any]]) -> None:
        self.hosted = hosted
        self.cached: dict[str, dict[str, Any]] = {}

    async def get(self, url: str) -> dict[str, Any] | None:
        return self.hosted.get(url)

    async def put_cached(self, url: str, body: dict[str, Any]) -> None:
        self.cached[url] = body


async def test_store_serves_hosted_and_records_fetched(server: ContextServer) -> None:
    hosted_url = "http://broker.invalid/ngsi-ld/v1/jsonldContexts/abc"
    store = MemoryStore({hosted_url: {"@context": {"hosted": "http://example.org/hosted"}}})
    loader = ContextLoader(timeout=TIMEOUT, max_bytes=MAX_BYTES, store=store)
    try:
        tm = await loader.term_map([hosted_url, server.url("valid.jsonld")])
    finally:
        await loader.close()
    assert tm.expand_attr("hosted") == "http://example.org/hosted"
    assert tm.expand_attr("brand") == SCHEMA + "brand"
    assert list(store.cached) == [server.url("valid.jsonld")]
