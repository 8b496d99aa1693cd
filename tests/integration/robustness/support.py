"""Helpers of the robustness tests: a real ``city-os serve`` subprocess, state snapshots of a
tenant (entities and outbox rows) to prove that a refused request changed nothing, and the
ProblemDetails checks every refusal must pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg

from city_os.devstack import free_port
from city_os.store.postgres.db import schema_name
from tests.conftest import TEST_DSN

API = "/ngsi-ld/v1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
START_TIMEOUT = 40.0


@dataclass
class Broker:
    process: asyncio.subprocess.Process
    url: str
    port: int
    log_path: str
    started_at: float  # time.time() before the process started

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()[-6000:]

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)


@asynccontextmanager
async def serve(**settings: str) -> AsyncIterator[Broker]:
    """``city-os serve`` on a free port of the test database (no Kafka: events stay in the
    outbox), ready when /health answers; killed on exit."""
    port = free_port()
    env = {
        **os.environ,
        "CITYOS_DATABASE_URL": TEST_DSN,
        "CITYOS_PORT": str(port),
        "CITYOS_KAFKA_BOOTSTRAP": "",
        "CITYOS_WORKERS": "1",
        "CITYOS_LOG_LEVEL": "WARNING",
        "CITYOS_OUTBOUND_ALLOW": "loopback",  # the tests' @context servers
        **{f"CITYOS_{k.upper()}": v for k, v in settings.items()},
    }
    log = tempfile.NamedTemporaryFile(prefix="city-os-serve-", suffix=".log", delete=False)
    started = time.time()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "city_os", "serve", env=env, stdout=log, stderr=log
    )
    broker = Broker(process, f"http://127.0.0.1:{port}", port, log.name, started)
    try:
        await _wait_ready(broker)
        yield broker
    finally:
        broker.kill()
        await process.wait()
        log.close()
        os.unlink(log.name)


async def _wait_ready(broker: Broker) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with aiohttp.ClientSession() as http:
        while True:
            assert broker.process.returncode is None, f"city-os serve exited:\n{broker.log()}"
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(broker.url + "/health") as resp:
                    if resp.status == 200:
                        return
            assert time.monotonic() < deadline, f"city-os serve not ready:\n{broker.log()}"
            await asyncio.sleep(0.1)


async def poll(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    """Wait until ``check()`` is true; a timeout fails the test (no fixed sleeps)."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


# -- state of a tenant -------------------------------------------------------------------------


async def snapshot(tenant: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every entity row (with its version) and every outbox row of ``tenant``."""
    conn = await asyncpg.connect(TEST_DSN)
    try:
        schema = schema_name(tenant)
        exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.entities")
        entities = (
            [
                tuple(r)
                for r in await conn.fetch(
                    f"SELECT id, version, attrs::text, types FROM {schema}.entities ORDER BY id"
                )
            ]
            if exists
            else []
        )
        outbox = [
            tuple(r)
            for r in await conn.fetch(
                "SELECT seq, entity_id, event_type FROM cityos.outbox WHERE tenant = $1"
                " ORDER BY seq",
                tenant,
            )
        ]
        return entities, outbox
    finally:
        await conn.close()


def check_problem(status: int, body: Any, expected_status: int, kind: str | None = None) -> None:
    """A refusal: the expected status and a ProblemDetails body naming the problem."""
    assert status == expected_status, body
    assert isinstance(body, dict), body
    assert body["type"].startswith(ERR), body
    if kind is not None:
        assert body["type"] == ERR + kind, body
    assert body["status"] == expected_status
    assert body["title"] and body["detail"], body
