"""Support of the subscription tests under access control: a broker trusting both local
issuers (with the notifier running on real Tansu), the subscription, entity and consent bodies
they send, and what a receiver was notified of."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp.test_utils import TestClient

from city_os.devstack import TansuProcess
from tests.integration.auth.issuer import LocalIssuer
from tests.integration.notifier.support import Receiver, broker

Client = TestClient  # type: ignore[type-arg]
SUBS = "/ngsi-ld/v1/subscriptions"
ENTITIES = "/ngsi-ld/v1/entities"


@asynccontextmanager
async def secured_broker(
    tansu: TansuProcess, issuer: LocalIssuer, citizens: LocalIssuer
) -> AsyncIterator[Client]:
    issuers = [issuer.setting(), citizens.setting(citizens=True)]
    async with broker(
        tansu.bootstrap, auth_enabled=True, oidc_issuers=orjson.dumps(issuers).decode()
    ) as client:
        yield client


def subscription(uri: str, kind: str = "Shelter") -> dict[str, Any]:
    return {
        "type": "Subscription",
        "entities": [{"type": kind}],
        "notification": {"endpoint": {"uri": uri}},
    }


def shelter(n: int, **members: Any) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Shelter:{n}",
        "type": "Shelter",
        **members,
        "capacity": {"type": "Property", "value": n},
    }


def notified(sink: Receiver) -> list[str]:
    """The ids of every entity ``sink`` was notified of, sorted."""
    return sorted(e["id"] for r in sink.received for e in r.body["data"])


def citizen(citizens: LocalIssuer, tenant: str, sub: str = "c-1") -> dict[str, str]:
    """Headers of a request by a citizen logged in at ``citizens``."""
    return {"Authorization": f"Bearer {citizens.token(sub=sub)}", "NGSILD-Tenant": tenant}


def consent(client: str, types: list[str], purpose: str, days: int) -> dict[str, Any]:
    """The body of a citizen's consent to ``client`` reading ``types`` for ``days``."""
    return {
        "client": client,
        "types": types,
        "purpose": purpose,
        "expiresAt": (datetime.now(UTC) + timedelta(days=days)).isoformat(),
    }
