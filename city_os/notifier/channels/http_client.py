"""A lean HTTP/1.1 client for notifications: keep-alive connections per origin, one request in
flight on each.

Layer: notifier/ (the HTTP channel's transport). Notifications are small requests to a few
receivers, thousands a second; aiohttp's client spends most of its CPU per request on what they
never use (middlewares, cookies, auto headers, redirects, multipart), and on two cores that CPU
is taken from matching and delivery (bench ``notify``: the fan-out profile). This client writes
each request as one buffer and reads the answer's head itself. It keeps what matters:

* the outbound network policy (auth/network.py) decides before any connection — on a literal
  address, or on the resolved addresses (``PolicyResolver``: the address checked is the address
  connected to);
* https verifies the certificate and the host name (the default SSL context);
* every request has a deadline; a connection is reused only after a complete answer that did not
  ask to close it; an answer's body is read (and dropped) up to ``MAX_BODY`` bytes;
* header names and values with CR or LF are refused (no header injection from receiverInfo);
* a request that fails on a reused connection before any byte of the answer came back is sent
  once more on a new one (the receiver had closed the idle connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from city_os.auth.network import OutboundPolicy, PolicyResolver, RefusedHost, refused

MAX_BODY = 1 << 20  # bytes of an answer read; a longer one is cut and its connection closed
MAX_HEAD = 64 << 10  # bytes of an answer's status line and headers
IDLE = 15.0  # seconds an idle connection is kept
MAX_IDLE = 256  # idle connections kept per origin
Origin = tuple[str, str, int]  # (scheme, host, port)


class ProtocolError(ConnectionError):
    """The receiver answered something that is not HTTP/1.x."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names (the last of repeated ones)


@dataclass(frozen=True, slots=True)
class _Target:
    origin: Origin
    path: str  # path and query, as sent
    host_header: str


