"""Fixtures of the access-control tests: a local OIDC issuer, an app that trusts it and a
notification receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from city_os.app import create_app
from tests.conftest import test_settings as settings_for
from tests.integration.auth.issuer import LocalIssuer
from tests.integration.notifier.support import Receiver

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
async def citizens() -> AsyncIterator[LocalIssuer]:
    """The citizens' IdP (where the My Number Card login happens)."""
    idp = LocalIssuer(realm="citizens")
    await idp.start()
    yield idp
    await idp.close()


@pytest.fixture
async def secured(issuer: LocalIssuer, citizens: LocalIssuer) -> AsyncIterator[Client]:
    """An app with authentication on, trusting ``issuer`` (staff and services, roles in the
    ``roles`` claim) and ``citizens`` for every tenant."""
    issuers = [issuer.setting(), citizens.setting(citizens=True)]
    settings = settings_for(auth_enabled=True, oidc_issuers=orjson.dumps(issuers).decode())
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c


@pytest.fixture
async def sink() -> AsyncIterator[Receiver]:
    """A real HTTP receiver of notifications."""
    r = await Receiver().start()
    yield r
    await r.stop()


def as_user(issuer: LocalIssuer, tenant: str, *roles: str, **claims: object) -> dict[str, str]:
    """Headers of a request by a staff user with ``roles`` in ``tenant``."""
    token = issuer.token(roles=[f"{r}@{tenant}" for r in roles], **claims)
    return {"Authorization": f"Bearer {token}", "NGSILD-Tenant": tenant}
