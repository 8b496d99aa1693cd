"""Validation cost (issue "Schema registry"): create throughput with a JSON Schema off and on.

Layer: bench/. In its own tenant, the bundled Smart Data Models ``WeatherObserved`` schema
(``schemas/WeatherObserved/schema.json``, with ``$ref``s into ``schemas/common``) is registered
through ``POST /cityos/v1/schemas`` without an @context (the entities are sent without one too, so
their terms are the schema's), inactive. The same normalized WeatherObserved entity
(``workload.ENTITY_MODELS``) is created at the same concurrency with the schema inactive, then
active (``PUT …/active``), then it is deactivated again (``DELETE …/active``). Before timing, an
entity without the required ``dateObserved`` must be refused (400) only while the schema is active:
proof that the "on" run validates.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from urllib.parse import quote

import aiohttp
import orjson

from bench.runner import Measured, Runner
from bench.workload import PREFIX, Scenario, entity_id, entity_json

TENANT = "bench-schema"
MODEL = "WeatherObserved"
TARGET = 0.15  # validation may add at most 15 % to the time of a create
SCHEMAS = "/cityos/v1/schemas"
_HEADERS = {"NGSILD-Tenant": TENANT, "Content-Type": "application/json"}


@dataclass
class ValidationResults:
    runs: dict[str, Measured] = field(default_factory=dict)  # "off" | "on"


def _invalid(n: int) -> bytes:
    doc = orjson.loads(entity_json(entity_id("invalid-", n, MODEL), MODEL))
    del doc["dateObserved"]
    return orjson.dumps(doc)


async def _request(
    method: str, port: int, path: str, body: bytes | None = None, tenant: str = TENANT
) -> int:
    headers = {**_HEADERS, "NGSILD-Tenant": tenant}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"http://127.0.0.1:{port}{path}", data=body, headers=headers) as r,
    ):
        if r.status >= 300 and method != "POST":
            raise SystemExit(f"validation: {method} {path}: {r.status} {await r.text()}")
        return r.status


async def _expect_refusal(port: int, active: bool, n: int) -> None:
    status = await _request("POST", port, f"{PREFIX}/entities", _invalid(n))
    if status != (400 if active else 201):
        raise SystemExit(f"validation: invalid entity answered {status} with the schema {active=}")
    valid = entity_json(entity_id("valid-", n, MODEL), MODEL)
    if (status := await _request("POST", port, f"{PREFIX}/entities", valid)) != 201:
        raise SystemExit(f"validation: the bench's {MODEL} answered {status}: it must be valid")


async def register(port: int, tenant: str = TENANT, activate: bool = False) -> None:
    """Register the bundled ``MODEL`` schema in ``tenant`` (active or not)."""
    from city_os.registry.validation import DEFAULT_SCHEMAS_DIR

    schema = json.loads((DEFAULT_SCHEMAS_DIR / MODEL / "schema.json").read_text("utf-8"))
    body = orjson.dumps({"type": MODEL, "schema": schema, "activate": activate})
    status = await _request("POST", port, SCHEMAS, body, tenant)
    if status not in (200, 201):
        raise SystemExit(f"validation: registering the {MODEL} schema answered {status}")


def run(runner: Runner, port: int, pids: list[int]) -> ValidationResults:
    out = ValidationResults()
    active = f"{SCHEMAS}/{quote(MODEL, safe='')}/active"
    asyncio.run(register(port))
    for n, state in enumerate(("off", "on")):
        if state == "on":
            asyncio.run(_request("PUT", port, active, b'{"version": 1}'))
        asyncio.run(_expect_refusal(port, state == "on", n))
        sc = Scenario("create", prefix=f"v{state}-", tenant=TENANT, model=MODEL)
        out.runs[state] = runner.http(port, sc, pids, f"validation-{state}")
    asyncio.run(_request("DELETE", port, active))
    return out


def print_results(res: ValidationResults) -> None:
    off, on = res.runs["off"], res.runs["on"]
    r_off, r_on = off.result.rate(), on.result.rate()

    def server_us(m: Measured) -> float:
        rate = m.result.rate()
        return 1e6 * m.cpu.get("server", 0.0) / rate if rate else 0.0

    cost = r_off / r_on - 1 if r_on else float("inf")  # extra time per create, from throughput
    cpu_off, cpu_on = server_us(off), server_us(on)
    cpu_cost = (cpu_on - cpu_off) / cpu_off if cpu_off else 0.0
    print(
        f"\nValidation cost: POST /entities of one normalized {MODEL} (12 attributes), "
        f"bundled Smart Data Models schema, tenant {TENANT}"
    )
    for state, m in res.runs.items():
        print(
            f"  schema {state:<3} {m.result.rate():>7.0f} creates/s  p50 {m.result.p50_ms:5.1f}  "
            f"p99 {m.result.p99_ms:6.1f} ms  errors {m.result.errors}  server CPU "
            f"{server_us(m):.0f} µs/create  load1 {m.load1:.2f}"
        )
    verdict = "PASS" if cost <= TARGET else "MISS"
    print(
        f"  relative cost: +{100 * cost:.1f} % time per create (throughput), "
        f"+{100 * cpu_cost:.1f} % server CPU per create; target ≤ {100 * TARGET:.0f} %  {verdict}"
    )
