"""Start-up rule, on the real ``city-os api`` command: without authentication the broker serves
loopback only (with a warning); on any other address it refuses to start unless
CITYOS_AUTH_INSECURE says a gateway authenticates."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import aiohttp
import pytest

from city_os.auth.authenticate import check_exposure, is_loopback
from city_os.config import Settings
from city_os.devstack import free_port
from tests.conftest import TEST_DSN

START_TIMEOUT = 60.0  # a generous bound: a loaded 2-core machine has taken 25 s to boot the broker


def broker_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYOS_")}
    env.update({"CITYOS_DATABASE_URL": TEST_DSN, "CITYOS_DB_POOL_MIN": "1"})
    env.update(values)
    return env


async def run_broker(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "city_os",
        "api",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_refuses_an_open_address_without_authentication() -> None:
    proc = await run_broker(broker_env(CITYOS_HOST="0.0.0.0", CITYOS_PORT=str(free_port())))
    _, stderr = await asyncio.wait_for(proc.communicate(), START_TIMEOUT)
    assert proc.returncode != 0
    text = stderr.decode()
    assert "refusing to start" in text
    assert "CITYOS_AUTH_INSECURE" in text


@pytest.mark.parametrize(
    "env",
    [
        {"CITYOS_HOST": "127.0.0.1"},
        {"CITYOS_HOST": "0.0.0.0", "CITYOS_AUTH_INSECURE": "true"},
    ],
    ids=["loopback", "insecure-allowed"],
)
async def test_starts_with_a_warning(env: dict[str, str]) -> None:
    port = free_port()
    proc = await run_broker(broker_env(CITYOS_PORT=str(port), **env))
    try:
        deadline = time.monotonic() + START_TIMEOUT
        async with aiohttp.ClientSession() as http:
            while True:
                assert proc.returncode is None, "the broker exited"
                try:
                    async with http.get(f"http://127.0.0.1:{port}/health") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    if time.monotonic() > deadline:
                        pytest.fail("the broker did not start")
                    await asyncio.sleep(0.1)  # poll interval while it boots
    finally:
        proc.terminate()
        _, stderr = await asyncio.wait_for(proc.communicate(), START_TIMEOUT)
    assert "authentication is off" in stderr.decode()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("127.10.0.1", True),
        ("0.0.0.0", False),
        ("", False),
        ("::", False),
        ("10.0.0.5", False),
        ("broker.city.example", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_authentication_on_is_fine_anywhere() -> None:
    assert check_exposure(Settings(host="0.0.0.0", auth_enabled=True)) is None


@pytest.mark.parametrize(
    ("setting", "value"),
    [("oidc_issuers", "[{"), ("outbound_allow", "intranet")],
)
def test_malformed_settings_stop_start_up(setting: str, value: str) -> None:
    from city_os.app import create_app

    with pytest.raises(SystemExit, match=f"CITYOS_{setting.upper()}"):
        create_app(Settings(**{setting: value}))  # type: ignore[arg-type]
