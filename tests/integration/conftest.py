"""Fixtures shared by the integration areas: a local OIDC issuer (access control, and the
federation tests that run a broker with authentication on)."""

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
