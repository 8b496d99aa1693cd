"""Several city-os instances started by a test: each on its own port, in its own tenant.

Every instance is a real broker (create_app, real HTTP on 127.0.0.1, the test database); one
is the federating broker, the others its context sources. Their public origin is their own
address, so each has its own identity in ``Via``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from city_os.app import create_app
from city_os.devstack import free_port
from tests.conftest import test_settings

API = "/ngsi-ld/v1"
EX = "https://example.org/ns#"
CONTEXT = {
    "ex": EX, "Shelter": "ex:Shelter", "capacity": "ex:capacity", "name": "ex:name",
    "flood": "ex:flood", "owner": "ex:owner",
}  # fmt: skip
SHELTER = EX + "Shelter"


@dataclass
class Broker:
    name: str
    url: str  # origin, e.g. http://127.0.0.1:40123
    tenant: str
    http: aiohttp.ClientSession
    context_url: str = ""  # the test @context, served over HTTP (sent as Link)
    app: web.Application | None = None
    auth: dict[str, str] = field(default_factory=dict)  # e.g. an Authorization header

    def headers(self, **more: str) -> dict[str, str]:
        return {"NGSILD-Tenant": self.tenant, **self.auth, **more}

    async def create(self, entity: dict[str, Any]) -> None:
        async with self.http.post(
            f"{self.url}{API}/entities",
            json={**entity, "@context": CONTEXT},
            headers=self.headers(**{"Content-Type": "application/ld+json"}),
        ) as resp:
            assert resp.status == 201, await resp.text()

    async def register(self, source: Broker, **members: Any) -> str:
        body: dict[str, Any] = {
            "type": "ContextSourceRegistration",
            "information": [{"entities": [{"type": "Shelter"}]}],
            "endpoint": source.url,
            "tenant": source.tenant,
            "@context": CONTEXT,
        }
        body.update(members)
        async with self.http.post(
            f"{self.url}{API}/csourceRegistrations",
            json={k: v for k, v in body.items() if v is not None},
            headers=self.headers(**{"Content-Type": "application/ld+json"}),
        ) as resp:
            assert resp.status == 201, await resp.text()
            return resp.headers["Location"].rsplit("/", 1)[1]

    def link(self) -> str:
        return f'<{self.context_url}>; rel="http://www.w3.org/ns/json-ld#context"'

    async def get(self, path: str, **params: str) -> tuple[int, Any, aiohttp.ClientResponse]:
        """GET with the test @context in Link (answers compacted with it)."""
        async with self.http.get(
            f"{self.url}{API}{path}",
            params=params,
            headers=self.headers(Accept="application/json", Link=self.link()),
        ) as resp:
            body = await resp.json(content_type=None)
            return resp.status, body, resp


def shelter(entity_id: str, **attrs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": entity_id, "type": "Shelter"}
    for name, value in attrs.items():
        body[name] = value if isinstance(value, dict) else {"type": "Property", "value": value}
    return body


def full(name: str) -> str:
    return EX + name


@asynccontextmanager
async def brokers(
    *names: str, settings_of: Callable[[str], dict[str, Any]] | None = None, **settings: Any
) -> AsyncIterator[dict[str, Broker]]:
    """Start one city-os per name (own port, own tenant); ``settings_of(name)``: settings of
    that one broker (its Kafka topic, …) besides ``settings``."""
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())
        contexts = web.Application()

        async def serve(request: web.Request) -> web.Response:
            return web.json_response({"@context": CONTEXT}, content_type="application/ld+json")

        contexts.router.add_get("/context.jsonld", serve)
        context_server = TestServer(contexts, host="127.0.0.1")
        await context_server.start_server()
        stack.push_async_callback(context_server.close)
        context_url = f"http://127.0.0.1:{context_server.port}/context.jsonld"
        out: dict[str, Broker] = {}
        for name in names:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            own = settings_of(name) if settings_of is not None else {}
            app = create_app(
                test_settings(port=port, public_url=url, db_pool_max=4, **settings, **own)
            )
            server = TestServer(app, host="127.0.0.1", port=port)
            await server.start_server()
            stack.push_async_callback(server.close)
            tenant = f"test-{name}-{uuid.uuid4().hex[:8]}"
            out[name] = Broker(name, url, tenant, http, context_url, app)
        yield out
