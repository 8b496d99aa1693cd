"""A LISTEN connection that survives: PostgreSQL notifications for in-memory caches.

Layer: store/. The connection is dedicated (never a pool one: it is held for good). When it is
lost, notifications may have been missed, so after reconnecting the owner's ``resync`` runs
(reload everything) — the same contract as the schema registry's listener (registry/active.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

log = logging.getLogger(__name__)
MAX_RECONNECT_DELAY = 30.0


class Listener:
    def __init__(
        self,
        dsn: str,
        channel: str,
        on_payload: Callable[[str], None],
        resync: Callable[[], Awaitable[None]],
    ) -> None:
        self._dsn = dsn
        self._channel = channel
        self._on_payload = on_payload
        self._resync = resync
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen (before the caller's first load, so no change slips in between)."""
        await self._connect()
        self._watcher = asyncio.create_task(self._watch())

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await conn.close(timeout=1)

    async def _connect(self) -> None:
        if self._conn is not None:
            old, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await old.close(timeout=1)
        conn = await asyncpg.connect(self._dsn)
        self._lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: self._lost.set())
        await conn.add_listener(self._channel, self._notified)
        self._conn = conn

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self._on_payload(payload)

    async def _watch(self) -> None:
        while True:
            await self._lost.wait()
            log.warning("LISTEN %s: connection lost; reconnecting", self._channel)
            delay = 0.5
            while True:
                try:
                    await self._connect()
                    await self._resync()
                    break
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("LISTEN %s: %s; retrying in %.1f s", self._channel, exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_RECONNECT_DELAY)
