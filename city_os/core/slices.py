"""Cooperative time slices for loops over client-sized input (batch entries, query pages).

Layer: core/. ``await slicer.tick()`` in such a loop yields to the event loop once the current
slice has run ``budget`` seconds, so one large request shares the process with the others
(``/health`` included) instead of holding it for the whole loop. A tick within the budget costs
one clock read.
"""

from __future__ import annotations

import asyncio
import time

SLICE = 0.005  # seconds of work between yields


class Slicer:
    __slots__ = ("_budget", "_since")

    def __init__(self, budget: float = SLICE) -> None:
        self._budget = budget
        self._since = time.perf_counter()

    async def tick(self) -> None:
        now = time.perf_counter()
        if now - self._since >= self._budget:
            await asyncio.sleep(0)
            self._since = time.perf_counter()
