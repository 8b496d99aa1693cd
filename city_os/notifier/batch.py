"""Group writes: many small facts, few statements.

Layer: notifier/. Items are handed to ``add`` (no I/O); a writer task stores what accumulated
in one call of ``write``. It starts at once when it was idle (a lone item is stored one round
trip later) and, while items keep coming, writes at most every ``interval`` seconds. A failed
write keeps its items for the next one. ``flush`` cuts the pause short and returns once
everything added before it is written. ``unwritten`` (added, not yet stored) lets a producer
hold back while the database lags (and ``hurry`` it: no pause then); ``on_written`` is called
after every successful write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRY_DELAY = 1.0  # seconds after a failed write
FLUSH_WAIT = 5.0  # seconds flush() waits at most (the database may be down)


class GroupWriter(Generic[T]):
    def __init__(
        self, name: str, write: Callable[[list[T]], Awaitable[None]], interval: float = 0.05
    ) -> None:
        self._name = name
        self._write = write
        self._interval = interval
        self.on_written: Callable[[], None] | None = None
        self._items: list[T] = []
        self._task: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()
        self._progress = asyncio.Event()  # set after every write
        self._written = 0  # items written so far
        self._added = 0

    def add(self, item: T) -> None:
        self._items.append(item)
        self._added += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def hurry(self) -> None:
        """Write what waits without the pause (a producer is held back by ``unwritten``)."""
        self._hurry.set()
        if self._items and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._run())

    def __len__(self) -> int:
        return len(self._items)

    @property
    def unwritten(self) -> int:
        """Items added and not stored yet (waiting, or in the write under way)."""
        return self._added - self._written

    async def _run(self) -> None:
        while self._items:
            batch, self._items = self._items, []
            self._hurry.clear()  # a flush() during the write cuts the pause after it
            try:
                await self._write(batch)
            except Exception:
                log.exception(
                    "%s: write failed, keeping %d items for the next", self._name, len(batch)
                )
                self._items[:0] = batch
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), RETRY_DELAY)
                continue
            self._written += len(batch)
            self._progress.set()
            if self.on_written is not None:
                self.on_written()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), self._interval)

    async def flush(self) -> None:
        """Wait until every item added so far is written (at most FLUSH_WAIT seconds)."""
        target = self._added
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FLUSH_WAIT
        while self._written < target and loop.time() < deadline:
            if self._task is None or self._task.done():
                if not self._items:
                    return
                self._task = loop.create_task(self._run())
            self._progress.clear()
            self._hurry.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), max(0.0, deadline - loop.time()))

    async def close(self) -> None:
        await self.flush()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
