"""The two append-only logs of access control on PostgreSQL: the citizens' access log and the
audit log of access changes.

Layer: store/. Both tables are partitioned by month (migration 0007). ``LogPartitions.maintain``
creates the partitions of this month and the next two and drops those wholly older than the
retention, which bounds the logs without a single DELETE; it runs at start-up and daily, and an
insert that finds no partition (a clock far ahead) creates it and retries. Partition names and
bounds come from dates computed here, never from request values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

LOGS = ("access_log", "audit_log")
_PARTITION = re.compile(r"^(access_log|audit_log)_p(\d{4})(\d{2})$")
_NO_PARTITION = "23514"  # check_violation: "no partition of relation … found for row"


def _month(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return (_month(day) + timedelta(days=32)).replace(day=1)


def _partition_ddl(log: str, month: date) -> str:
    name = f"{log}_p{month:%Y%m}"
    return (
        f"CREATE TABLE IF NOT EXISTS cityos.{name} PARTITION OF cityos.{log}"
        f" FOR VALUES FROM ('{month.isoformat()}') TO ('{_next_month(month).isoformat()}')"
    )


class LogPartitions:
    def __init__(self, pool: asyncpg.Pool, retention_days: int) -> None:
        self._pool = pool
        self._retention = timedelta(days=retention_days)

    async def maintain(self, now: datetime | None = None) -> list[str]:
        """Create this month's and the next two months' partitions, drop the expired ones;
        returns the names dropped."""
        now = now or datetime.now(UTC)
        months = [_month(now.date())]
        for _ in range(2):
            months.append(_next_month(months[-1]))
        dropped: list[str] = []
        oldest = (now - self._retention).date()
        async with self._pool.acquire() as conn:
            for log in LOGS:
                for month in months:
                    await conn.execute(_partition_ddl(log, month))
            rows = await conn.fetch(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = ANY($1::regclass[])",
                [f"cityos.{log}" for log in LOGS],
            )
            for row in rows:
                match = _PARTITION.match(row["relname"])
                if match is None:
                    continue
                start = date(int(match.group(2)), int(match.group(3)), 1)
                if _next_month(start) <= oldest:
                    await conn.execute(f"DROP TABLE IF EXISTS cityos.{row['relname']}")
                    dropped.append(row["relname"])
        return dropped


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One read of a citizen's entity by a service."""

    tenant: str
    issuer: str
    subject: str
    client: str
    actor: str
    consent_id: str | None
    entity_id: str
    operation: str  # read, query, notification


_ACCESS_INSERT = """
INSERT INTO cityos.access_log
    (at, tenant, issuer, subject, client, actor, consent_id, entity_id, operation)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::uuid[], $8::text[], $9::text[])
"""


async def record_access(
    conn: asyncpg.Connection, entries: Sequence[AccessEntry], at: datetime | None = None
) -> None:
    """Log reads in one statement (the read path calls it once per request, so a page of a
    query costs one insert however many entities it shows)."""
    if not entries:
        return
    at = at or datetime.now(UTC)
    columns: list[list[Any]] = [
        [e.tenant for e in entries],
        [e.issuer for e in entries],
        [e.subject for e in entries],
        [e.client for e in entries],
        [e.actor for e in entries],
        [e.consent_id for e in entries],
        [e.entity_id for e in entries],
        [e.operation for e in entries],
    ]
    await _insert_with_partition(conn, "access_log", at, _ACCESS_INSERT, at, *columns)


async def audit(
    conn: asyncpg.Connection,
    tenant: str,
    actor: str,
    action: str,
    resource: str,
    detail: dict[str, Any],
) -> None:
    """Record one change of access (call it in the change's transaction)."""
    at = datetime.now(UTC)
    await _insert_with_partition(
        conn,
        "audit_log",
        at,
        "INSERT INTO cityos.audit_log (at, tenant, actor, action, resource, detail)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        at,
        tenant,
        actor,
        action,
        resource,
        detail,
    )


