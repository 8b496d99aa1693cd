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
# A source answering more than this is not read further: the part fails like an invalid one.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
# warn-codes of NGSILD-Warning (§6.3.17, Table 6.3.17-1)
INVALID_PAYLOAD = 111  # data arrived in time, but not valid
DISCONNECTED = 112  # no answer: timeout, connection refused or reset, refused by policy
ERROR_ANSWER = 299  # an error status from the endpoint
# contextSourceInfo keys that would break or spoof the forwarded request as headers.
# (§4.3.6.5: tenant information is not part of contextSourceInfo; binding information is
# ignored.)
_RESERVED_HEADERS = frozenset(
    {
        "host", "content-length", "content-type", "transfer-encoding", "connection", "via",
        "link", "ngsild-tenant", "accept", "te", "upgrade", "keep-alive", "expect",
    }
)  # fmt: skip
FROM_REQUEST = "urn:ngsi-ld:request"  # contextSourceInfo value: copy the triggering header
# contextSourceInfo keys that steer the request instead of being sent (§4.3.6.6)
STEERING = frozenset({"contentType", "jsonldContext", "accept"})


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

    @property
    def steering(self) -> dict[str, str]:
        return {k: v for k, v in self.info if k in STEERING}


@dataclass(frozen=True)
class SourceAnswer:
    target: Target
    status: int | None  # None: no HTTP answer (timeout, connection error, refused)
    body: Any = None  # parsed JSON, or None
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # why the answer is not usable (None: a 2xx)
    timed_out: bool = False
    code: int = DISCONNECTED  # warn-code when ``error`` is set

    @property
    def ok(self) -> bool:
        return self.error is None

    def warning(self) -> str:
        """The ``NGSILD-Warning`` value reporting this source (warn-code, agent, text)."""
        why = (self.error or "").replace('"', "'")
        return f'{self.code} {self.target.source} "{self.target.registration}: {why}"'


def _carried_context(body: Any) -> Any:
    """The @context a JSON-LD payload carries (its first entity's, for a batch)."""
    first = body[0] if isinstance(body, list) and body else body
    return first.get("@context") if isinstance(first, dict) else None


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
        incoming: Sequence[tuple[str, str]] = (),
    ) -> dict[str, str]:
        """``inline_context``: the body carries its @context (sent as JSON-LD, no Link);
        ``incoming``: the headers of the request that triggered this one."""
        steer = target.steering
        headers = {"Accept": steer.get("accept", JSON)}
        for key, value in target.info:
            if key.lower() in _RESERVED_HEADERS or key in STEERING or not key.isascii():
                continue
            if value == FROM_REQUEST:
                copied = [v for k, v in incoming if k.lower() == key.lower()]
                if not copied:
                    continue
                value = copied[0]
            if "\n" not in value and "\r" not in value:
                headers[key] = value
        if target.tenant:
            headers["NGSILD-Tenant"] = target.tenant
        link = None if inline_context else link_header(steer.get("jsonldContext", context))
        if link is not None:
            headers["Link"] = link
        if body:
            headers["Content-Type"] = JSONLD if inline_context else JSON
        if via:
            headers["Via"] = via
        return headers

    def payload(self, target: Target, body: Any, context: Any) -> tuple[Any, bool]:
        """The body to send and whether it carries its @context inline (§4.3.6.6): with a
        registered ``contentType`` of JSON-LD the @context goes into the payload; else a
        @context that is a URL travels in Link and leaves the payload (with a registered
        ``jsonldContext``, always); a body whose @context is inline JSON keeps it."""
        if body is None:
            return None, False
        steer = target.steering
        items = body if isinstance(body, list) else [body]
        if not all(isinstance(i, dict) for i in items):
            return body, False
        if steer.get("contentType") == JSONLD and context is not None:
            filled = [{**i, "@context": i.get("@context", context)} for i in items]
            return (filled if isinstance(body, list) else filled[0]), True
        carried = [i.get("@context") for i in items if "@context" in i]
        if not carried:
            return body, False
        if "jsonldContext" in steer or all(link_header(c) is not None for c in carried):
            bare = [{k: v for k, v in i.items() if k != "@context"} for i in items]
            return (bare if isinstance(body, list) else bare[0]), False
        return body, True

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
        incoming: Sequence[tuple[str, str]] = (),
    ) -> SourceAnswer:
        """``method`` ``endpoint + /ngsi-ld/v1 + path``; never raises."""
        base = target.endpoint.rstrip("/")
        if base.endswith(API):  # an endpoint registered with the API root already in it
            base = base[: -len(API)]
        url = base + API + path
        seconds = target.timeout if target.timeout else self.default_timeout
        if isinstance(body, dict | list) and context is None:
            context = _carried_context(body)
        sent, inline = self.payload(target, body, context)
        data = orjson.dumps(sent) if sent is not None else None
        headers = self.headers(
            target,
            context=context,
            via=via,
            body=data is not None,
            inline_context=inline,
            incoming=incoming,
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
                    raw = await _read(response, MAX_ANSWER_BYTES)
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


async def _read(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """The whole body, or ``cap + 1`` bytes of it when it is larger (not read further)."""
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(256 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            break
    return b"".join(chunks)


def _answer(target: Target, status: int, headers: dict[str, str], raw: bytes) -> SourceAnswer:
    if len(raw) > MAX_ANSWER_BYTES:
        why = f"answer larger than {MAX_ANSWER_BYTES // (1024 * 1024)} MiB"
        return SourceAnswer(target, status, error=why, code=INVALID_PAYLOAD)
    body: Any = None
    if raw:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            if 200 <= status < 300:
                why = "the answer is not JSON"
                return SourceAnswer(target, status, error=why, code=INVALID_PAYLOAD)
    if 200 <= status < 300:
        return SourceAnswer(target, status, body, headers)
    detail = body.get("detail") if isinstance(body, dict) else None
    why = f"HTTP {status}" + (f": {detail}" if isinstance(detail, str) else "")
    return SourceAnswer(target, status, body, headers, error=why[:300], code=ERROR_ANSWER)
