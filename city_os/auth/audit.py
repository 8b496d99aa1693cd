"""The audit trail of access control: refused decisions, and the tenant admins' view of it.

Layer: auth/ (service over ``store/postgres/auth_log.py``). What the audit log holds
(``cityos.audit_log``, docs/access-control.md "Audit"):

* every change of access, written in the change's transaction by its store: permissions
  (``permission.created`` / ``.deleted``, the creator's automatic ``own`` grant included, with
  ``automatic: true``), API keys, consents (``consent.granted`` / ``.revoked``), data subjects;
* every **refused decision** (``access.refused``): a 401 (no or bad credentials), a 403 (a
  valid caller without the right) and a 404 that access control chose (an entity that exists
  but is unreadable to the caller), with the caller, the route or entity and the reason.

Refusals come from requests anyone can send, so they are not written on the request path:
``RefusalTrail`` keeps them in a bounded buffer and a background task writes each batch with one
statement. A flood of refused requests thus costs one insert per second, not one per request;
past ``capacity`` buffered entries the newest are counted, not kept, and the count is recorded
as one ``access.refusalsDropped`` entry. ``AuditService.entries`` is the tenant admins' query.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import datetime
from typing import Any

import asyncpg

from city_os.auth.policy import TenantOperation, may
from city_os.auth.principal import Principal
from city_os.errors import AccessDenied, Unauthorized
from city_os.store.postgres.auth_log import audit_entries, audit_many

log = logging.getLogger("city_os.access")
REFUSED = "access.refused"
DROPPED = "access.refusalsDropped"
FLUSH_INTERVAL = 1.0  # seconds between two writes of buffered refusals

Entry = tuple[str, str, str, str, dict[str, Any]]  # tenant, actor, action, resource, detail


class RefusalTrail:
    def __init__(self, pool: asyncpg.Pool, capacity: int = 10_000) -> None:
        self._pool = pool
        self._capacity = capacity
        self._buffer: deque[Entry] = deque()
        self._dropped: dict[str, int] = {}  # tenant → refusals not kept

    def refused(
        self,
        principal: Principal,
        tenant: str,
        resource: str,
        status: int,
        reason: str,
        **extra: Any,
    ) -> None:
        """Note one refused decision (written by the next flush)."""
        if len(self._buffer) >= self._capacity:
            self._dropped[tenant] = self._dropped.get(tenant, 0) + 1
            return
        detail = {"status": status, "reason": reason, **extra}
        self._buffer.append((tenant, principal.actor["cityosactor"], REFUSED, resource, detail))

    async def flush(self) -> int:
        """Write what is buffered; returns the number of entries written."""
        entries = list(self._buffer)
        self._buffer.clear()
        dropped, self._dropped = self._dropped, {}
        entries += [(t, "city-os", DROPPED, "-", {"count": n}) for t, n in dropped.items()]
        if not entries:
            return 0
        async with self._pool.acquire() as conn:
            await audit_many(conn, entries)
        return len(entries)

    async def run(self, interval: float = FLUSH_INTERVAL) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("writing refused decisions to the audit log failed")

    async def close(self) -> None:
        await self.flush()


class AuditService:
    def __init__(self, pool: asyncpg.Pool, trail: RefusalTrail) -> None:
        self._pool = pool
        self.trail = trail

    async def entries(
        self,
        principal: Principal,
        tenant: str,
        *,
        action: str | None = None,
        actor: str | None = None,
        resource: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """The tenant's audit log, newest first: tenant admins only (401 anonymous)."""
        decision = may(principal, tenant, TenantOperation.MANAGE_ACCESS)
        if not decision:
            if principal.anonymous:
                raise Unauthorized(f"sign in first: {decision.reason}", error=None)
            raise AccessDenied(decision.reason)
        await self.trail.flush()  # what was refused until now is in the answer
        return await audit_entries(
            self._pool,
            tenant,
            action=action,
            actor=actor,
            resource=resource,
            since=since,
            limit=limit,
            offset=offset,
        )
