"""The HTTP server of city-os: aiohttp's, with its protocol-level errors as ProblemDetails.

Layer: api/. aiohttp answers a request it cannot parse (NUL, CR or LF in a header, a request line
or header over 8 KB, conflicting Content-Length / Transfer-Encoding, a malformed chunk) from its
protocol handler, before any middleware runs, with a text/plain 400. aiohttp has no hook for that
response other than ``RequestHandler.handle_error``, and no option to choose the handler class:
``ProblemServer`` makes the handlers, ``ProblemAppRunner`` makes the server, and ``run`` replaces
``web.run_app``. The errors render as NGSI-LD ProblemDetails (400 InvalidRequest; 431-ish
oversize headers stay 400, since aiohttp reports them with status 400), and the connection is
closed after them as aiohttp does. Tested against aiohttp 3.14 (pinned).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from city_os.errors import InternalError, InvalidRequest, NgsiLdError, PayloadTooLarge

_PROBLEM = "application/json"


def protocol_problem(status: int, exc: BaseException | None, message: str | None) -> NgsiLdError:
    """The ProblemDetails for an error aiohttp's protocol handler answers itself."""
    if status >= 500:
        return InternalError("internal error; see the broker log")
    reason = message or (exc.message if isinstance(exc, HttpProcessingError) else None)
    detail = f"the HTTP request is malformed: {reason or 'cannot be parsed'}"
    if status == 413:
        return PayloadTooLarge(detail)
    return InvalidRequest(" ".join(detail.split())[:500])


class ProblemRequestHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if isinstance(exc, HttpProcessingError):  # the client's fault: no stack trace in the log
            self.log_debug("Malformed request from %s: %s", request.remote, exc)
        else:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
        if request.writer.output_size > 0:
            raise ConnectionError("Response is sent already, cannot send another response")
        problem = protocol_problem(status, exc, message)
        response = web.Response(
            body=orjson.dumps(problem.problem()), status=problem.status, content_type=_PROBLEM
        )
        response.force_close()
        return response


class ProblemServer(web.Server):
    def __call__(self) -> RequestHandler:
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class ProblemAppRunner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return ProblemServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=plain._loop,
            **plain._kwargs,
        )


async def _serve(
    app: web.Application, host: str, port: int, reuse_port: bool, banner: bool
) -> None:
    runner = ProblemAppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if banner:
            print(f"======== Running on http://{host}:{port} ========", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def run(
    app: web.Application, *, host: str, port: int, reuse_port: bool = False, banner: bool = True
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM (``web.run_app`` with ProblemDetails errors)."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(app, host, port, reuse_port, banner))
