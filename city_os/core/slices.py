"""Cooperative time slices for loops over client-sized input (batch entries, query pages).

Layer: core/. ``await slicer.tick()`` in such a loop yields to the event loop once the current
slice has run ``budget`` seconds, so one large request shares the process with the others
(``/health`` included) instead of holding it for the whole loop. A tick within the budget costs
one clock read. ``sliced`` maps a function over items that way; ``release`` frees what a large
request built, item by item, the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

SLICE = 0.005  # seconds of work between yields

T = TypeVar("T")
U = TypeVar("U")


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


async def sliced(fn: Callable[[T], U], items: Iterable[T]) -> list[U]:
    """``[fn(item) for item in items]``, yielding to the event loop between time slices."""
    slicer = Slicer()
    out = []
    for item in items:
        await slicer.tick()
        out.append(fn(item))
    return out


async def release(*containers: list[Any] | dict[Any, Any] | set[Any]) -> None:
    """Empty ``containers`` item by item, yielding between time slices.

    When a batch coroutine returns, the states of its 1,000 entities (stored rows, new
    records, events, parsed bodies) lose their last references together: one deallocation of
    hundreds of thousands of objects, 20-70 ms in a single C call on the event loop. Emptied
    here first, each item is freed on its own (when this was its last reference)."""
    slicer = Slicer()
    for container in containers:
        while container:
            await slicer.tick()
            if isinstance(container, dict):
                container.popitem()
            else:
                container.pop()
