"""A city-os broker in a thread of its own, for tests driven by a synchronous HTTP client
(schemathesis calls the API with requests), and the state of a tenant to compare.

The broker runs ``create_app`` on its own event loop behind the real HTTP server
(``ProblemAppRunner``) on a free loopback port; coroutines (the state snapshot) run on that loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import asyncpg
from aiohttp import web

from city_os.api.keys import POOL, TENANTS
from city_os.api.server import ProblemAppRunner
from city_os.app import create_app
from city_os.config import Settings
from city_os.devstack import free_port
from city_os.store.postgres.query_sql import check_identifier

T = TypeVar("T")

# Rows of a tenant in the shared tables, without the columns that change on reads or by
# themselves (usage counters, index build status, timers, publication).
SHARED: dict[str, str] = {
    "api_keys": "id, name, secret_hash, operations, types, origin, expires_at, revoked_at",
    "consents": "id, issuer, subject, client, types, purpose, expires_at, revoked_at",
    "jsonld_contexts": "id, url, kind, body",
    "outbox": "seq, event_id, entity_id, event_type, payload",
    "schema_types": "type_iri, last_version",
    "schema_versions": "type_iri, version, schema, context, active",
    "value_indexes": "attr, kind",
}
# The tenant's own tables: current state, history (temporal), registrations and access.
OWN = (
    "entities",
    "geo",
    "attr_instances",
    "temporal_entities",
    "csource_registrations",
    "permissions",
    "data_subjects",
    "subscriptions",
)


class ThreadBroker:
    def __init__(self, settings: Settings) -> None:
        self.app: web.Application = create_app(settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._runner = ProblemAppRunner(self.app, access_log=None)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.run(self._start())

    async def _start(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        self.run(self._runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def state(self, tenant: str) -> dict[str, str]:
        """A digest of every row the tenant owns (see SHARED and OWN)."""
        return self.run(self._state(tenant))

    async def _state(self, tenant: str) -> dict[str, str]:
        pool: asyncpg.Pool = self.app[POOL]
        schema = await self.app[TENANTS].schema(tenant, create=False)
        out: dict[str, str] = {}
        async with pool.acquire() as conn:
            for table, columns in SHARED.items():
                rows = await conn.fetch(
                    f"SELECT {columns} FROM cityos.{table} WHERE tenant = $1", tenant
                )
                out[table] = _digest(rows)
            for table in OWN:
                name = f"{check_identifier(schema)}.{table}"
                if await conn.fetchval("SELECT to_regclass($1) IS NULL", name):
                    out[table] = "absent"  # created on the first use of the feature
                    continue
                out[table] = _digest(await conn.fetch(f"SELECT * FROM {name}"))
        return out


def _digest(rows: list[asyncpg.Record]) -> str:
    lines = sorted(repr(tuple(r.values())) for r in rows)
    return f"{len(lines)}:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
