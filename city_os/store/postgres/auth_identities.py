"""The latest verified token of each OIDC user, on PostgreSQL (``cityos.owner_identities``).

Layer: store/. ``record`` upserts what a token says of its user (roles per tenant, groups,
expiry); ``latest`` reads it back for the notifier, which decides a subscription's
notifications with its owner's current roles (``auth/owners.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class Identity:
    key: str
    roles: dict[str, list[str]]  # tenant → roles
    groups: tuple[str, ...]
    token_expires_at: datetime | None
    seen_at: datetime


class IdentityRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(
        self, key: str, roles: dict[str, list[str]], groups: list[str], expires: float | None
    ) -> None:
        until = datetime.fromtimestamp(expires, UTC) if expires is not None else None
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO cityos.owner_identities (key, roles, groups, token_expires_at)"
                " VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (key) DO UPDATE SET roles = excluded.roles,"
                " groups = excluded.groups, token_expires_at = excluded.token_expires_at,"
                " seen_at = now()"
                # an older token verified late (another process, an evicted cache) does not
                # overwrite a newer one: "latest" is by expiry
                " WHERE owner_identities.token_expires_at IS NULL"
                " OR excluded.token_expires_at >= owner_identities.token_expires_at",
                key,
                roles,
                groups,
                until,
            )

    async def latest(self, key: str) -> Identity | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT key, roles, groups, token_expires_at, seen_at"
                " FROM cityos.owner_identities WHERE key = $1",
                key,
            )
        if row is None:
            return None
        return Identity(
            key=row["key"],
            roles=dict(row["roles"]),
            groups=tuple(row["groups"]),
            token_expires_at=row["token_expires_at"],
            seen_at=row["seen_at"],
        )
