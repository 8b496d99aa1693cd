"""The ``city-os`` command: serve the platform, apply migrations, load sample data."""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
from dataclasses import replace

from city_os.api import server
from city_os.app import create_app, create_notifier_app, create_relay_app
from city_os.config import Settings
from city_os.registry import cli as registry_cli
from city_os.temporal import cli as temporal_cli


async def _migrate(settings: Settings) -> None:
    from city_os.store.postgres.db import create_pool, migrate

    pool = await create_pool(settings.database_url, 1, 1)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
    finally:
        await pool.close()


def _worker(settings: Settings) -> None:
    """One API process; with several, they share the port through SO_REUSEPORT."""
    import uvloop

    uvloop.install()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    server.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        reuse_port=settings.workers > 1,
        banner=settings.workers <= 1,
    )


def _serve(settings: Settings) -> None:
    """Run ``settings.workers`` API processes: one Python process uses one core, and the kernel
    spreads connections over processes bound to the same port. Only the first runs the outbox
    relay and the notifier (relays take turns anyway; one is enough)."""
    if settings.workers <= 1:
        _worker(settings)
        return
    ctx = multiprocessing.get_context("spawn")
    others = [
        ctx.Process(
            target=_worker,
            args=(replace(settings, relay_enabled=False, notifier_enabled=False),),
            daemon=True,
        )
        for _ in range(settings.workers - 1)
    ]
    for proc in others:
        proc.start()
    logging.getLogger("city_os").info(
        "serving on http://%s:%s with %d worker processes",
        settings.host,
        settings.port,
        settings.workers,
    )
    try:
        _worker(settings)
    finally:
        for proc in others:
            proc.terminate()
        for proc in others:
            proc.join(timeout=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="city-os", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the NGSI-LD API with its background workers")
    sub.add_parser("api", help="run the NGSI-LD API without the outbox relay")
    sub.add_parser("relay", help="run the outbox relay alone (/metrics, /health, /ready on PORT)")
    sub.add_parser(
        "notifier", help="run a notifier replica alone (/metrics, /health, /ready on PORT)"
    )
    sub.add_parser("migrate", help="create or upgrade the database objects")
    registry_cli.add_commands(sub)  # schemas list|load|validate, load-sample
    temporal_cli.add_commands(sub)  # temporal-settings, temporal-maintain
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command in {"serve", "api", "relay", "notifier"}:
        import uvloop

        uvloop.install()
        if args.command in {"relay", "notifier"}:
            if not settings.kafka_bootstrap:
                raise SystemExit(f"city-os {args.command} needs CITYOS_KAFKA_BOOTSTRAP")
            if args.command == "relay":
                app = create_relay_app(replace(settings, relay_enabled=True))
            else:
                app = create_notifier_app(replace(settings, notifier_enabled=True))
            server.run(app, host=settings.host, port=settings.port)
        else:
            serve = args.command == "serve"
            workers = settings.workers or os.cpu_count() or 1
            _serve(
                replace(
                    settings,
                    relay_enabled=serve and settings.relay_enabled,
                    notifier_enabled=serve and settings.notifier_enabled,
                    workers=workers,
                )
            )
    elif args.command == "migrate":
        asyncio.run(_migrate(settings))
    elif args.command in registry_cli.COMMANDS:
        raise SystemExit(registry_cli.run(args, settings))
    elif args.command in temporal_cli.COMMANDS:
        raise SystemExit(temporal_cli.run(args, settings))


if __name__ == "__main__":
    main()
