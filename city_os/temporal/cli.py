"""``city-os temporal-settings`` and ``city-os temporal-maintain``: per-tenant history settings.

Layer: temporal/ (command line; the same repository calls the API process makes).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from city_os.config import Settings
from city_os.store.postgres.db import Tenants, create_pool, migrate
from city_os.store.postgres.temporal import TemporalRepository
from city_os.temporal.lifecycle import maintain_once
from city_os.temporal.service import TemporalService

COMMANDS = ("temporal-settings", "temporal-maintain")


def add_commands(sub: Any) -> None:
    p = sub.add_parser("temporal-settings", help="history capture and retention of a tenant")
    p.add_argument("tenant", help="NGSILD-Tenant ('' = the default tenant)")
    p.add_argument("--capture", choices=("on", "off"), default="on")
    p.add_argument("--retention-days", type=int, default=None, help="omit: keep forever")
    sub.add_parser("temporal-maintain", help="create partitions ahead, drop those past retention")


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    pool = await create_pool(settings.database_url, 1, 2)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        repo = TemporalRepository(pool)
        tenants = Tenants(pool)
        if args.command == "temporal-settings":
            if args.retention_days is not None and args.retention_days < 1:
                print("--retention-days must be 1 or more")
                return 2
            schema = await tenants.schema(args.tenant, create=True)
            await repo.configure(
                args.tenant,
                schema,
                capture=args.capture == "on",
                retention_days=args.retention_days,
            )
        else:
            dropped = await maintain_once(TemporalService(repo, tenants, 0))
            print(f"{dropped} partitions dropped")
    finally:
        await pool.close()
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))
