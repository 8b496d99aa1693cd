"""Fixtures of the access-control tests: a local OIDC issuer and an app that trusts it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.auth.issuer import LocalIssuer


@pytest.fixture
async def issuer() -> AsyncIterator[LocalIssuer]:
    idp = LocalIssuer()
    await idp.start()
    yield idp
    await idp.close()
