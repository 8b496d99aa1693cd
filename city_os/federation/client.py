"""The outbound client of distributed operations: every request sent to a context source.

Layer: federation/. Context sources are endpoints clients register, so every call goes through
the outbound network policy (auth/network.py: checked before the connection, also after DNS and
on redirects). Each source host has its own bounded connection pool, so a source that hangs
holds its own connections only; a process-wide semaphore bounds how many forwarded requests are
in flight at once. Every call has the timeout of its registration (``management.timeout``, else
``CITYOS_FEDERATION_TIMEOUT``) and never raises: a timeout, a refused or failed connection and
an error status all come back as a ``SourceAnswer`` saying what happened, and are counted per
source in the metrics. Requests carry the original @context (``Link``), ``NGSILD-Tenant`` from the
registration, the registration's ``contextSourceInfo`` as headers, and ``Via``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from city_os.auth.network import OutboundPolicy, outbound_session
from city_os.errors import NgsiLdError
from city_os.federation.via import identity
from city_os.observability.metrics import Metrics

API = "/ngsi-ld/v1"
JSON = "application/json"
JSONLD = "application/ld+json"
CONTEXT_REL = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
MAX_ANSWER_BYTES = 64 * 1024 * 1024  # a source answering more than this is cut off (error)
# contextSourceInfo keys that would break or spoof the forwarded request as headers.
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection", "via", "link"}
)


@dataclass(frozen=True)
class Target:
    """Where and how to reach one context source (from its registration)."""

    endpoint: str  # base URL; the NGSI-LD API is below it at /ngsi-ld/v1
    registration: str = ""  # registration id (reporting)
    tenant: str | None = None  # NGSILD-Tenant to send (the registration's ``tenant``)
    info: tuple[tuple[str, str], ...] = ()  # contextSourceInfo key/value pairs
    timeout: float | None = None  # management.timeout (seconds); None: the default

    @property
    def source(self) -> str:
        return identity(self.endpoint)


@dataclass(frozen=True)
class SourceAnswer:
    target: Target
    status: int | None  # None: no HTTP answer (timeout, connection error, refused)
    body: Any = None  # parsed JSON, or None
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # why the answer is not usable (None: a 2xx)
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def warning(self) -> str:
        """The ``NGSILD-Warning`` text reporting this source (RFC 7234 warn-code 199)."""
        why = (self.error or "").replace('"', "'")
        return f'199 {self.target.source} "{self.target.registration}: {why}"'


def link_header(context: Any) -> str | None:
    """The ``Link`` that passes the client's @context on: only a single URL can be sent so;
    an inline context is not forwarded (the source answers with full IRIs, which expand to
    themselves)."""
    if isinstance(context, list) and len(context) == 1:
        context = context[0]
    if isinstance(context, str) and context.startswith(("http://", "https://")):
        return f"<{context}>; {CONTEXT_REL}"
    return None


class SourceClient:
    def __init__(
        self,
        policy: OutboundPolicy,
        metrics: Metrics | None = None,
        *,
        timeout: float = 5.0,
        per_host: int = 8,
        parallelism: int = 32,
    ) -> None:
        self._policy = policy
        self._metrics = metrics
        self.default_timeout = timeout
        self._per_host = per_host
        self._slots = asyncio.Semaphore(parallelism)
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def _session(self, source: str) -> aiohttp.ClientSession:
        session = self._sessions.get(source)
        if session is None or session.closed:
            session = self._sessions[source] = outbound_session(
                self._policy,
                connector_options={"limit": self._per_host, "limit_per_host": self._per_host},
                skip_auto_headers=("User-Agent",),
            )
        return session

    def headers(
        self,
        target: Target,
        *,
        context: Any,
        via: str | None,
        body: bool,
        inline_context: bool = False,
        accept: str = JSON,
    ) -> dict[str, str]:
        """``inline_context``: the body carries its own @context (sent as JSON-LD, no Link)."""
        headers = {"Accept": accept}
        for key, value in target.info:
            if key.lower() not in _RESERVED_HEADERS and key.isascii() and "\n" not in value:
                headers[key] = value
        if target.tenant:
            headers["NGSILD-Tenant"] = target.tenant
        link = None if inline_context else link_header(context)
        if link is not None:
            headers["Link"] = link
        if body and link is not None:
            headers["Content-Type"] = JSON
        elif body:
            headers["Content-Type"] = JSONLD if inline_context else JSON
        if via:
            headers["Via"] = via
        return headers

    async def call(
        self,
        target: Target,
        method: str,
        path: str,
        *,
        operation: str,
        params: Sequence[tuple[str, str]] = (),
        body: Any = None,
        context: Any = None,
        via: str | None = None,
    ) -> SourceAnswer:
        """``method`` ``endpoint + /ngsi-ld/v1 + path``; never raises."""
        base = target.endpoint.rstrip("/")
        if base.endswith(API):  # an endpoint registered with the API root already in it
            base = base[: -len(API)]
        url = base + API + path
        seconds = target.timeout if target.timeout else self.default_timeout
        data = orjson.dumps(body) if body is not None else None
        inline = isinstance(body, dict) and "@context" in body
        headers = self.headers(
            target, context=context, via=via, body=data is not None, inline_context=inline
        )
        started = time.perf_counter()
        try:
            async with self._slots:
                async with self._session(target.source).request(
                    method,
                    url,
                    params=list(params) or None,
                    data=data,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=seconds),
                    allow_redirects=False,
                ) as response:
                    raw = await response.content.read(MAX_ANSWER_BYTES + 1)
                    answer = _answer(target, response.status, dict(response.headers), raw)
        except TimeoutError:
            answer = SourceAnswer(
                target, None, error=f"no answer within {seconds:g} s", timed_out=True
            )
        except NgsiLdError as exc:  # refused by the outbound network policy
            answer = SourceAnswer(target, None, error=exc.detail)
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            answer = SourceAnswer(target, None, error=f"{type(exc).__name__}: {exc}"[:300])
        self._observe(target, operation, answer, time.perf_counter() - started)
        return answer

    def _observe(self, target: Target, operation: str, answer: SourceAnswer, took: float) -> None:
        if self._metrics is None:
            return
        self._metrics.source_latency.labels(target.source, operation).observe(took)
        if answer.error is not None:
            kind = "timeout" if answer.timed_out else "error" if answer.status is None else "status"
            self._metrics.source_failures.labels(target.source, kind).inc()

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()
        await asyncio.sleep(0)  # let the connectors' transports finish closing


def _answer(target: Target, status: int, headers: dict[str, str], raw: bytes) -> SourceAnswer:
    if len(raw) > MAX_ANSWER_BYTES:
        return SourceAnswer(target, status, error="answer larger than 64 MiB")
    body: Any = None
    if raw:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
    if 200 <= status < 300:
        return SourceAnswer(target, status, body, headers)
    detail = body.get("detail") if isinstance(body, dict) else None
    why = f"HTTP {status}" + (f": {detail}" if isinstance(detail, str) else "")
    return SourceAnswer(target, status, body, headers, error=why[:300])
