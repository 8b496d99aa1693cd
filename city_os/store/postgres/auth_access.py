"""What an access decision needs to know of stored entities, and the creator's ``own`` grant.

Layer: store/. ``grants`` reads, for some entity ids, their data subjects and the entity
permissions targeting them (primary-key and ``permissions_entity`` index lookups, one round
trip); ``OwnerGrant`` and ``owner_grant_sql`` make the entity insert statement itself write
the ``own`` entity permission of an entity's creator and its audit-log row
(``permission.created``, ``automatic``), so an entity is never stored without it and a create
costs no statement more with access control than without.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from city_os.auth.policy import Action, Permission
from city_os.store.postgres.auth_log import ensure_partition
from city_os.store.postgres.auth_permissions import _COLUMNS, _permission
from city_os.store.postgres.query_sql import check_identifier


@dataclass
class Grants:
    """Data subjects and entity permissions of some entities (absent ids have neither)."""

    subjects: dict[str, tuple[str, str]] = field(default_factory=dict)
    permissions: dict[str, list[Permission]] = field(default_factory=dict)


async def grants(pool: asyncpg.Pool, schema: str, ids: Sequence[str]) -> Grants:
    s = check_identifier(schema)
    found = Grants()
    if not ids:
        return found
    async with pool.acquire() as conn:
        subjects = await conn.fetch(
            f"SELECT entity_id, issuer, subject FROM {s}.data_subjects"
            " WHERE entity_id = ANY($1::text[])",
            list(ids),
        )
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM {s}.permissions WHERE entity_id = ANY($1::text[])",
            list(ids),
        )
    for r in subjects:
        found.subjects[r["entity_id"]] = (r["issuer"], r["subject"])
    for r in rows:
        found.permissions.setdefault(r["entity_id"], []).append(_permission(r))
    return found


@dataclass(frozen=True)
class OwnerGrant:
    """The creator's ``own`` on every entity a create statement inserts, for ``assignee``,
    audited as ``actor`` in ``tenant``: the insert statement writes both itself
    (``owner_grant_sql``), so a create with access control stays one statement — no
    transaction, no extra round trip — however many entities it inserts."""

    tenant: str
    assignee: str
    actor: str

    async def args(self, conn: asyncpg.Connection) -> list[Any]:
        """The statement's parameters of ``owner_grant_sql``; ensures the audit log has the
        month's partition first (once per process and month: no savepoint in the statement)."""
        at = datetime.now(UTC)
        await ensure_partition(conn, "audit_log", at)
        return [self.assignee, self.actor, at, self.tenant]


def owner_grant_sql(schema: str, inserted: str, first: int) -> str:
    """CTEs (each starting with ``, ``) that give ``own`` on each id of the CTE ``inserted``
    and record each grant in the audit log (``permission.created``, ``automatic``); their
    parameters are ``OwnerGrant.args``, from ``$first`` on."""
    s = check_identifier(schema)
    assignee, actor, at, tenant = (f"${first + i}" for i in range(4))
    return f"""
, own AS (
  INSERT INTO {s}.permissions (id, assignee, action, entity_id, created_by)
  SELECT 'urn:cityos:Permission:' || md5(random()::text || i.id), {assignee}::text,
         {int(Action.OWN)}, i.id, {actor}::text
  FROM {inserted} i
  RETURNING id, entity_id
), own_audit AS (
  INSERT INTO cityos.audit_log (at, tenant, actor, action, resource, detail)
  SELECT {at}::timestamptz, {tenant}::text, {actor}::text, 'permission.created', own.id,
         jsonb_build_object('assignee', {assignee}::text, 'action', 'own',
                            'entityId', own.entity_id, 'types', NULL, 'scopes', NULL,
                            'automatic', true)
  FROM own
)"""
