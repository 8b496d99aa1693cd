"""Fixtures of the notifier tests: a receiver of the test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.notifier.support import Receiver


@pytest.fixture
async def sink() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()
