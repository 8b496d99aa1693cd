"""Pure-Python work of large requests, off the event loop.

Layer: core/. Parsing a 2 MB entity (an 80,000-position geometry, 1,000 attributes) is pure
Python and takes 100-300 ms; on the event loop it would hold every other request, ``/health``
included, for that long. In a worker thread it shares the interpreter with the loop: the loop
thread gets the GIL back within the switch interval (5 ms) whenever it has something to do, so
other requests are served meanwhile. Small requests (``RequestContext.heavy`` false) stay inline:
a thread hop costs more than their parsing. The loop's default executor runs them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from city_os.core.request import RequestContext
from city_os.ngsild.limits import paused_gc

P = ParamSpec("P")
T = TypeVar("T")


async def off_loop(ctx: RequestContext, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``: in a worker thread for a heavy request, else inline."""
    if not ctx.heavy:
        return fn(*args, **kwargs)

    def paused() -> T:
        # The parse allocates ~100 objects per entity: collections it would trigger stop every
        # thread, the event loop's included (see ngsild.limits.paused_gc).
        with paused_gc():
            return fn(*args, **kwargs)

    return await asyncio.to_thread(paused)
