"""The outbound client of distributed operations against real HTTP sources (federation/client.py).

The sources here are small aiohttp servers standing for other brokers: one that answers, one
that never answers (its timeout), one that answers 500; the network policy is the real one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from city_os.auth.network import OutboundPolicy
from city_os.federation.client import SourceClient, Target
from city_os.observability.metrics import Metrics

CONTEXT = "http://127.0.0.1:8098/ngsi-ld-test-suite-compound.jsonld"


@pytest.fixture
async def source() -> AsyncIterator[tuple[TestServer, list[web.Request], asyncio.Event]]:
    seen: list[web.Request] = []
    release = asyncio.Event()

    async def entities(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response([{"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle"}])

    async def hang(request: web.Request) -> web.Response:
        await release.wait()  # answers only when the test ends
        return web.json_response([])

    async def broken(request: web.Request) -> web.Response:
        return web.json_response(
            {"type": "https://uri.etsi.org/ngsi-ld/errors/InternalError", "detail": "disk full"},
            status=500,
        )

    app = web.Application()
    app.router.add_get("/ok/ngsi-ld/v1/entities", entities)
    app.router.add_get("/hang/ngsi-ld/v1/entities", hang)
    app.router.add_get("/broken/ngsi-ld/v1/entities", broken)
    server = TestServer(app)
    await server.start_server()
    try:
        yield server, seen, release
    finally:
        release.set()
        await server.close()


def _base(server: TestServer) -> str:
    return f"http://127.0.0.1:{server.port}"


async def test_headers_and_answer(
    source: tuple[TestServer, list[web.Request], asyncio.Event],
) -> None:
    server, seen, _ = source
    metrics = Metrics()
    client = SourceClient(OutboundPolicy.from_setting("loopback"), metrics)
    target = Target(
        _base(server) + "/ok",
        registration="urn:ngsi-ld:ContextSourceRegistration:ogi",
        tenant="ogi",
        info=(("X-Auth-Token", "secret"), ("Host", "spoofed.example")),
    )
    try:
        answer = await client.call(
            target,
            "GET",
            "/entities",
            operation="queryEntity",
            params=[("type", "Vehicle"), ("id", "urn:ngsi-ld:Vehicle:1")],
            context=CONTEXT,
            via="1.1 127.0.0.1:1041",
        )
    finally:
        await client.close()
    assert answer.ok and answer.status == 200
    assert answer.body == [{"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle"}]
    request = seen[0]
    assert request.query["id"] == "urn:ngsi-ld:Vehicle:1"
    assert request.headers["NGSILD-Tenant"] == "ogi"
    assert request.headers["Via"] == "1.1 127.0.0.1:1041"
    assert request.headers["Link"].startswith(f"<{CONTEXT}>")
    assert request.headers["X-Auth-Token"] == "secret"
    assert request.headers["Host"] != "spoofed.example"  # reserved headers are not taken
    rendered = (await metrics.render()).decode()
    labels = f'operation="queryEntity",source="127.0.0.1:{server.port}"'
    assert f"cityos_source_request_duration_seconds_count{{{labels}}} 1.0" in rendered


async def test_timeout_and_error_status_are_answers_not_exceptions(
    source: tuple[TestServer, list[web.Request], asyncio.Event],
) -> None:
    server, _, _ = source
    metrics = Metrics()
    client = SourceClient(OutboundPolicy.from_setting("loopback"), metrics)
    try:
        hung, broken = await asyncio.gather(
            client.call(
                Target(_base(server) + "/hang", "urn:reg:hang", timeout=0.3),
                "GET",
                "/entities",
                operation="queryEntity",
            ),
            client.call(
                Target(_base(server) + "/broken", "urn:reg:broken"),
                "GET",
                "/entities",
                operation="queryEntity",
            ),
        )
    finally:
        await client.close()
    assert hung.timed_out and hung.status is None and hung.error == "no answer within 0.3 s"
    assert broken.status == 500 and broken.error == "HTTP 500: disk full"
    assert broken.warning() == f'299 127.0.0.1:{server.port} "urn:reg:broken: HTTP 500: disk full"'
    rendered = (await metrics.render()).decode()
    assert 'kind="timeout"' in rendered and 'kind="status"' in rendered


async def test_network_policy_refuses_before_connecting(
    source: tuple[TestServer, list[web.Request], asyncio.Event],
) -> None:
    server, seen, _ = source
    client = SourceClient(OutboundPolicy.from_setting(""))  # public addresses only
    try:
        answer = await client.call(
            Target(_base(server) + "/ok", "urn:reg:ok"), "GET", "/entities", operation="queryEntity"
        )
    finally:
        await client.close()
    assert answer.status is None
    assert answer.error is not None and "refused by the outbound network policy" in answer.error
    assert seen == []
