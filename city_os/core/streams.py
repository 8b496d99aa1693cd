"""The live stream of web pages: Server-Sent Events of a subscription's notifications.

Layer: core/. A subscription whose endpoint is ``urn:city-os:stream`` is matched and rendered
by the notifier like any other; its channel stores each notification in
``cityos.stream_events`` and NOTIFYs (notifier/channels/stream.py). Every API process keeps one
``StreamHub``: a LISTEN connection that hands each new event to the open streams of its
subscription in this process, wherever the notifier ran. ``Stream`` is one page's connection:
first what it missed after its Last-Event-ID, then live events, without repeats. A page too
slow to keep up (its queue full) is resynchronised from the table, never silently skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson

from city_os.observability.metrics import Metrics
from city_os.store.postgres.listen import ChannelListener
from city_os.store.postgres.streams import CHANNEL, StreamEvent, StreamStore

log = logging.getLogger(__name__)
QUEUE_SIZE = 256  # live events held per connection before it resynchronises from the table
KEEPALIVE = 15.0  # seconds between comments on an idle connection (proxies close idle ones)
_RESYNC = None  # in a queue: read the table again (missed NOTIFYs or a full queue)
Key = tuple[str, str]  # (tenant, subscription id)


@dataclass(eq=False)
class _Listener:
    queue: asyncio.Queue[StreamEvent | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE)
    )

    def offer(self, item: StreamEvent | None) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # drop the live backlog; the table has it all
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(_RESYNC)


class StreamHub:
    def __init__(self, store: StreamStore, dsn: str) -> None:
        self.store = store
        self._listeners: dict[Key, set[_Listener]] = {}
        self._channel = ChannelListener(dsn, CHANNEL, self._notified, self._reset)

    async def start(self) -> None:
        await self._channel.start()

    async def close(self) -> None:
        await self._channel.close()

    def connections(self) -> int:
        return sum(len(v) for v in self._listeners.values())

    async def collect(self, metrics: Metrics) -> None:
        """Scrape-time gauge: open connections."""
        metrics.stream_connections.set(self.connections())

    async def _notified(self, payload: str) -> None:
        seq, tenant, sid = orjson.loads(payload)
        listeners = self._listeners.get((tenant, sid))
        if not listeners:
            return  # nobody here watches it: no read at all
        event = await self.store.get(int(seq))
        if event is not None:
            for listener in list(listeners):
                listener.offer(event)

    async def _reset(self) -> None:
        """The LISTEN connection was lost: NOTIFYs may be missed, every stream re-reads."""
        for listeners in self._listeners.values():
            for listener in listeners:
                listener.offer(_RESYNC)

    @contextlib.asynccontextmanager
    async def open(self, tenant: str, sid: str, last_id: int) -> AsyncIterator[Stream]:
        listener = _Listener()
        key = (tenant, sid)
        self._listeners.setdefault(key, set()).add(listener)
        try:
            # registered before the backlog is read: nothing committed meanwhile is missed
            yield Stream(self.store, key, listener, last_id)
        finally:
            listeners = self._listeners.get(key)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._listeners[key]


class Stream:
    """One connection: ``next()`` gives the events in order, None after an idle KEEPALIVE."""

    def __init__(self, store: StreamStore, key: Key, listener: _Listener, last_id: int) -> None:
        self._store = store
        self._key = key
        self._listener = listener
        self._last = last_id  # the highest seq sent (the page's Last-Event-ID at first)
        self._floor = last_id  # the page had everything up to here
        self._sent: set[int] = set()  # seqs sent (live events may come out of seq order)
        self._backlog: list[StreamEvent] = []
        self._resync = True  # first: what was missed after Last-Event-ID

    async def next(self) -> StreamEvent | None:
        while True:
            if self._resync:
                self._resync = False
                self._backlog = await self._store.since(*self._key, self._last)
                if len(self._backlog) == 1000:
                    self._resync = True  # more after this page
            while self._backlog:
                event = self._backlog.pop(0)
                if self._fresh(event):
                    return event
            try:
                item = await asyncio.wait_for(self._listener.queue.get(), KEEPALIVE)
            except TimeoutError:
                return None
            if item is _RESYNC:
                self._resync = True
            elif self._fresh(item):
                return item

    def _fresh(self, event: StreamEvent) -> bool:
        if event.seq in self._sent or event.seq <= self._floor:
            return False
        self._sent.add(event.seq)
        if len(self._sent) > 4096:  # keep the newest: older ones are behind every reader
            self._sent = set(sorted(self._sent)[-2048:])
        self._last = max(self._last, event.seq)
        return True
