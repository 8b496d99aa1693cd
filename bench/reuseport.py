"""One `city-os serve` worker that shares its port with others (SO_REUSEPORT): the kernel spreads
connections over the workers. Used by ``python -m bench --workers N`` to measure what N processes
gain; `city-os serve` does the same with `CITYOS_WORKERS=N` (one process per worker).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import replace

import uvloop
from aiohttp import web

from city_os.app import create_app
from city_os.config import Settings


def main() -> None:
    settings = Settings.from_env()
    if len(sys.argv) > 1 and sys.argv[1] != "0":
        # As `city-os serve` does: only the first worker runs the outbox relay.
        settings = replace(settings, relay_enabled=False)
    logging.basicConfig(level=settings.log_level)
    uvloop.install()
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        reuse_port=True,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
