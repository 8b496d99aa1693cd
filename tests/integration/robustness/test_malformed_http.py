"""Malformed HTTP is answered with ProblemDetails (aiohttp's parser errors rendered by
city_os.api.server), a body slower than the read timeout with 408, chunked bodies with the bare
411 that GS CIM 009 §6.3.4 mandates ("just a 411 HTTP status code, without any payload body";
ETSI 046_01 checks it). Raw sockets against a real ``city-os serve``; nothing is stored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import orjson
import pytest

from tests.integration.robustness.support import API, Broker, check_problem, serve, snapshot

BODY = b'{"id": "urn:ngsi-ld:T:1", "type": "T"}'


@pytest.fixture(scope="module")
async def broker() -> AsyncIterator[Broker]:
    async with serve(body_read_timeout="1.0") as b:
        yield b


async def _exchange(port: int, raw: bytes) -> tuple[int, bytes, bytes]:
    """Send ``raw``; the status, headers and body of the answer (read until close or length)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        async with asyncio.timeout(10.0):
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
        return int(head.split(b" ", 2)[1]), head, body
    finally:
        writer.close()


def _request(tenant: str, *headers: bytes, body: bytes = BODY, target: bytes = b"") -> bytes:
    target = target or f"{API}/entities".encode()
    lines = [
        b"POST " + target + b" HTTP/1.1",
        b"Host: 127.0.0.1",
        b"Content-Type: application/json",
        b"NGSILD-Tenant: " + tenant.encode(),
        *headers,
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


MALFORMED = {
    "NUL in a header": (b"X-Note: a\x00b", b"Content-Length: %d" % len(BODY)),
    "CR in a header": (b"X-Note: a\rb", b"Content-Length: %d" % len(BODY)),
    "header over 8 KB": (b"X-Note: " + b"a" * 9000, b"Content-Length: %d" % len(BODY)),
    "two Content-Lengths": (b"Content-Length: %d" % len(BODY), b"Content-Length: 3"),
    "Content-Length and chunked": (
        b"Content-Length: %d" % len(BODY),
        b"Transfer-Encoding: chunked",
    ),
    "bad Content-Length": (b"Content-Length: 1x",),
    "bad Transfer-Encoding": (b"Transfer-Encoding: gzip, chunked, identity",),
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_requests_get_problem_details(
    broker: Broker, tenant: str, case: str
) -> None:
    before = await snapshot(tenant)
    started = time.monotonic()
    status, head, body = await _exchange(broker.port, _request(tenant, *MALFORMED[case]))
    assert time.monotonic() - started < 5
    assert b"application/json" in head.lower()
    check_problem(status, orjson.loads(body), 400, "InvalidRequest")
    assert await snapshot(tenant) == before


async def test_request_line_over_8kb_gets_problem_details(broker: Broker, tenant: str) -> None:
    target = f"{API}/entities/urn:ngsi-ld:T:{'a' * 9000}".encode()
    status, _, body = await _exchange(
        broker.port, _request(tenant, b"Content-Length: %d" % len(BODY), target=target)
    )
    check_problem(status, orjson.loads(body), 400, "InvalidRequest")
    assert "8190" in orjson.loads(body)["detail"] or "long" in orjson.loads(body)["detail"]


async def test_body_shorter_than_its_length_times_out_with_408(broker: Broker, tenant: str) -> None:
    before = await snapshot(tenant)
    started = time.monotonic()
    raw = _request(tenant, b"Content-Length: %d" % (len(BODY) + 50))
    status, head, body = await _exchange(broker.port, raw)
    elapsed = time.monotonic() - started
    check_problem(status, orjson.loads(body), 408, "RequestTimeout")
    assert 0.9 < elapsed < 5, elapsed  # the 1 s read timeout, not the client's patience
    assert b"connection: close" in head.lower()
    assert await snapshot(tenant) == before


async def test_chunked_body_gets_the_bare_411_of_the_spec(broker: Broker, tenant: str) -> None:
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)
    status, _, body = await _exchange(
        broker.port, _request(tenant, b"Transfer-Encoding: chunked", body=chunked)
    )
    assert (status, body) == (411, b"")
    assert await snapshot(tenant) == ([], [])
