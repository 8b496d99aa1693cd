"""Helpers for the notifier tests: local HTTP receivers, apps with relay and notifier, polling.

Every test gets its own Tansu (the ``tansu`` fixture), topic and consumer group, so the
notifiers of different tests never share events; receivers listen on free local ports.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from city_os.api.keys import POOL
from city_os.api.ops import METRICS, NOTIFIER
from city_os.app import create_app
from city_os.devstack import free_port, start_tansu
from city_os.notifier.service import Notifier
from tests.conftest import test_settings
from tests.integration.events.support import create_topic, poll

API = "/ngsi-ld/v1"
TIMEOUT = 30.0
Client = TestClient  # type: ignore[type-arg]


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]
    at: float  # time.time() on arrival
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class Receiver:
    """A notification receiver; ``status`` (and ``headers``) is what it answers, ``hang`` makes
    it never answer, ``down`` closes its port."""

    port: int = field(default_factory=free_port)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)  # of every answer
    hang: bool = False
    received: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/notify"

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.received.append(
            Received(dict(request.headers), orjson.loads(raw), time.time(), dict(request.query))
        )
        if self.hang:
            await self._release.wait()
        return web.Response(status=self.status, headers=self.headers)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/notify", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_for(self, count: int, within: float = TIMEOUT) -> list[Received]:
        async def enough() -> bool:
            return len(self.received) >= count

        await poll(enough, within)
        return self.received

    def ids(self) -> list[str]:
        return [r.body["id"] for r in self.received]

    def to(self, name: str) -> str:
        """The URL of one subscription's endpoint on this receiver (``?to=name``)."""
        return f"{self.url}?to={name}"

    def of(self, name: str) -> list[dict[str, Any]]:
        """Bodies received for ``to(name)``, in arrival order."""
        return [r.body for r in self.received if r.query.get("to") == name]

    async def wait_of(self, name: str, count: int, within: float = TIMEOUT) -> list[dict[str, Any]]:
        async def enough() -> bool:
            return len(self.of(name)) >= count

        await poll(enough, within)
        return self.of(name)


@asynccontextmanager
async def receiver(**options: Any) -> AsyncIterator[Receiver]:
    r = await Receiver(**options).start()
    try:
        yield r
    finally:
        await r.stop()


def settings(bootstrap: str, topic: str, group: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "kafka_bootstrap": bootstrap,
        "kafka_topic": topic,
        "relay_poll_interval": 0.2,
        "kafka_publish_timeout": 3.0,
        "notifier_enabled": True,
        "notifier_group_id": group,
        "notifier_timeout": 2.0,
        "notifier_lease": 3.0,
    }
    values.update(overrides)
    return test_settings(**values)


@asynccontextmanager
async def broker(bootstrap: str, **overrides: Any) -> AsyncIterator[Client]:
    """API + relay + notifier on a topic and consumer group of their own."""
    topic = f"test-notify-{uuid.uuid4().hex[:10]}"
    await create_topic(bootstrap, topic)
    app = create_app(settings(bootstrap, topic, f"test-{uuid.uuid4().hex[:10]}", **overrides))
    async with TestClient(TestServer(app)) as client:
        await consuming(client.app[NOTIFIER])
        yield client


async def consuming(notifier: Notifier, within: float = TIMEOUT) -> None:
    """Wait until the notifier's consumer has joined its group and got partitions."""

    async def joined() -> bool:
        return notifier.consumer.state == "up" and notifier.consumer.assigned > 0

    await poll(joined, within)


async def settled(client: Client, tenant: str, within: float = TIMEOUT) -> None:
    """Wait until the notifier handled every event of the tenant written so far and delivered
    (or gave up on) every notification they matched: then what did not arrive never will."""
    notifier, metrics = client.app[NOTIFIER], client.app[METRICS]

    async def done() -> bool:
        written = await client.app[POOL].fetchval(
            "SELECT count(*) FROM cityos.outbox WHERE tenant = $1", tenant
        )
        handled = metrics.registry.get_sample_value(
            "cityos_notifier_events_total", {"tenant": tenant}
        )
        return (
            (handled or 0) >= written
            and await notifier.store.pending(tenant) == 0
            and notifier.dispatcher.in_flight() == 0
        )

    await poll(done, within)


def hdr(tenant: str, **extra: str) -> dict[str, str]:
    return {"NGSILD-Tenant": tenant, "Content-Type": "application/json", **extra}


async def subscribe(client: Client, tenant: str, body: dict[str, Any]) -> str:
    body = {"type": "Subscription", **body}
    resp = await client.post(f"{API}/subscriptions", json=body, headers=hdr(tenant))
    assert resp.status == 201, await resp.text()
    return str(resp.headers["Location"].rsplit("/", 1)[1])


async def write(
    client: Client, method: str, path: str, tenant: str, body: Any = None, status: int = 204
) -> None:
    resp = await client.request(method, f"{API}{path}", json=body, headers=hdr(tenant))
    assert resp.status == status, await resp.text()


@asynccontextmanager
async def stack(**overrides: Any) -> AsyncIterator[Client]:
    """A Tansu of its own and a broker (API + relay + notifier) on it."""
    kafka = await start_tansu(free_port())
    try:
        async with broker(kafka.bootstrap, **overrides) as client:
            yield client
    finally:
        await kafka.stop()


def shelter(n: int, capacity: int = 100, **attrs: Any) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Shelter:{n}",
        "type": "Shelter",
        "capacity": {"type": "Property", "value": capacity},
        **attrs,
    }
