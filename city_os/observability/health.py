"""Liveness and readiness: what /health and /ready report, independent of HTTP.

Layer: observability/. Readiness checks each component separately so an operator can tell
PostgreSQL trouble from Kafka trouble. PostgreSQL is always required. Kafka is required only in a
relay-only process: an API keeps accepting writes while Kafka is down (they wait in the outbox),
so taking it out of a load balancer then would turn a Kafka outage into an API outage. Likewise
the notifier (its consumer group member) is required only in a notifier-only process.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import asyncpg

from city_os.events.relay import OutboxRelay
from city_os.notifier.service import Notifier

CHECK_TIMEOUT = 2.0  # seconds per component check


@dataclass(frozen=True)
class Component:
    status: str  # up | down | disabled | unknown
    required: bool
    detail: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "required": self.required}
        if self.detail:
            out["detail"] = self.detail
        return out


async def check_postgresql(pool: asyncpg.Pool | None) -> Component:
    if pool is None:
        return Component("down", True, "the connection pool is not open")
    try:
        await asyncio.wait_for(pool.fetchval("SELECT 1"), CHECK_TIMEOUT)
    except Exception as exc:
        return Component("down", True, f"{type(exc).__name__}: {exc}")
    return Component("up", True)


async def check_kafka(relay: OutboxRelay | None, *, required: bool) -> Component:
    if relay is None:
        return Component("disabled", False, "no outbox relay in this process")
    status, detail = await relay.check_kafka(CHECK_TIMEOUT)
    role = "relay active" if relay.active else "relay standby"
    return Component(status, required, detail or role)


def check_notifier(notifier: Notifier | None, *, required: bool) -> Component:
    if notifier is None:
        return Component("disabled", False, "no notifier in this process")
    state, detail = notifier.health()
    return Component(state, required, detail)


async def readiness(
    pool: asyncpg.Pool | None,
    relay: OutboxRelay | None,
    notifier: Notifier | None = None,
    *,
    kafka_required: bool,
    notifier_required: bool = False,
) -> tuple[bool, dict[str, Any]]:
    """(ready, JSON body) — ready when every required component is up."""
    pg, kafka = await asyncio.gather(
        check_postgresql(pool), check_kafka(relay, required=kafka_required)
    )
    components = {
        "postgresql": pg,
        "kafka": kafka,
        "notifier": check_notifier(notifier, required=notifier_required),
    }
    ready = all(c.status == "up" for c in components.values() if c.required)
    body = {
        "status": "ready" if ready else "not ready",
        "components": {name: c.as_json() for name, c in components.items()},
    }
    return ready, body
