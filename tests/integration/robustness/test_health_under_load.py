"""``/health`` answers within 50 ms while the most expensive request each endpoint accepts runs.

The worst accepted requests are built from the limits (2 MB bodies, 1,000 attribute instances,
1,000-entity batches, 120,000 JSON containers, a 490 kB remote @context, a schema that refuses
every attribute); each runs alone against a real ``city-os serve`` while a separate process
(``health_poller.py``) polls ``/health`` every ~2 ms and must get 200 every time.

Asserted: every poll overlapping the request answers within 50 ms of the broker's own time,
that is the round trip less the time the poller's and the broker's event-loop threads waited
for a CPU (their run-queue waits, from the kernel's schedstat): on this machine eight test
suites share two cores, and what the machine's load adds to a client's clock is no process's
to promise. Waits for the GIL held by the broker's worker threads and blocking calls on its
loop do count. Printed beside it, for comparison: the raw round trips, the load average, and
the broker's own event-loop stall probe (``cityos_event_loop_stall_seconds``, the worst
bucket reached).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from city_os.config import Settings
from tests.integration.robustness.support import API, Broker, serve

BOUND = 0.050
POLLER = Path(__file__).parents[3] / "bench" / "health_poller.py"  # shared with make bench
TYPE = "https://example.org/Bulk"


def _headers(tenant: str, media: str = "application/json") -> dict[str, str]:
    return {"NGSILD-Tenant": tenant, "Content-Type": media}


def big_entity(entity_id: str, text: int = 3000) -> dict[str, Any]:
    """1,000 attribute instances (500 attributes with a sub-attribute each), ~1.6 MB."""
    body: dict[str, Any] = {"id": entity_id, "type": TYPE}
    for i in range(500):
        body[f"attr{i}"] = {
            "type": "Property",
            "value": "x" * text,
            "observedAt": "2026-01-01T00:00:00Z",
            "note": {"type": "Property", "value": i},
        }
    return body


def polygon_entity(entity_id: str) -> dict[str, Any]:
    """A GeoProperty of 119,990 positions: ~1 MB, just under the 120,000 JSON containers
    allowed (its validity as a shape is not checked: PostGIS stores invalid polygons too)."""
    ring = [[i % 180, (i // 180) % 90] for i in range(119_989)]
    ring.append(ring[0])
    return {
        "id": entity_id,
        "type": TYPE,
        "location": {"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": [ring]}},
    }


def small(n: int, prefix: str = "b", value: Any = 1) -> dict[str, Any]:
    """A ~1.8 kB entity of 12 attributes: 1,000 of them make a 1.8 MB batch."""
    body: dict[str, Any] = {"id": f"urn:ngsi-ld:Bulk:{prefix}{n}", "type": TYPE}
    for i in range(12):
        body[f"a{i}"] = {"type": "Property", "value": value, "unitCode": "CEL",
                         "observedAt": "2026-01-01T00:00:00Z", "t": "y" * 40}  # fmt: skip
    return body


async def _send(
    http: aiohttp.ClientSession, method: str, url: str, tenant: str, body: Any = None, **kw: Any
) -> int:
    data = None if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
    headers = kw.pop("headers", None) or _headers(tenant)
    async with http.request(method, url, data=data, headers=headers, **kw) as resp:
        await resp.read()  # raw bytes: the test process decodes nothing large
        return resp.status


@pytest.fixture(scope="module")
async def broker() -> AsyncIterator[Broker]:
    async with serve(db_pool_max="8") as b:
        yield b


@pytest.fixture(scope="module")
async def context_host() -> AsyncIterator[str]:
    """A remote @context of 10,000 terms (~490 kB, just under CITYOS_CONTEXT_MAX_BYTES):
    pyld takes ~0.6 s of CPU to process it."""
    doc = orjson.dumps(
        {"@context": {f"term{i}": f"https://example.org/v#t{i}" for i in range(10_000)}}
    )
    assert len(doc) <= Settings().context_max_bytes

    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=doc, content_type="application/ld+json")

    app = web.Application()
    app.router.add_get("/{name}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


_BUCKET = re.compile(r'^cityos_event_loop_stall_seconds_bucket\{le="([^"]+)"\} (\S+)$', re.M)


async def stall_buckets(http: aiohttp.ClientSession, broker: Broker) -> dict[float, float]:
    """The broker's stall histogram: cumulative count per upper bound (``inf`` included)."""
    async with http.get(broker.url + "/metrics") as resp:
        text = await resp.text()
    buckets = {float(le): float(n) for le, n in _BUCKET.findall(text)}
    assert buckets, "the broker exposes no cityos_event_loop_stall_seconds"
    return buckets


def worst_stall(before: dict[float, float], after: dict[float, float]) -> float:
    """The upper bound of the highest bucket that gained a stall in between (0 if none)."""
    gained = {b: after[b] - before.get(b, 0.0) for b in after}  # cumulative counts
    bounds = sorted(gained)
    below = [0.0, *(gained[b] for b in bounds[:-1])]
    return max((b for b, low in zip(bounds, below, strict=True) if gained[b] > low), default=0.0)


