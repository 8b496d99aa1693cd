"""The notifier's lean HTTP/1.1 client (channels/http_client.py) against real sockets: the answer
framings receivers use, keep-alive reuse, a receiver that closed an idle connection, deadlines,
the outbound network policy and header injection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from city_os.auth.network import OutboundPolicy
from city_os.errors import BadRequestData
from city_os.notifier.channels.http_client import HttpClient

Answerer = Callable[[bytes], bytes | None]  # request head+body -> raw answer (None: hang)


class RawServer:
    """Answers every request on a connection with ``answer(request)``; counts connections."""

    def __init__(self, answer: Answerer, close_after: bool = False) -> None:
        self.answer = answer
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                raw = self.answer(request)
                if raw is None:
                    await asyncio.Event().wait()  # hang
                    return
                writer.write(raw)
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/notify?to=a"


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    c = HttpClient(OutboundPolicy.from_setting("loopback"))
    yield c
    await c.close()


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;x=1\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Trailer: 1\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
    ],
)
async def test_kept_alive_answers_are_read_whole_and_the_connection_reused(
    client: HttpClient, raw: bytes
) -> None:
    async with RawServer(lambda _: raw) as server:
        statuses = [
            (await client.request("POST", server.url, {"X-A": "1"}, b"{}", 5)).status
            for _ in range(3)
        ]
    assert statuses == [int(raw.rsplit(b"HTTP/1.1 ", 1)[1][:3])] * 3
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /notify?to=a HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n".encode() in first
    assert b"X-A: 1\r\n" in first and first.endswith(b"\r\n\r\n{}")


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.0 200 OK\r\n\r\nbody until the close",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
    ],
)
async def test_an_answer_that_ends_the_connection_is_not_reused(
    client: HttpClient, raw: bytes
) -> None:
    async with RawServer(lambda _: raw, close_after=True) as server:
        for _ in range(2):
            assert (await client.request("POST", server.url, {}, b"x", 5)).status == 200
    assert server.connections == 2


async def test_an_idle_connection_the_receiver_closed_is_replaced_transparently(
    client: HttpClient,
) -> None:
    # the receiver closes after each answer without saying so (no Connection: close)
    raw = b"HTTP/1.1 204 No Content\r\n\r\n"
    async with RawServer(lambda _: raw, close_after=True) as server:
        for _ in range(3):
            assert (await client.request("POST", server.url, {}, b"x", 5)).status == 204
    assert len(server.requests) == 3


async def test_headers_and_retry_after_of_the_answer(client: HttpClient) -> None:
    raw = b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n"
    async with RawServer(lambda _: raw) as server:
        answer = await client.request("POST", server.url, {}, b"x", 5)
    assert (answer.status, answer.headers["retry-after"]) == (503, "7")


async def test_a_hanging_receiver_meets_the_deadline(client: HttpClient) -> None:
    async with RawServer(lambda _: None) as server:
        with pytest.raises(TimeoutError):
            await client.request("POST", server.url, {}, b"x", 0.3)


async def test_a_garbled_answer_is_a_connection_error(client: HttpClient) -> None:
    async with RawServer(lambda _: b"SMTP ready\r\n\r\n") as server:
        with pytest.raises(ConnectionError):
            await client.request("POST", server.url, {}, b"x", 5)


async def test_a_header_with_a_line_break_is_never_sent(client: HttpClient) -> None:
    async with RawServer(lambda _: b"HTTP/1.1 204 No Content\r\n\r\n") as server:
        with pytest.raises(ValueError, match="header"):
            await client.request("POST", server.url, {"X-A": "1\r\nX-Evil: 2"}, b"x", 5)
    assert server.requests == []


async def test_the_outbound_policy_refuses_before_connecting() -> None:
    strict = HttpClient(OutboundPolicy.from_setting(""))
    try:
        async with RawServer(lambda _: b"HTTP/1.1 204 No Content\r\n\r\n") as server:
            with pytest.raises(BadRequestData, match="outbound network policy"):
                await strict.request("POST", server.url, {}, b"x", 5)
            with pytest.raises(BadRequestData, match="outbound network policy"):
                await strict.request("POST", f"http://localhost:{server.port}/n", {}, b"x", 5)
        assert server.connections == 0
    finally:
        await strict.close()
