"""The stack under test: a fresh bench database, `city-os serve` (or N reuse_port workers) as
subprocesses on a free port, and CPU accounting of every process on the machine.

Layer: bench/. Nothing here measures; it starts, waits (by polling) and stops.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

BIN = Path(sys.executable).parent
# Own name per engineer on a shared machine (another bench run would drop it otherwise).
BENCH_DB = os.environ.get("CITYOS_BENCH_DATABASE", "cityos_bench")


def bench_dsn(base: str, name: str = BENCH_DB) -> str:
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def recreate_database(base: str) -> str:
    """Drop and create the bench database; returns its DSN."""
    conn = await asyncpg.connect(bench_dsn(base, "postgres"))
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {BENCH_DB}")
    finally:
        await conn.close()
    return bench_dsn(base)


async def prepare_raw_table(dsn: str) -> None:
    from bench.ceilings import SETUP

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(SETUP)
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(dsn: str, port: int, pool_max: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CITYOS_DATABASE_URL=dsn,
        CITYOS_HOST="127.0.0.1",
        CITYOS_PORT=str(port),
        CITYOS_KAFKA_BOOTSTRAP="",
        CITYOS_RELAY_ENABLED="false",
        CITYOS_LOG_LEVEL="WARNING",
        CITYOS_DB_POOL_MAX=str(pool_max),
        CITYOS_DB_POOL_MIN=str(min(2, pool_max)),
        # One process per `city-os serve`: the bench starts N reuse_port workers itself, so it
        # can account CPU per process (same effect as CITYOS_WORKERS=N).
        CITYOS_WORKERS="1",
    )
    return env


def migrate(dsn: str) -> None:
    env = server_env(dsn, 0, 1)
    subprocess.run([str(BIN / "city-os"), "migrate"], env=env, check=True)


@dataclass
class Server:
    name: str
    port: int
    procs: list[subprocess.Popen[bytes]]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def uses_uvloop(self) -> bool:
        """True when every server process has uvloop's extension mapped (it ran uvloop.install)."""
        try:
            return all("uvloop" in Path(f"/proc/{pid}/maps").read_text() for pid in self.pids)
        except OSError:
            return False


def wait_http(port: int, path: str, procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    """Poll until ``GET path`` answers (any status), or fail if a process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise SystemExit(f"server process {p.args!r} exited with {p.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                request = f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
                s.sendall(request.encode())
                if s.recv(16).startswith(b"HTTP/1.1"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"nothing answered on port {port} within {timeout:.0f} s")


@contextmanager
def running(
    name: str, commands: list[list[str]], env: dict[str, str], port: int
) -> Iterator[Server]:
    procs = start(commands, env)
    try:
        # Every worker must be up: with reuse_port, poll until each pid has the port bound.
        # generous: start-up takes 20 s and more when the 2 cores are shared with test suites
        wait_http(port, "/ngsi-ld/v1/entities/urn:x:ready", procs, timeout=120)
        if len(procs) > 1:
            time.sleep(1.0)
        yield Server(name, port, procs)
    finally:
        stop(procs)


def start(commands: list[list[str]], env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL) for cmd in commands]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGINT (aiohttp's graceful shutdown), SIGKILL after 10 s; reaps every process."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def api_commands(workers: int) -> list[list[str]]:
    if workers == 1:
        return [[str(BIN / "city-os"), "serve"]]
    return [[sys.executable, "-m", "bench.reuseport", str(i)] for i in range(workers)]


def ceiling_command(kind: str, port: int) -> list[list[str]]:
    return [[sys.executable, "-m", "bench.ceilings", kind, str(port)]]


# ------------------------------------------------------------------------------ CPU accounting

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_snapshot() -> dict[int, tuple[str, float]]:
    """pid -> (command name, CPU seconds used so far) for every process."""
    out: dict[int, tuple[str, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        if comm.startswith("postgres"):
            # A backend's title is "postgres: 15/main: user database ..."; backends of other
            # databases (other users of this machine) are not the bench's, and neither are the
            # server's own processes ("postgres: 15/main: walwriter", checkpointer, …): they
            # serve every database, and on a shared machine counting them made the bench's PG
            # time per write several times too high at low write rates.
            try:
                title = Path(f"/proc/{entry.name}/cmdline").read_text().replace("\0", " ").split()
            except OSError:
                title = []
            if title[:1] == ["postgres:"] and (len(title) < 5 or title[3] != BENCH_DB):
                comm = "other-postgres"
        fields = raw[raw.rindex(")") + 2 :].split()
        out[int(entry.name)] = (comm, (int(fields[11]) + int(fields[12])) / _TICK)
    return out


def cpu_split(
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    seconds: float,
    server_pids: list[int],
    client_pid: int | None,
) -> dict[str, float]:
    """Cores used per role between two snapshots: server, postgres, client, other."""
    split = {"server": 0.0, "postgres": 0.0, "client": 0.0, "other": 0.0}
    for pid, (comm, used) in after.items():
        delta = used - before.get(pid, (comm, 0.0))[1]
        if pid in server_pids:
            role = "server"
        elif pid == client_pid:
            role = "client"
        elif comm.startswith("postgres") or comm.startswith("postmaster"):
            role = "postgres"
        else:
            role = "other"
        split[role] += delta / seconds
    return split


def run_sync(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]
