"""Pure-Python work of large requests, off the event loop.

Layer: core/. Parsing a 2 MB entity (an 80,000-position geometry, 1,000 attributes) is pure
Python and takes 100-300 ms; on the event loop it would hold every other request, ``/health``
included, for that long. In a worker thread it shares the interpreter with the loop: the loop
thread gets the GIL back within the switch interval (5 ms) whenever it has something to do, so
other requests are served meanwhile. Small requests (``RequestContext.heavy`` false) stay inline:
a thread hop costs more than their parsing. The loop's default executor runs them.

The cyclic garbage collector is NOT paused here: paused, a 1,000-entity parse left ~500,000
objects in the youngest generation, and the first collection after it (on whichever thread
allocated next, often the event loop) scanned them all, then again one generation up: 10-45 ms
holds that found no garbage. Running, each collection scans a young generation of a few
thousand objects (well under a millisecond) and the thread switches in between.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from city_os.core.request import RequestContext

P = ParamSpec("P")
T = TypeVar("T")


async def off_loop(ctx: RequestContext, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``: in a worker thread for a heavy request, else inline."""
    if not ctx.heavy:
        return fn(*args, **kwargs)
    return await asyncio.to_thread(fn, *args, **kwargs)
