"""Copies of local Subscriptions at context sources (``cityos.distributed_subscriptions``,
0170_distributed_subscriptions.sql).

Layer: store/. Bound parameters only. One row per copy: which local Subscription of which
tenant it stands for, at which registration's source, and the body last sent there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson


@dataclass(frozen=True)
class RemoteCopy:
    remote_id: str  # the copy's id at the source
    tenant: str
    subscription_id: str  # the local Subscription
    registration_id: str
    endpoint: str  # the source's
    source_tenant: str | None  # NGSILD-Tenant at the source
    copy: dict[str, Any]  # the body last sent


_SELECT = (
    "SELECT remote_id, tenant, subscription_id, registration_id, endpoint, source_tenant, copy "
)


class RemoteCopyRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def put(self, row: RemoteCopy) -> None:
        await self._pool.execute(
            "INSERT INTO cityos.distributed_subscriptions "
            "(remote_id, tenant, subscription_id, registration_id, endpoint, source_tenant, copy) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) "
            "ON CONFLICT (remote_id) DO UPDATE SET copy = EXCLUDED.copy",
            row.remote_id,
            row.tenant,
            row.subscription_id,
            row.registration_id,
            row.endpoint,
            row.source_tenant,
            orjson.dumps(row.copy),  # bytes: JSON already (the pool's jsonb codec)
        )

    async def get(self, remote_id: str) -> RemoteCopy | None:
        row = await self._pool.fetchrow(
            _SELECT + "FROM cityos.distributed_subscriptions WHERE remote_id = $1",
            remote_id,
        )
        return None if row is None else _copy(row)

    async def of(self, tenant: str, subscription_id: str) -> list[RemoteCopy]:
        rows = await self._pool.fetch(
            _SELECT
            + "FROM cityos.distributed_subscriptions WHERE tenant = $1 AND subscription_id = $2 "
            "ORDER BY created_at",
            tenant,
            subscription_id,
        )
        return [_copy(r) for r in rows]

    async def remove(self, remote_id: str) -> None:
        await self._pool.execute(
            "DELETE FROM cityos.distributed_subscriptions WHERE remote_id = $1", remote_id
        )


def _copy(row: asyncpg.Record) -> RemoteCopy:
    copy: Any = row["copy"]
    return RemoteCopy(
        row["remote_id"],
        row["tenant"],
        row["subscription_id"],
        row["registration_id"],
        row["endpoint"],
        row["source_tenant"],
        copy,
    )