@lru_cache(maxsize=4096)
def _target(url: str) -> _Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url}: not an http(s) URL")
    port = parts.port or (443 if scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    default = port == (443 if scheme == "https" else 80)
    return _Target((scheme, host, port), path, shown if default else f"{shown}:{port}")


@dataclass(eq=False)
class _Conn(asyncio.Protocol):
    origin: Origin
    transport: Any = None
    closed: bool = False
    idle_since: float = 0.0
    _buf: bytearray = field(default_factory=bytearray)
    _waiter: asyncio.Future[Answer] | None = None
    _head: Answer | None = None
    _need: int = 0  # body bytes still to come (-1: chunked, -2: until the connection closes)
    _keep: bool = True
    got_bytes: bool = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            if self._head is not None and self._need == -2:  # body delimited by the close
                self._keep = False
                self._waiter.set_result(self._head)
            else:
                self._waiter.set_exception(ConnectionError(f"connection closed: {exc or 'EOF'}"))

    def send(self, data: bytes) -> asyncio.Future[Answer]:
        self._waiter = asyncio.get_running_loop().create_future()
        self._buf.clear()
        self._head, self._need, self._keep, self.got_bytes = None, 0, True, False
        self.transport.write(data)
        return self._waiter

    def expire(self) -> None:
        """The deadline passed before the answer was complete."""
        if self._waiter is not None and not self._waiter.done():
            self._keep = False
            self._waiter.set_exception(TimeoutError("no complete answer in time"))

    @property
    def reusable(self) -> bool:
        return self._keep and not self.closed

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        if self._waiter is None or self._waiter.done():
            self._keep = False  # an answer nobody asked for: this connection is spoiled
            return
        self._buf += data
        try:
            self._parse()
        except ProtocolError as exc:
            self._keep = False
            self._waiter.set_exception(exc)

    def _parse(self) -> None:
        assert self._waiter is not None
        while self._head is None:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEAD:
                    raise ProtocolError("answer head too long")
                return
            head = bytes(self._buf[:end]).decode("latin-1")
            del self._buf[: end + 4]
            answer, need, keep = _head(head)
            if 100 <= answer.status < 200 and answer.status != 101:
                continue  # an interim answer: the final one follows
            self._head, self._need, self._keep = answer, need, keep
        if self._need == -1:
            self._chunks()
        elif self._need >= 0 and len(self._buf) >= self._need:
            self._keep = self._keep and len(self._buf) == self._need
            self._done()
        elif len(self._buf) > MAX_BODY:
            self._keep = False
            self._done()

    def _chunks(self) -> None:
        while True:
            line_end = self._buf.find(b"\r\n")
            if line_end < 0:
                return
            try:
                size = int(bytes(self._buf[:line_end]).split(b";", 1)[0].strip() or b"x", 16)
            except ValueError:
                raise ProtocolError("malformed chunk size") from None
            if size == 0:  # the last chunk; trailers (if any) end with an empty line
                rest = self._buf[line_end + 2 :]
                if rest.startswith(b"\r\n") or rest.find(b"\r\n\r\n") >= 0:
                    self._done()
                return
            if len(self._buf) < line_end + 2 + size + 2:
                if len(self._buf) > MAX_BODY:
                    self._keep = False
                    self._done()
                return
            del self._buf[: line_end + 2 + size + 2]

    def _done(self) -> None:
        assert self._waiter is not None and self._head is not None
        self._buf.clear()
        if not self._waiter.done():
            self._waiter.set_result(self._head)


def _head(head: str) -> tuple[Answer, int, bool]:
    """(answer, body framing, keep-alive) of an answer's status line and headers."""
    lines = head.split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/1."):
        raise ProtocolError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
    try:
        status = int(status_line[1])
    except ValueError:
        raise ProtocolError(f"bad status {status_line[1][:10]!r}") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep = "close" not in connection and (
        status_line[0] != "HTTP/1.0" or "keep-alive" in connection
    )
    if status in (204, 304) or 100 <= status < 200:
        return Answer(status, headers), 0, keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return Answer(status, headers), -1, keep
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise ProtocolError(f"bad Content-Length {length[:20]!r}")
        return Answer(status, headers), int(length), keep
    return Answer(status, headers), -2, False  # until the connection closes


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def request_bytes(method: str, target: _Target, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {target.path} HTTP/1.1", f"Host: {target.host_header}"]
    for name, value in headers.items():
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value or ":" in name:
            raise ValueError(f"header {name[:40]!r} has characters a header cannot have")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


class HttpClient:
    def __init__(self, policy: OutboundPolicy, resolver: PolicyResolver | None = None) -> None:
        self._policy = policy
        self._resolver = resolver or PolicyResolver(policy)
        self._idle: dict[Origin, list[_Conn]] = {}
        self._ssl: ssl.SSLContext | None = None

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes, within: float
    ) -> Answer:
        """Send one request and read its answer within ``within`` seconds. Raises TimeoutError,
        ConnectionError/OSError (the receiver is unreachable or broke off), BadRequestData (the
        outbound policy refuses the address) or ValueError (no sendable request)."""
        target = _target(url)
        data = request_bytes(method, target, headers, body)
        # one timer per exchange (asyncio.timeout costs several times more per request)
        deadline = asyncio.get_running_loop().time() + within
        conn = self._reused(target.origin)
        if conn is not None:
            try:
                return await self._exchange(conn, data, deadline)
            except ConnectionError:
                if conn.got_bytes:
                    raise
        async with asyncio.timeout_at(deadline):
            conn = await self._open(url, target.origin)
        return await self._exchange(conn, data, deadline)

    async def _exchange(self, conn: _Conn, data: bytes, deadline: float) -> Answer:
        waiter = conn.send(data)
        timer = asyncio.get_running_loop().call_at(deadline, conn.expire)
        try:
            answer = await waiter
        except BaseException:
            conn.transport.abort()  # mid-answer (deadline, cancel, error): never reused
            raise
        finally:
            timer.cancel()
        if conn.reusable:
            conn.idle_since = time.monotonic()
            idle = self._idle.setdefault(conn.origin, [])
            if len(idle) < MAX_IDLE:
                idle.append(conn)
                return answer
        conn.transport.close()
        return answer

    def _reused(self, origin: Origin) -> _Conn | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.reusable and now - conn.idle_since < IDLE:
                return conn
            conn.transport.close()
        return None

    async def _open(self, url: str, origin: Origin) -> _Conn:
        scheme, host, port = origin
        if _literal(host):
            self._policy.check_url(url, host)  # a literal address: checked as written
            addresses = [host]
        else:
            try:
                found = await self._resolver.resolve(host, port, socket.AF_UNSPEC)
            except RefusedHost as exc:
                raise refused(url, exc.why) from None
            addresses = [r["host"] for r in found]
        context = self._context() if scheme == "https" else None
        loop = asyncio.get_running_loop()
        error: OSError | None = None
        for address in addresses:
            try:
                _, conn = await loop.create_connection(
                    lambda: _Conn(origin),
                    address,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                )
                return conn
            except OSError as exc:
                error = exc
        raise error or OSError(f"no address to connect to for {host}")

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.transport.close()
        self._idle.clear()
        await self._resolver.close()
