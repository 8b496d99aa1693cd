"""The event-loop stall probe (observability/loop_stall.py): a loop held by a callback, CPU-bound
or blocked in a system call, is measured as held; time waiting for a CPU is not counted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from city_os.observability.loop_stall import PERIOD, LoopStallProbe

HELD = 0.08


def _busy(seconds: float) -> None:
    end = time.thread_time() + seconds  # CPU time of this thread: a loaded machine stretches it
    while time.thread_time() < end:
        pass


class _Probe(LoopStallProbe):
    """The probe, telling when it observed an interval."""

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry)
        self.observed = asyncio.Event()

    def observe(self, wall: float, queued: float) -> float:
        self.observed.set()
        return super().observe(wall, queued)


async def _probe_while(hold: Callable[[], None]) -> float:
    registry = CollectorRegistry()
    probe = _Probe(registry)
    probe.start()
    try:
        await probe.observed.wait()  # the probe runs
        probe.observed.clear()
        hold()
        await probe.observed.wait()  # its late wake-up
    finally:
        await probe.stop()
    worst = registry.get_sample_value("cityos_event_loop_stall_max_seconds")
    assert worst is not None
    return worst


async def test_a_cpu_bound_callback_is_a_stall() -> None:
    assert await _probe_while(lambda: _busy(HELD)) >= HELD - PERIOD


async def test_a_blocking_call_on_the_loop_is_a_stall() -> None:
    assert await _probe_while(lambda: time.sleep(HELD)) >= HELD - PERIOD


def test_waiting_for_a_cpu_is_not_counted() -> None:
    registry = CollectorRegistry()
    probe = LoopStallProbe(registry)
    # 100 ms between two wake-ups, 60 of them on the run queue: 100 - 60 - 5 held.
    assert abs(probe.observe(0.100, 0.060) - 0.035) < 1e-9
    assert probe.observe(0.050, 0.049) == 0.0  # late only for want of a CPU
    assert registry.get_sample_value("cityos_event_loop_stall_max_seconds") == probe.observe(
        0.100, 0.060
    )
