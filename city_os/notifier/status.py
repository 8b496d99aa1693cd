"""Delivery status of subscriptions (``timesSent``, ``lastSuccess``, … §5.2.14), written in batches.

Layer: notifier/. Every attempt is a fact handed to a ``GroupWriter`` (batch.py); each write
adds up what accumulated per subscription and stores it in one statement per tenant
(store/postgres/subscriptions.py ``add_status``): a lone notification's status is stored a
round trip after its answer, and under load the status costs a few statements a second, not one
per notification. ``flush`` writes now (a reader in the same process calls it before reading).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from city_os.errors import NgsiLdError
from city_os.notifier.batch import GroupWriter
from city_os.store.postgres.db import Tenants
from city_os.store.postgres.subscriptions import SubscriptionRepository

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Attempt:
    key: Key
    ok: bool | None  # None: no attempt, only a reason (given up)
    when: datetime
    reason: str | None = None


@dataclass(slots=True)
class _Counts:
    sent: int = 0
    failed: int = 0
    last_notification: datetime | None = None
    last_success: datetime | None = None
    last_failure: datetime | None = None
    reason: str | None = None
    failing: bool = False


def _sums(attempts: list[Attempt]) -> dict[Key, _Counts]:
    out: dict[Key, _Counts] = {}
    for a in attempts:
        c = out.get(a.key)
        if c is None:
            c = out[a.key] = _Counts()
        if a.reason is not None:
            c.reason = a.reason
        if a.ok is None:
            c.failing = True
            continue
        c.sent += 1
        c.last_notification = a.when
        if a.ok:
            c.last_success, c.failing = a.when, False
        else:
            c.failed += 1
            c.last_failure, c.failing = a.when, True
    return out


class StatusRecorder:
    def __init__(
        self, repo: SubscriptionRepository, tenants: Tenants, interval: float = 0.05
    ) -> None:
        self._repo = repo
        self._tenants = tenants
        self._writer = GroupWriter("delivery status", self._write, interval)

    def record(self, key: Key, ok: bool, when: datetime, reason: str | None = None) -> None:
        self._writer.add(Attempt(key, ok, when, reason))

    def gave_up(self, key: Key, when: datetime, reason: str) -> None:
        """A notification failed for good: its reason is kept (no attempt is counted)."""
        self._writer.add(Attempt(key, None, when, reason))

    async def _write(self, attempts: list[Attempt]) -> None:
        by_tenant: dict[str, list[dict[str, object]]] = {}
        for (tenant, sid), c in _sums(attempts).items():
            by_tenant.setdefault(tenant, []).append(
                {
                    "id": sid,
                    "sent": c.sent,
                    "failed": c.failed,
                    "last_notification": c.last_notification,
                    "last_success": c.last_success,
                    "last_failure": c.last_failure,
                    "reason": c.reason,
                    "failing": c.failing,
                }
            )
        for tenant, updates in by_tenant.items():
            try:
                schema = await self._tenants.schema(tenant, create=False)
            except NgsiLdError:
                continue  # the tenant is gone
            await self._repo.add_status(schema, updates)

    async def flush(self) -> None:
        await self._writer.flush()

    async def close(self) -> None:
        await self._writer.close()
