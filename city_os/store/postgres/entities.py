"""Entity persistence on PostgreSQL: every write is ONE statement (entity rows + geometry rows +
outbox rows), so it is atomic without an explicit transaction and costs one round trip; a batch
request's statements run in one transaction (``write_batch``).

Layer: store/. Writes of existing entities are optimistic: the caller read ``version`` and the
statement only touches rows still at that version; the ids it returns are the ones written, and the
caller re-reads and re-applies its change for the others. That gives "validate the state you write"
without holding row locks across round trips.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from city_os.store.postgres.auth_access import OwnerGrant
from city_os.store.postgres.db import unavailable
from city_os.store.postgres.entity_sql import _COLUMNS as _COLUMNS
from city_os.store.postgres.entity_sql import _LIVE as _LIVE
from city_os.store.postgres.entity_sql import EntityStatements, _encoded, _geo_rows, stored_rows
from city_os.store.postgres.entity_sql import Stored as Stored
from city_os.store.postgres.entity_sql import Write as Write
from city_os.store.postgres.entity_sql import _iso as _iso
from city_os.store.postgres.entity_sql import _record as _record

NOTIFY_CHANNEL = "cityos_outbox"
log = logging.getLogger(__name__)


_Statement = Callable[[asyncpg.Connection, str, list["Write"]], Awaitable[set[str]]]
_CHUNK = 200  # entities per statement of a batch
# Serialization failure and deadlock: nothing is wrong with the data, another try will do.
_RETRY_STATES = frozenset({"40001", "40P01"})


@dataclass
class BatchWrites:
    """The writes of one batch request, stored in one transaction (``write_batch``)."""

    inserts: list[Write] = field(default_factory=list)
    updates: list[Write] = field(default_factory=list)
    deletes: list[Write] = field(default_factory=list)
    reaps: list[Write] = field(default_factory=list)  # expired entities removed before inserts
    strict: bool = True  # every write must apply, or nothing is committed (a conflict)
    owner: OwnerGrant | None = None  # access control: the creator's grant on each insert

    def all(self) -> list[Write]:
        return [*self.reaps, *self.deletes, *self.inserts, *self.updates]


@dataclass
class BatchOutcome:
    committed: bool
    written: set[str] = field(default_factory=set)  # ids whose change is stored (if committed)
    conflicts: set[str] = field(default_factory=set)  # re-read and try again
    failed: dict[str, tuple[str, str]] = field(default_factory=dict)  # id → (SQLSTATE, why)


class _Conflict(Exception):
    def __init__(self, ids: set[str]) -> None:
        super().__init__(f"{len(ids)} writes did not apply")
        self.ids = ids


def _statement_problem(exc: asyncpg.PostgresError) -> tuple[str, str]:
    return exc.sqlstate or "", (str(exc).splitlines() or [type(exc).__name__])[0][:200]


class OutboxWaker:
    """Wakes outbox relays (LISTEN cityos_outbox) after writes commit, at most once per
    ``interval``: a NOTIFY inside every write statement would serialise all commits on
    PostgreSQL's notification queue lock. A lost wake-up only delays the relay until its poll."""

    def __init__(self, pool: asyncpg.Pool, interval: float = 0.002) -> None:
        self._pool = pool
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def poke(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        else:
            self._again = True

    async def _run(self) -> None:
        while True:
            self._again = False
            try:
                async with self._pool.acquire() as conn:
                    await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
            except Exception as exc:  # best effort: a lost wake-up only delays the relay
                log.warning("could not wake the outbox relay: %s", exc)
            if not self._again:
                return
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class EntityRepository:
    """Reads and writes entities of one tenant schema through a pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._statements: dict[str, EntityStatements] = {}
        self.waker = OutboxWaker(pool)
        # Called with the writes that were committed (metrics: entities written per operation).
        self.on_written: Callable[[list[Write], set[str]], None] | None = None

    def sql(self, schema: str) -> EntityStatements:
        st = self._statements.get(schema)
        if st is None:
            st = self._statements[schema] = EntityStatements(schema)
        return st

    async def get(self, schema: str, entity_id: str) -> Stored | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(self.sql(schema).get_one, entity_id)
        return None if row is None else _record(row)

    async def get_many(self, schema: str, ids: list[str]) -> dict[str, Stored]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(self.sql(schema).get_many, ids)
        return {s.record.id: s for s in await stored_rows(rows)}

    async def insert(
        self, schema: str, writes: list[Write], owner: OwnerGrant | None = None
    ) -> set[str]:
        """Insert new entities; returns the ids inserted (the others already existed).
        ``owner``: the same statement grants the creator ``own`` on each id inserted."""
        return await self._one_statement(self._inserter(owner), schema, writes)

    async def update(self, schema: str, writes: list[Write]) -> set[str]:
        """Write new states of existing entities still at ``version``; returns ids written."""
        return await self._one_statement(self._update, schema, writes)

    async def delete(self, schema: str, writes: list[Write]) -> set[str]:
        """Delete entities still at ``version``; returns the ids deleted."""
        return await self._one_statement(self._delete, schema, writes)

    async def _one_statement(self, run: _Statement, schema: str, writes: list[Write]) -> set[str]:
        if not writes:
            return set()
        async with self._pool.acquire() as conn:
            done = await run(conn, schema, writes)
        self._written(writes, done)
        return done

    def _inserter(self, owner: OwnerGrant | None) -> _Statement:
        return self._insert if owner is None else functools.partial(self._insert, owner=owner)

    async def _insert(
        self,
        conn: asyncpg.Connection,
        schema: str,
        writes: list[Write],
        owner: OwnerGrant | None = None,
    ) -> set[str]:
        if not writes:
            return set()
        entities = [
            {
                "id": w.record.id,
                "types": w.record.types,
                "scopes": w.record.scopes,
                "attrs": w.record.attrs,
                "created_at": w.record.created_at,
                "expires_at": w.record.expires_at,
            }
            for w in writes
        ]
        params = await _encoded(entities, _geo_rows(writes), writes)
        if owner is None:
            rows = await conn.fetch(self.sql(schema).insert, *params)
        else:
            params += await owner.args(conn)
            rows = await conn.fetch(self.sql(schema).insert_owned, *params)
        return {r["id"] for r in rows}

    async def _update(self, conn: asyncpg.Connection, schema: str, writes: list[Write]) -> set[str]:
        if not writes:
            return set()
        entities = [
            {
                "id": w.record.id,
                "types": w.record.types,
                "scopes": w.record.scopes,
                "attrs": w.record.attrs,
                "modified_at": w.record.modified_at,
                "expires_at": w.record.expires_at,
                "version": w.version,
                "geo": w.geo_changed,
            }
            for w in writes
        ]
        statements = self.sql(schema)
        geo = _geo_rows(writes)
        if geo or any(w.geo_changed for w in writes):
            rows = await conn.fetch(statements.update, *await _encoded(entities, geo, writes))
        else:
            params = await _encoded(entities, None, writes)
            rows = await conn.fetch(statements.update_plain, *params)
        return {r["id"] for r in rows}

    async def _delete(self, conn: asyncpg.Connection, schema: str, writes: list[Write]) -> set[str]:
        if not writes:
            return set()
        keys = [{"id": w.record.id, "version": w.version} for w in writes]
        params = await _encoded(keys, None, writes)
        del params[1]  # no geometry parameter in a delete
        rows = await conn.fetch(self.sql(schema).delete, *params)
        return {r["id"] for r in rows}

    async def write_batch(self, schema: str, batch: BatchWrites) -> BatchOutcome:
        """Store a whole batch request in ONE transaction: its deletes (expired entities first),
        inserts and updates with their outbox rows commit together or not at all, so neither a
        failing statement nor a killed process leaves a batch half-written.

        With ``batch.strict`` a write that did not apply (an insert of an id that exists
        meanwhile, an update or delete of a row no longer at its version) rolls everything
        back: the caller re-reads and tries again. A statement PostgreSQL refuses is retried
        entity by entity, each under a savepoint, so that the entities at fault are named in
        ``failed`` and the others still commit together.
        """
        writes = batch.all()
        if not writes:
            return BatchOutcome(committed=True)
        async with self._pool.acquire() as conn:
            try:
                async with conn.transaction():
                    done = await self._apply(conn, schema, batch)
                    missing = {w.record.id for w in writes} - done
                    if batch.strict and missing:
                        raise _Conflict(missing)
            except _Conflict as conflict:
                return BatchOutcome(committed=False, conflicts=conflict.ids)
            except asyncpg.PostgresError as exc:
                if unavailable(exc) is not None:
                    raise
                if exc.sqlstate in _RETRY_STATES:
                    return BatchOutcome(committed=False, conflicts={w.record.id for w in writes})
                log.warning("batch statement failed (%s); storing entity by entity", exc)
                outcome = await self._one_by_one(conn, schema, batch)
            else:
                outcome = BatchOutcome(committed=True, written=done)
        if outcome.committed:
            self._written(writes, outcome.written)
        return outcome

    async def _apply(self, conn: asyncpg.Connection, schema: str, batch: BatchWrites) -> set[str]:
        """The batch's statements, each over at most ``_CHUNK`` entities: encoding the
        parameters of 1,000 entities and their events (megabytes) in one go held the event
        loop for 100 ms; in chunks, other requests run between them. Same transaction."""
        done: set[str] = set()
        for run, writes in (
            (self._delete, batch.reaps),
            (self._delete, batch.deletes),
            (self._inserter(batch.owner), batch.inserts),
            (self._update, batch.updates),
        ):
            for start in range(0, len(writes), _CHUNK):
                done |= await run(conn, schema, writes[start : start + _CHUNK])
        return done

    async def _one_by_one(
        self, conn: asyncpg.Connection, schema: str, batch: BatchWrites
    ) -> BatchOutcome:
        outcome = BatchOutcome(committed=False)
        steps: list[tuple[_Statement, Write]] = [
            *((self._delete, w) for w in batch.reaps),
            *((self._delete, w) for w in batch.deletes),
            *((self._inserter(batch.owner), w) for w in batch.inserts),
            *((self._update, w) for w in batch.updates),
        ]
        try:
            async with conn.transaction():
                for run, write in steps:
                    entity_id = write.record.id
                    if entity_id in outcome.failed:
                        continue
                    try:
                        async with conn.transaction():  # a savepoint
                            done = await run(conn, schema, [write])
                    except asyncpg.PostgresError as exc:
                        if unavailable(exc) is not None or exc.sqlstate in _RETRY_STATES:
                            raise
                        outcome.failed[entity_id] = _statement_problem(exc)
                        continue
                    if done:
                        outcome.written |= done
                    else:
                        outcome.conflicts.add(entity_id)
                # A failed entity stores no change of its own (its expired predecessor may go).
                outcome.written -= set(outcome.failed)
                if batch.strict and outcome.conflicts:
                    raise _Conflict(outcome.conflicts)
        except _Conflict:
            outcome.written = set()
            return outcome
        except asyncpg.PostgresError as exc:
            if unavailable(exc) is not None:
                raise
            return BatchOutcome(committed=False, conflicts={w.record.id for w in batch.all()})
        outcome.committed = True
        return outcome

    def _written(self, writes: list[Write], done: set[str]) -> None:
        if done:
            self.waker.poke()
            if self.on_written is not None:
                self.on_written(writes, done)

    async def select_ids(self, schema: str, where: str, args: list[Any]) -> list[str]:
        """Ids of live entities matching a WHERE fragment built with bound parameters only."""
        sql = f"SELECT e.id FROM {schema}.entities e WHERE {_LIVE} AND ({where}) ORDER BY e.id"
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *args)
        return [r["id"] for r in rows]

    async def get_expired(self, schema: str, ids: list[str]) -> list[Stored]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(self.sql(schema).expired_by_id, ids)
        return await stored_rows(rows)

    async def expired(self, schema: str, limit: int) -> list[Stored]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(self.sql(schema).expired, limit)
        return await stored_rows(rows)
