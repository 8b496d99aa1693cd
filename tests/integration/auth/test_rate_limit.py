"""Rate limits over HTTP: X-RateLimit-* on every answer, 429 ProblemDetails with Retry-After
once a client's burst is spent, one bucket per client (API key / user / address), probes
exempt, and failed authentications counted against the address."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from city_os.app import create_app
from tests.conftest import test_settings as settings_for
from tests.integration.auth.issuer import LocalIssuer

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
async def limited() -> AsyncIterator[Client]:
    # 3 at once, then one per 100 s: nothing refills during the test
    app = create_app(settings_for(rate_limit=0.01, rate_limit_burst=3))
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_burst_then_429(limited: Client) -> None:
    remaining = []
    for _ in range(3):
        resp = await limited.get("/cityos/v1/me")
        assert resp.status == 200
        assert resp.headers["X-RateLimit-Limit"] == "3"
        remaining.append(resp.headers["X-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    resp = await limited.get("/ngsi-ld/v1/types")
    body = await resp.json()
    assert resp.status == 429
    assert body["type"] == "https://uri.etsi.org/ngsi-ld/errors/TooManyRequests"
    assert "retry in" in body["detail"]
    assert int(resp.headers["Retry-After"]) >= 99
    assert resp.headers["X-RateLimit-Remaining"] == "0"
    assert int(resp.headers["X-RateLimit-Reset"]) > 0
    # probes are not limited
    assert (await limited.get("/health")).status == 200


async def test_errors_carry_the_headers(limited: Client) -> None:
    resp = await limited.get("/ngsi-ld/v1/entities/not-a-uri")
    assert resp.status == 400
    assert resp.headers["X-RateLimit-Remaining"] == "2"


async def test_without_a_limit_there_are_no_headers(client: Client) -> None:
    resp = await client.get("/cityos/v1/me")
    assert resp.status == 200
    assert "X-RateLimit-Limit" not in resp.headers


async def test_one_bucket_per_user_and_bad_tokens_count_against_the_address(
    issuer: LocalIssuer,
) -> None:
    settings = settings_for(
        rate_limit=0.01,
        rate_limit_burst=2,
        auth_enabled=True,
        oidc_issuers=orjson.dumps([issuer.setting()]).decode(),
    )
    async with TestClient(TestServer(create_app(settings))) as c:
        alice = {"Authorization": "Bearer " + issuer.token(sub="alice")}
        bob = {"Authorization": "Bearer " + issuer.token(sub="bob")}
        assert [(await c.get("/cityos/v1/me", headers=alice)).status for _ in range(3)] == [
            200,
            200,
            429,
        ]
        assert (await c.get("/cityos/v1/me", headers=bob)).status == 200
        bad = {"Authorization": "Bearer " + issuer.token(lifetime=-3600)}
        assert [(await c.get("/cityos/v1/me", headers=bad)).status for _ in range(3)] == [
            401,
            401,
            429,
        ]
        # the address is spent now: anonymous requests from it too
        assert (await c.get("/cityos/v1/me")).status == 429
        assert (await c.get("/cityos/v1/me", headers=bob)).status == 200