# (log, month) partitions this process made sure of. The current and the next months are never
# dropped (retention is months long), so once ensured a month stays.
_ENSURED: set[tuple[str, date]] = set()


async def ensure_partition(conn: asyncpg.Connection, log: str, at: datetime) -> None:
    """Make sure the month of ``at`` has its partition, so an insert into it needs no savepoint
    (a statement inside someone else's transaction: the creator's grant)."""
    month = _month(at.date())
    if (log, month) in _ENSURED:
        return
    await conn.execute(_partition_ddl(log, month))
    _ENSURED.add((log, month))


async def _insert_with_partition(
    conn: asyncpg.Connection, log: str, at: datetime, sql: str, *args: Any
) -> None:
    # A savepoint, so that a missing partition does not abort the caller's transaction.
    try:
        async with conn.transaction():
            await conn.execute(sql, *args)
    except asyncpg.PostgresError as exc:
        if exc.sqlstate != _NO_PARTITION:
            raise
        await conn.execute(_partition_ddl(log, _month(at.date())))
        await conn.execute(sql, *args)


async def access_log(
    pool: asyncpg.Pool, tenant: str, issuer: str, subject: str, limit: int, offset: int
) -> list[dict[str, Any]]:
    """A citizen's access log, newest first."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT at, client, actor, consent_id, entity_id, operation FROM cityos.access_log"
            " WHERE tenant = $1 AND issuer = $2 AND subject = $3"
            " ORDER BY at DESC, entity_id LIMIT $4 OFFSET $5",
            tenant,
            issuer,
            subject,
            limit,
            offset,
        )
    return [
        {
            "at": r["at"].isoformat().replace("+00:00", "Z"),
            "client": r["client"],
            "actor": r["actor"],
            "consent": str(r["consent_id"]) if r["consent_id"] is not None else None,
            "entityId": r["entity_id"],
            "operation": r["operation"],
        }
        for r in rows
    ]


_AUDIT_INSERT = """
INSERT INTO cityos.audit_log (at, tenant, actor, action, resource, detail)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[])
"""


async def audit_many(
    conn: asyncpg.Connection,
    entries: Sequence[tuple[str, str, str, str, dict[str, Any]]],
    at: datetime | None = None,
) -> None:
    """Record several audit entries ``(tenant, actor, action, resource, detail)`` in one
    statement (the creator's grants of a batch, a flush of refused decisions)."""
    if not entries:
        return
    at = at or datetime.now(UTC)
    columns = [list(column) for column in zip(*entries, strict=True)]
    await _insert_with_partition(conn, "audit_log", at, _AUDIT_INSERT, at, *columns)


async def audit_entries(
    pool: asyncpg.Pool,
    tenant: str,
    *,
    action: str | None,
    actor: str | None,
    resource: str | None,
    since: datetime | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    """A tenant's audit log, newest first; ``action`` ending in ``.`` matches a family
    (``access.``, ``permission.``)."""
    family = action is not None and action.endswith(".")
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT at, actor, action, resource, detail FROM cityos.audit_log"
            " WHERE tenant = $1"
            " AND ($2::text IS NULL OR (CASE WHEN $3 THEN starts_with(action, $2)"
            " ELSE action = $2 END))"
            " AND ($4::text IS NULL OR actor = $4)"
            " AND ($5::text IS NULL OR resource = $5)"
            " AND ($6::timestamptz IS NULL OR at >= $6)"
            " ORDER BY at DESC, action, resource LIMIT $7 OFFSET $8",
            tenant,
            action,
            family,
            actor,
            resource,
            since,
            limit,
            offset,
        )
    return [
        {
            "at": r["at"].isoformat().replace("+00:00", "Z"),
            "actor": r["actor"],
            "action": r["action"],
            "resource": r["resource"],
            "detail": r["detail"],
        }
        for r in rows
    ]