async def _measured(
    broker: Broker, http: aiohttp.ClientSession, request: Callable[[], Awaitable[int]]
) -> tuple[float, float, float, int, int]:
    """Run ``request`` while the poller polls: the broker's worst stall (bucket bound), the
    slowest poll overlapping it (its own time, and the client's clock), the request's status,
    the polls."""
    poller = await asyncio.create_subprocess_exec(
        sys.executable, str(POLLER), str(broker.port), str(broker.process.pid),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert poller.stdin is not None and poller.stdout is not None
    assert (await poller.stdout.readline()).strip() == b"ready"
    before = await stall_buckets(http, broker)
    started = time.monotonic()
    status = await request()
    ended = time.monotonic()
    after = await stall_buckets(http, broker)
    poller.stdin.close()
    samples = json.loads(await poller.stdout.read())  # to EOF (no line limit); all polls got 200
    assert await poller.wait() == 0
    during = [(s, own) for t, s, own in samples if t < ended and t + s > started]
    own = max((o for _, o in during), default=0.0)
    wall = max((s for s, _ in during), default=0.0)
    return worst_stall(before, after), own, wall, status, len(during)


@pytest.fixture(scope="module")
def tenant_module() -> str:
    return f"test-health-{random.randrange(10**9)}"


async def test_health_stays_fast_under_the_worst_accepted_requests(
    broker: Broker, context_host: str, tenant_module: str
) -> None:
    tenant = tenant_module
    base = broker.url + API
    big_id, poly_id = "urn:ngsi-ld:Bulk:big", "urn:ngsi-ld:Bulk:poly"
    batch = [small(n) for n in range(1000)]
    fragments = [{"id": e["id"], "a0": {"type": "Property", "value": 2}} for e in batch]
    schema = {
        "type": "object",
        "additionalProperties": {"type": "integer"},
        "properties": {"id": {"type": "string"}, "type": {"type": "string"}},
    }
    link = f'<{context_host}/big.jsonld>; rel="http://www.w3.org/ns/json-ld#context"'
    kv = f"/entities?type={TYPE}&limit=1000&options=keyValues&count=true"
    geojson = {"headers": {"NGSILD-Tenant": tenant, "Accept": "application/geo+json"}}
    linked = {"headers": {"NGSILD-Tenant": tenant, "Link": link}}
    query = {"type": "Query", "entities": [{"type": TYPE}] * 100}
    invalid = [small(n, value="text") for n in range(1000)]
    ops = "/entityOperations"
    steps: list[tuple[str, str, str, Any, dict[str, Any], int]] = [
        ("create 1,000 attribute instances", "POST", "/entities", big_entity(big_id), {}, 201),
        ("create a 120,000-position polygon", "POST", "/entities", polygon_entity(poly_id), {},
         201),
        ("batch create 1,000", "POST", f"{ops}/create", batch, {}, 201),
        ("batch upsert 1,000 (replace)", "POST", f"{ops}/upsert", batch, {}, 204),
        ("batch update 1,000", "POST", f"{ops}/update", fragments, {}, 204),
        ("batch merge 1,000", "POST", f"{ops}/merge", fragments, {}, 204),
        ("query a page of 1,000", "GET", f"/entities?type={TYPE}&limit=1000", None, {}, 200),
        ("query 1,000 keyValues + count", "GET", kv, None, {}, 200),
        ("POST Query of 100 selectors", "POST", f"{ops}/query?limit=1000", query, {}, 200),
        ("retrieve the 1.6 MB entity", "GET", f"/entities/{big_id}", None, {}, 200),
        ("retrieve the polygon as GeoJSON", "GET", f"/entities/{poly_id}", None, geojson, 200),
        ("append 1,000 instances", "POST", f"/entities/{big_id}/attrs", big_entity(big_id, 2000),
         {}, 204),
        ("replace the big entity", "PUT", f"/entities/{big_id}", big_entity(big_id), {}, 204),
        ("first use of a 490 kB remote @context", "GET", f"/entities?type={TYPE}&limit=1", None,
         linked, 200),
        ("register a schema refusing every attribute", "POST", "/cityos/v1/schemas",
         {"type": TYPE, "schema": schema, "activate": True}, {}, 201),
        ("1,000 invalid entities: violations listed", "POST", f"{ops}/upsert", invalid, {}, 207),
        ("invalid 1,000-instance entity", "PUT", f"/entities/{big_id}", big_entity(big_id), {},
         400),
        ("batch delete 1,000", "POST", f"{ops}/delete", [e["id"] for e in batch], {}, 204),
        ("purge by type", "DELETE", f"/entities?type={TYPE}", None, {}, 204),
    ]  # fmt: skip
    results = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        for label, method, path, body, kw, expected in steps:
            url = (broker.url if path.startswith("/cityos") else base) + path

            async def request(method: str = method, url: str = url, body: Any = body,
                              kw: dict[str, Any] = kw) -> int:  # fmt: skip
                return await _send(http, method, url, tenant, body, **dict(kw))

            stall, own, wall, status, polls = await _measured(broker, http, request)
            results.append((label, status, own, wall, stall, polls))
            assert status == expected, (label, status, broker.log())
    report = f"load average {os.getloadavg()[0]:.1f}. Slowest /health: own time | round trip"
    report += " | loop stall probe (bucket)\n" + "\n".join(
        f"  {o * 1000:5.1f} ms | {w * 1000:6.1f} ms | <= {st * 1000:3.0f} ms  over {n:4d} polls  "
        f"{lbl} ({s})"
        for lbl, s, o, w, st, n in results
    )
    print(report)
    slow = [r for r in results if r[2] >= BOUND]
    assert not slow, report + "\n" + broker.log()
