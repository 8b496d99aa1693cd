"""Snapshot operations (§5.16): create (with the background fill), retrieve, query, update,
clone, delete and purge, and the resolution of the NGSILD-Snapshot header.

Layer: snapshots/ (service, like core/: no aiohttp, no SQL text). The fill runs each query with
the QueryService, so it follows the behaviour of Query Entities (§5.7.2.4) — local entities and
those of matching context sources, merged — page by page, and writes what it found into the
Snapshot's frozen copy. Fills are tasks of this process; one still running when the process
stops leaves its Snapshot ``preparing`` with what it had copied (``close`` cancels them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from city_os.core.query import EntityQuery, Page, QueryService
from city_os.core.request import RequestContext
from city_os.errors import AlreadyExists, BadRequestData, NgsiLdError, ResourceNotFound
from city_os.ngsild.entity import now_iso
from city_os.snapshots.model import (
    DEFAULT_PRIORITY,
    ID_PREFIX,
    PREPARING,
    Doc,
    as_record,
    new_snapshot,
    outcome,
    parse_clone,
    parse_update,
    purge_selection,
    snapshot_id,
)
from city_os.snapshots.store import SnapshotRepository, SnapshotRow, new_schema_name
from city_os.store.postgres.db import Tenants

log = logging.getLogger(__name__)
HIDDEN_TENANT = "\x00snapshot/"  # + schema name: no NGSILD-Tenant header can hold a NUL


@dataclass(frozen=True)
class SnapshotQuery:
    """One item of snapshotQueries, parsed with the create request's @context: the query, and
    the context it runs with (its parameters are forwarded to context sources)."""

    query: EntityQuery
    ctx: RequestContext


@dataclass
class SnapshotService:
    repo: SnapshotRepository
    tenants: Tenants
    queries: QueryService
    page_size: int = 1000
    _fills: set[asyncio.Task[None]] = field(default_factory=set)

    # ---------------------------------------------------------------- create and fill

    async def create(
        self, ctx: RequestContext, body: Doc, queries: list[Doc], parsed: list[SnapshotQuery]
    ) -> str:
        """§5.16.1: store the Snapshot as ``preparing`` and start its fill; its id."""
        sid = snapshot_id(body, ID_PREFIX + str(uuid.uuid4()))
        prio = body.get("snapshotPriority", DEFAULT_PRIORITY)
        doc = new_snapshot(sid, queries, prio, ctx.now)
        row = SnapshotRow(doc=doc, schema=new_schema_name())
        await self.tenants.schema(ctx.tenant, create=True)
        if not await self.repo.insert(ctx.tenant, row):
            raise AlreadyExists(f"Snapshot {sid} already exists")
        self._start(self._fill(ctx.tenant, row, parsed))
        return sid

    def _start(self, job: Any) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._fills.add(task)
        task.add_done_callback(self._fills.discard)

    async def _fill(self, tenant: str, row: SnapshotRow, parsed: list[SnapshotQuery]) -> None:
        details: list[Doc] = []
        for item in parsed:
            details.append(await self._run(row.schema, item))
        members = {
            "snapshotStatus": outcome(details),
            "snapshotQueriesDetails": details,
            "modifiedAt": now_iso(),
        }
        await self.repo.merge(tenant, row.doc["id"], members)

    async def _run(self, schema: str, item: SnapshotQuery) -> Doc:
        """One query, all its pages, into the copy: its SnapshotQueryDetails."""
        ctx = replace(item.ctx, warnings=[])
        count, offset = 0, 0
        try:
            while True:
                page = Page(limit=self.page_size, offset=offset)
                result = await self.queries.query(ctx, item.query, page)
                await self.repo.copy(schema, result.records, ctx.now)
                count += len(result.records)
                offset += self.page_size
                if not result.more or not result.records:
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            detail = exc.detail if isinstance(exc, NgsiLdError) else "internal error"
            if not isinstance(exc, NgsiLdError):
                log.exception("a snapshot query failed")
            return {"resultStatus": "failed", "entityCount": count, "detail": detail}
        out: Doc = {"resultStatus": "success" if count else "empty", "entityCount": count}
        if ctx.warnings:
            out["warnings"] = list(ctx.warnings)
        return out

    async def close(self) -> None:
        for task in list(self._fills):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ---------------------------------------------------------------- the other operations

    async def get(self, tenant: str, sid: str) -> SnapshotRow:
        row = await self.repo.get(tenant, sid)
        if row is None:
            raise ResourceNotFound(f"Snapshot {sid} not found")
        return row

    async def all(self, tenant: str) -> list[Doc]:
        return [row.doc for row in await self.repo.all(tenant)]

    async def update(self, tenant: str, sid: str, body: object) -> Doc:
        """§5.16.4: only snapshotPriority changes; the Snapshot after the change."""
        prio = parse_update(body)
        doc = await self.repo.merge(
            tenant, sid, {"snapshotPriority": prio, "modifiedAt": now_iso()}
        )
        if doc is None:
            raise ResourceNotFound(f"Snapshot {sid} not found")
        return doc

    async def clone(self, tenant: str, sid: str, body: object | None) -> str:
        """§5.16.2: a new Snapshot holding a copy of the frozen data (the queries are not run
        again); it lives on whatever happens to the original."""
        changes = parse_clone(body)
        original = await self.get(tenant, sid)
        if original.doc.get("snapshotStatus") == PREPARING:
            raise BadRequestData(f"Snapshot {sid} is still being prepared; clone it once ready")
        now = now_iso()
        new_id = snapshot_id(changes, ID_PREFIX + str(uuid.uuid4()))
        prio: int = changes.get("snapshotPriority") or original.doc["snapshotPriority"]
        doc = new_snapshot(new_id, original.doc.get("snapshotQueries", []), prio, now)
        row = SnapshotRow(doc=doc, schema=new_schema_name())
        if not await self.repo.insert(tenant, row):
            raise AlreadyExists(f"Snapshot {new_id} already exists")
        self._start(self._copy(tenant, original, row))
        return new_id

    async def _copy(self, tenant: str, original: SnapshotRow, row: SnapshotRow) -> None:
        members: Doc = {"modifiedAt": now_iso()}
        try:
            await self.repo.clone(original.schema, row.schema)
            members["snapshotStatus"] = original.doc.get("snapshotStatus")
            members["snapshotQueriesDetails"] = original.doc.get("snapshotQueriesDetails", [])
        except asyncio.CancelledError:
            raise
        except Exception:
            # The original was deleted while it was being copied (its schema is gone).
            log.exception("copying Snapshot %s failed", original.doc["id"])
            members["snapshotStatus"] = "failed"
        await self.repo.merge(tenant, row.doc["id"], members)

    async def delete(self, tenant: str, sid: str) -> None:
        if not await self.repo.delete(tenant, [sid]):
            raise ResourceNotFound(f"Snapshot {sid} not found")

    async def purge(self, tenant: str, q: str | None) -> int:
        """§5.16.7: delete the Snapshots that ``q`` (over Snapshot members) selects."""
        selection = purge_selection(q)
        ids = [row.doc["id"] for row in await self.repo.all(tenant)
               if selection.matches(as_record(row.doc))]  # fmt: skip
        return len(await self.repo.delete(tenant, ids)) if ids else 0

    async def scope(self, tenant: str, sid: str) -> str:
        """The tenant name that reads under ``NGSILD-Snapshot: sid`` use (§6.3.22): the frozen
        copy, aliased in this process; moves lastUsedAt. 404 for an unknown Snapshot."""
        row = await self.get(tenant, sid)
        if row.doc.get("snapshotStatus") == PREPARING:
            raise BadRequestData(f"Snapshot {sid} is still being prepared")
        name = HIDDEN_TENANT + row.schema
        self.tenants.alias(name, row.schema)
        await self.repo.merge(tenant, sid, {"lastUsedAt": now_iso()})
        return name
