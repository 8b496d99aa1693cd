"""LISTEN on a PostgreSQL channel, for per-process caches kept current by NOTIFY.

Layer: store/. A ``ChannelListener`` holds one dedicated connection (never a pooled one: LISTEN
is session state) and hands every notification's payload to ``on_notify``, each in a task of
its own. When the connection is lost it reconnects with a growing delay and calls ``on_reset``,
since notifications sent meanwhile are lost: the cache must reload everything. The schema
registry's active schemas and the access-control caches use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

log = logging.getLogger(__name__)

MAX_RECONNECT_DELAY = 30.0


class ChannelListener:
    def __init__(
        self,
        dsn: str,
        channel: str,
        on_notify: Callable[[str], Awaitable[None]],
        on_reset: Callable[[], Awaitable[None]],
    ) -> None:
        self._dsn = dsn
        self._channel = channel
        self._on_notify = on_notify
        self._on_reset = on_reset
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Connect and LISTEN; call it before the cache's first load, so no change slips in
        between."""
        await self._listen()
        self._watcher = asyncio.create_task(self._watch())

    async def close(self) -> None:
        tasks = [t for t in (self._watcher, *self._pending) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _listen(self) -> None:
        if self._conn is not None:
            old, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await old.close(timeout=1)
        conn = await asyncpg.connect(self._dsn)
        self._lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: self._lost.set())
        await conn.add_listener(self._channel, self._notified)
        self._conn = conn

    async def _watch(self) -> None:
        while True:
            await self._lost.wait()
            log.warning("listener on %s lost its connection; reconnecting", self._channel)
            delay = 0.5
            while True:
                try:
                    await self._listen()
                    await self._on_reset()
                    break
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("listener on %s: %s; retrying in %.1f s", self._channel, exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_RECONNECT_DELAY)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        task = asyncio.create_task(self._apply(payload))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _apply(self, payload: str) -> None:
        try:
            await self._on_notify(payload)
        except Exception:
            log.exception("refresh on %s failed for %r", self._channel, payload)
