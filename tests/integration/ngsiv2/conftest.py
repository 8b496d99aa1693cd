"""Each NGSIv2 test gets its own Fiware-Service (a test-… tenant, cleaned like the others)."""

from __future__ import annotations

import pytest


@pytest.fixture
def service(tenant: str) -> str:
    return tenant
