"""scripts/kafka-dev.sh supervises Tansu: killed with SIGKILL, it is back on its port within
seconds (``make run`` survives a Tansu crash); ``stop`` ends the supervisor and the broker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

from city_os.devstack import _port_open, free_port

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kafka-dev.sh"
TIMEOUT = 30.0


def script(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=60
    )


def alive(pid: int) -> bool:
    """Running (a zombie left for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_a_killed_tansu_is_restarted_and_stop_ends_both(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "CITYOS_KAFKA_BOOTSTRAP"}
    env.update(CITYOS_DEV_KAFKA_PORT=str(port), CITYOS_DEV_RUN_DIR=str(tmp_path))
    started = script("start", env)
    assert started.returncode == 0, started.stderr
    pidfile = tmp_path / "tansu.pid"
    supervisor = int((tmp_path / "tansu-supervisor.pid").read_text())
    try:
        first = int(pidfile.read_text())
        assert await _port_open(port)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert time.monotonic() < deadline, "Tansu was not restarted"
            now = int(pidfile.read_text() or 0)
            if now != first and await _port_open(port):
                break
            await asyncio.sleep(0.1)
        status = script("status", env)
        assert status.returncode == 0 and f"pid {now}" in status.stdout
        assert "supervised" in status.stdout
    finally:
        stopped = script("stop", env)
    assert stopped.returncode == 0, stopped.stderr
    assert not await _port_open(port)
    assert not alive(supervisor) and not alive(now)
    assert script("status", env).returncode == 3
