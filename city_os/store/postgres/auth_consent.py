"""Citizens' consents (``cityos.consents``) and the data subjects of personal entities (each
tenant's ``data_subjects``), on PostgreSQL.

Layer: store/. Every change runs in one transaction with its audit-log row; consent changes also
NOTIFY ``cityos_consents`` (payload ``{"tenant", "client"}``) so that a process holding consent
state (the notifier, phase 2) re-checks that service's subscriptions at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson

from city_os.auth.policy import Consent
from city_os.ngsild.representation import EntityRecord
from city_os.store.postgres.auth_log import audit
from city_os.store.postgres.entities import _COLUMNS as ENTITY_COLUMNS
from city_os.store.postgres.entities import _record
from city_os.store.postgres.query_sql import check_identifier

CHANNEL = "cityos_consents"
_COLUMNS = "id, tenant, issuer, subject, client, types, purpose, created_at, expires_at, revoked_at"


@dataclass(frozen=True, slots=True)
class StoredConsent:
    id: str
    tenant: str
    issuer: str
    subject: str
    client: str
    types: tuple[str, ...]
    purpose: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    @property
    def consent(self) -> Consent:
        """The decision point's view of it."""
        return Consent(
            self.id,
            self.issuer,
            self.subject,
            self.client,
            frozenset(self.types),
            self.expires_at.timestamp(),
            self.revoked_at is not None,
        )


def _consent(row: asyncpg.Record) -> StoredConsent:
    return StoredConsent(
        id=str(row["id"]),
        tenant=row["tenant"],
        issuer=row["issuer"],
        subject=row["subject"],
        client=row["client"],
        types=tuple(row["types"]),
        purpose=row["purpose"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


def _uuid(consent_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(consent_id)
    except ValueError:
        return None


class ConsentRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def grant(
        self,
        tenant: str,
        citizen: tuple[str, str],
        client: str,
        types: Sequence[str],
        purpose: str,
        expires_at: datetime,
        actor: str,
    ) -> StoredConsent:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "INSERT INTO cityos.consents"
                " (id, tenant, issuer, subject, client, types, purpose, expires_at)"
                f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_COLUMNS}",
                uuid.uuid4(),
                tenant,
                *citizen,
                client,
                list(types),
                purpose,
                expires_at,
            )
            stored = _consent(row)
            detail = {"client": client, "types": list(types), "expiresAt": expires_at.isoformat()}
            await audit(conn, tenant, actor, "consent.granted", stored.id, detail)
            await self._notify(conn, tenant, client)
        return stored

    async def revoke(
        self, tenant: str, citizen: tuple[str, str], consent_id: str, actor: str
    ) -> StoredConsent | None:
        """Revoke one of the citizen's consents (idempotent); None if they have no such one."""
        key = _uuid(consent_id)
        if key is None:
            return None
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE cityos.consents SET revoked_at = coalesce(revoked_at, now())"
                " WHERE id = $1 AND tenant = $2 AND issuer = $3 AND subject = $4"
                f" RETURNING {_COLUMNS}",
                key,
                tenant,
                *citizen,
            )
            if row is None:
                return None
            stored = _consent(row)
            await audit(
                conn, tenant, actor, "consent.revoked", stored.id, {"client": stored.client}
            )
            await self._notify(conn, tenant, stored.client)
        return stored

    @staticmethod
    async def _notify(conn: asyncpg.Connection, tenant: str, client: str) -> None:
        payload = orjson.dumps({"tenant": tenant, "client": client}).decode()
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)

    async def of_citizen(self, tenant: str, citizen: tuple[str, str]) -> list[StoredConsent]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM cityos.consents"
                " WHERE tenant = $1 AND issuer = $2 AND subject = $3 ORDER BY created_at, id",
                tenant,
                *citizen,
            )
        return [_consent(r) for r in rows]

    async def get(
        self, tenant: str, citizen: tuple[str, str], consent_id: str
    ) -> StoredConsent | None:
        key = _uuid(consent_id)
        if key is None:
            return None
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM cityos.consents"
                " WHERE id = $1 AND tenant = $2 AND issuer = $3 AND subject = $4",
                key,
                tenant,
                *citizen,
            )
        return _consent(row) if row is not None else None

    async def valid_for(
        self, tenant: str, client: str, citizens: Sequence[tuple[str, str]]
    ) -> list[Consent]:
        """Valid consents that these citizens gave this service (the read path, phase 2)."""
        if not citizens:
            return []
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM cityos.consents c"
                " JOIN unnest($3::text[], $4::text[]) AS s(issuer, subject)"
                " USING (issuer, subject)"
                " WHERE c.tenant = $1 AND c.client = $2 AND c.revoked_at IS NULL"
                " AND c.expires_at > now()",
                tenant,
                client,
                [c[0] for c in citizens],
                [c[1] for c in citizens],
            )
        return [_consent(r).consent for r in rows]


class DataSubjectRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def put(
        self, schema: str, tenant: str, entity_id: str, citizen: tuple[str, str], actor: str
    ) -> bool:
        """Name the entity's data subject; False if the entity does not exist."""
        s = check_identifier(schema)
        async with self._pool.acquire() as conn, conn.transaction():
            # FOR SHARE: a concurrent delete cannot slip between the check and the insert
            # (its trigger would then miss the new row).
            exists = await conn.fetchval(
                f"SELECT true FROM {s}.entities WHERE id = $1 FOR SHARE", entity_id
            )
            if not exists:
                return False
            await conn.execute(
                f"INSERT INTO {s}.data_subjects (entity_id, issuer, subject, created_by)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (entity_id) DO UPDATE"
                " SET issuer = EXCLUDED.issuer, subject = EXCLUDED.subject,"
                " created_by = EXCLUDED.created_by, created_at = now()",
                entity_id,
                *citizen,
                actor,
            )
            detail = {"issuer": citizen[0], "subject": citizen[1]}
            await audit(conn, tenant, actor, "dataSubject.set", entity_id, detail)
        return True

    async def get(self, schema: str, entity_id: str) -> tuple[str, str] | None:
        s = check_identifier(schema)
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT issuer, subject FROM {s}.data_subjects WHERE entity_id = $1", entity_id
            )
        return (row["issuer"], row["subject"]) if row is not None else None

    async def delete(self, schema: str, tenant: str, entity_id: str, actor: str) -> bool:
        s = check_identifier(schema)
        async with self._pool.acquire() as conn, conn.transaction():
            gone = await conn.fetchval(
                f"DELETE FROM {s}.data_subjects WHERE entity_id = $1 RETURNING true", entity_id
            )
            if gone:
                await audit(conn, tenant, actor, "dataSubject.removed", entity_id, {})
        return bool(gone)

    async def entities_of(
        self, schema: str, citizen: tuple[str, str], limit: int, offset: int
    ) -> list[EntityRecord]:
        """The live entities a citizen is the data subject of, in id order."""
        s = check_identifier(schema)
        columns = ", ".join(f"e.{c.strip()}" for c in ENTITY_COLUMNS.split(","))
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {columns} FROM {s}.data_subjects d JOIN {s}.entities e"
                " ON e.id = d.entity_id WHERE d.issuer = $1 AND d.subject = $2"
                " AND (e.expires_at IS NULL OR e.expires_at > now())"
                " ORDER BY e.id LIMIT $3 OFFSET $4",
                *citizen,
                limit,
                offset,
            )
        return [_record(r).record for r in rows]
