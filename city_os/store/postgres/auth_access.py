"""What an access decision needs to know of stored entities, and the creator's ``own`` grant.

Layer: store/. ``grants`` reads, for some entity ids, their data subjects and the entity
permissions targeting them (primary-key and ``permissions_entity`` index lookups, one round
trip); ``grant_owner`` writes the ``own`` entity permission of an entity's creator on the
connection of the create's statement or transaction, so an entity is never stored without it,
and records each grant in the audit log (``permission.created``, ``automatic``) in the same
transaction — one statement for both, however many entities a batch creates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

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


async def grant_owner(
    conn: asyncpg.Connection,
    schema: str,
    tenant: str,
    ids: Sequence[str],
    assignee: str,
    actor: str,
) -> None:
    """``own`` on each of ``ids`` for ``assignee``, audited (call it in the creating
    transaction)."""
    if not ids:
        return
    s = check_identifier(schema)
    at = datetime.now(UTC)
    await ensure_partition(conn, "audit_log", at)
    # One statement for the grants and their audit entries (no savepoint: the month's
    # partition is ensured above), so the create pays one round trip for both.
    await conn.execute(
        f"WITH g AS (INSERT INTO {s}.permissions (id, assignee, action, entity_id, created_by)"
        " SELECT 'urn:cityos:Permission:' || md5(random()::text || e), $1, $2, e, $3"
        " FROM unnest($4::text[]) AS e RETURNING id, entity_id)"
        " INSERT INTO cityos.audit_log (at, tenant, actor, action, resource, detail)"
        " SELECT $5, $6, $3, 'permission.created', g.id, jsonb_build_object("
        "'assignee', $1::text, 'action', 'own', 'entityId', g.entity_id, 'types', NULL,"
        " 'scopes', NULL, 'automatic', true) FROM g",
        assignee,
        int(Action.OWN),
        actor,
        list(ids),
        at,
        tenant,
    )
