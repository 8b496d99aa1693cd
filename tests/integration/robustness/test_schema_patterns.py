"""A data steward's regular expressions cannot stall the broker: patterns run on RE2 (linear
time), and a schema whose patterns a linear-time engine refuses is refused at registration.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.robustness.support import API, check_problem, snapshot

Client = TestClient  # type: ignore[type-arg]
SCHEMAS = "/cityos/v1/schemas"
CTX = {"Probe": "https://example.org/Probe", "code": "https://example.org/code"}


def _hdr(tenant: str) -> dict[str, str]:
    return {"NGSILD-Tenant": tenant, "Content-Type": "application/ld+json"}


async def test_backtracking_pattern_answers_in_linear_time(client: Client, tenant: str) -> None:
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": "^urn:(a+)+$"},
            "code": {"type": "string", "pattern": "(a+)+$"},
        },
        "patternProperties": {"^(x+x+)+y$": {"type": "string"}},
        "additionalProperties": True,
    }
    body = {"type": "Probe", "schema": schema, "activate": True, "@context": CTX}
    resp = await client.post(SCHEMAS, json=body, headers=_hdr(tenant))
    assert resp.status == 201, await resp.text()
    before = await snapshot(tenant)
    evil = "a" * 1800 + "!"
    entity = {"id": "urn:" + evil[-900:], "type": "Probe", "code": evil, "@context": CTX}
    started = time.monotonic()

    async def health_latency() -> float:
        t = time.monotonic()
        assert (await client.get("/health")).status == 200
        return time.monotonic() - t

    create = asyncio.create_task(client.post(f"{API}/entities", json=entity, headers=_hdr(tenant)))
    latency = await health_latency()
    resp = await create
    elapsed = time.monotonic() - started
    problem = await resp.json()
    check_problem(resp.status, problem, 400, "BadRequestData")
    assert "violations" in problem, problem
    assert {v["keyword"] for v in problem["violations"]} >= {"pattern"}, problem
    assert elapsed < 2 and latency < 1, (elapsed, latency)
    assert await snapshot(tenant) == before


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        ({"properties": {"code": {"pattern": "(a)\\1"}}}, "/properties/code/pattern"),
        ({"properties": {"code": {"pattern": "(?=a)a"}}}, "/properties/code/pattern"),
        ({"patternProperties": {"(?<!x)y": {}}}, "/patternProperties/(?<!x)y"),
        (
            {"patternProperties": {"^a": {}}, "unevaluatedProperties": False},
            "unevaluatedProperties",
        ),
    ],
)
async def test_schema_with_unsupported_pattern_is_refused(
    client: Client, tenant: str, schema: dict[str, object], where: str
) -> None:
    body = {"type": "Probe", "schema": {"type": "object", **schema}, "@context": CTX}
    resp = await client.post(SCHEMAS, json=body, headers=_hdr(tenant))
    problem = await resp.json()
    check_problem(resp.status, problem, 400, "BadRequestData")
    assert where in problem["detail"], problem
    listed = await client.get(SCHEMAS, headers={"NGSILD-Tenant": tenant})
    assert await listed.json() == []
