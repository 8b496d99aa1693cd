"""HTTP side of distributed operations: ``NGSILD-Warning`` on answers that miss a source.

Layer: api/. A distributed retrieve or query collects one warning per context source that
failed, timed out or answered an error status (``RequestContext.warnings``, kept for the request
under ``WARNINGS``); ``add_warnings`` (an ``on_response_prepare`` signal) writes them as
``NGSILD-Warning`` headers (§6.3.17), so the client sees the answer is partial and why.
"""

from __future__ import annotations

from aiohttp import web

WARNING_HEADER = "NGSILD-Warning"
WARNINGS = web.RequestKey("warnings", list[str])


async def add_warnings(request: web.Request, response: web.StreamResponse) -> None:
    for warning in request.get(WARNINGS) or ():
        response.headers.add(WARNING_HEADER, warning)
