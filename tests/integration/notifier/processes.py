"""Real ``city-os notifier`` processes on the test database, for the replica tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

import aiohttp

from city_os.devstack import free_port
from tests.conftest import TEST_DSN
from tests.integration.events.support import poll

TIMEOUT = 180.0  # a replica starting on a loaded 2-core machine took 55 s (load1 15)


@dataclass
class NotifierProcess:
    port: int
    process: asyncio.subprocess.Process
    log: Any  # the file its output goes to

    async def status(self) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{self.port}/ready") as resp,
        ):
            body: dict[str, Any] = (await resp.json())["components"]["notifier"]
            return body

    async def counts(self) -> tuple[int, int]:
        """(partitions, subscriptions) as its /ready reports them; (-1, -1) while starting."""
        try:
            detail = (await self.status()).get("detail", "")
        except (aiohttp.ClientError, OSError, KeyError):
            return -1, -1
        parts = detail.replace(",", "").split()
        if len(parts) >= 3 and parts[0].isdigit() and parts[2].isdigit():
            return int(parts[0]), int(parts[2])
        return -1, -1

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.kill()
                await self.process.wait()
        self.log.close()

    def output(self) -> str:
        self.log.flush()
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()


async def start_notifier(bootstrap: str, topic: str, group: str, **env: str) -> NotifierProcess:
    port = free_port()
    settings = {
        "CITYOS_DATABASE_URL": TEST_DSN,
        "CITYOS_KAFKA_BOOTSTRAP": bootstrap,
        "CITYOS_KAFKA_TOPIC": topic,
        "CITYOS_NOTIFIER_GROUP_ID": group,
        "CITYOS_PORT": str(port),
        "CITYOS_NOTIFIER_LEASE": "2",
        "CITYOS_OUTBOUND_ALLOW": "loopback",  # the receivers of the tests
        "CITYOS_DB_POOL_MIN": "1",
        "CITYOS_DB_POOL_MAX": "4",
        **env,
    }
    log = tempfile.NamedTemporaryFile("w+", prefix="notifier-", suffix=".log", delete=False)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "city_os", "notifier",
        env={**os.environ, **settings},
        stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return NotifierProcess(port, process, log)


async def all_ready(replicas: list[NotifierProcess], partitions: int, subscriptions: int) -> None:
    """Wait until the replicas share all ``partitions`` and each indexes ``subscriptions``."""

    async def ready() -> bool:
        counts = [await r.counts() for r in replicas]
        return (
            all(p > 0 for p, _ in counts)
            and sum(p for p, _ in counts) == partitions
            and all(s >= subscriptions for _, s in counts)
        )

    try:
        await poll(ready, TIMEOUT)
    except AssertionError:
        for r in replicas:
            print(r.output()[-3000:])
        raise
