"""Event-loop stall probe: how long the process's own work keeps its event loop from answering.

Layer: observability/. A task wakes every ``PERIOD``; a wake-up that comes late means the loop
was held: by a callback running on it, or by a worker thread of this process holding the GIL.
On a machine shared with other processes a wake-up also comes late when the loop thread is
runnable but waits for a CPU: that is the machine's load, not work of this process, so the time
the loop thread waited on the run queue (Linux ``/proc/.../schedstat``) is taken off the
interval's wall time. Everything else counts: callbacks, blocking calls on the loop (they use no
CPU but hold it all the same), waits for the GIL (even while the thread holding it is itself
preempted: an over-estimate under load, never an under-estimate).

So ``stall = wall - run-queue wait - PERIOD``, observed into the histogram
``cityos_event_loop_stall_seconds``; ``cityos_event_loop_stall_max_seconds`` keeps the worst
since start, and a stall of ``LOG_FROM`` or more is logged with its wall and run-queue times.
A request that arrives during a stall waits for it: it is the part of ``/health``'s latency
the broker is responsible for. Cost: one wake-up, a clock read and a 2 µs read of
``schedstat`` every 5 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Final

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, Histogram

PERIOD: Final = 0.005  # seconds between wake-ups
LOG_FROM: Final = 0.025  # seconds: stalls from this long on are logged
BUCKETS: Final = (0.002, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 5.0)

log = logging.getLogger("city_os.loop_stall")


def _run_queue_reader() -> Callable[[], float]:
    """Seconds the calling thread has waited on the run queue since it started (0 where the
    kernel does not say: the stall then includes that wait)."""
    try:
        fd = os.open(f"/proc/self/task/{threading.get_native_id()}/schedstat", os.O_RDONLY)
    except OSError:
        return lambda: 0.0

    def read() -> float:
        try:
            return int(os.pread(fd, 64, 0).split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            return 0.0

    return read


class LoopStallProbe:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.histogram = Histogram(
            "cityos_event_loop_stall_seconds",
            "How long this process's own work held its event loop (callbacks, GIL held by its "
            "threads), sampled every 5 ms; time spent waiting for a CPU is not counted",
            buckets=BUCKETS,
            registry=registry,
        )
        self.worst = Gauge(
            "cityos_event_loop_stall_max_seconds",
            "The longest event-loop stall of this process since it started",
            registry=registry,
        )
        self._worst = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-stall")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def observe(self, wall: float, queued: float) -> float:
        """One interval between wake-ups: its wall time, the loop thread's run-queue wait."""
        stall = max(0.0, wall - queued - PERIOD)
        self.histogram.observe(stall)
        if stall > self._worst:
            self._worst = stall
            self.worst.set(stall)
        if stall >= LOG_FROM:
            log.warning(
                "event loop held for %.1f ms by this process (interval %.1f ms, %.1f ms of it "
                "waiting for a CPU)",
                stall * 1000,
                wall * 1000,
                queued * 1000,
            )
        return stall

    async def _run(self) -> None:
        queued = _run_queue_reader()
        wall0, queued0 = time.monotonic(), queued()
        while True:
            await asyncio.sleep(PERIOD)
            wall1, queued1 = time.monotonic(), queued()
            self.observe(wall1 - wall0, queued1 - queued0)
            wall0, queued0 = wall1, queued1


def install(app: web.Application, registry: CollectorRegistry) -> None:
    """A probe for ``app``'s process, started by the start-up handler appended now (call it
    after the others: the start-up work itself, migrations and the collector's freeze, is not
    serving and would otherwise be every process's worst stall), stopped at clean-up."""
    probe = LoopStallProbe(registry)

    async def start(app: web.Application) -> None:
        probe.start()

    async def stop(app: web.Application) -> None:
        await probe.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
