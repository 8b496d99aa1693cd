"""The creator's automatic ``own`` grant is written by the entity insert statement itself.

Against real PostgreSQL, through ``EntityRepository``: a single create with an ``OwnerGrant``
sends exactly ONE statement (no transaction, no second statement for the grant or its audit
row; counted with asyncpg's query logger on a one-connection pool); the grant and its audit row
are exactly those of an explicit permission made by the creator (``permission.created``,
``automatic: true``); an id that already exists gets neither; a batch grants each entity it
inserts in the batch's one transaction, also when PostgreSQL refuses one entity and the batch
is stored entity by entity (the refused one gets no grant, no audit row).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from city_os.store.postgres.auth_access import OwnerGrant
from city_os.store.postgres.auth_log import ensure_partition
from city_os.store.postgres.db import Tenants, create_pool
from city_os.store.postgres.entities import BatchWrites, EntityRepository, Write
from tests.conftest import TEST_DSN
from tests.integration.writes import created_write

ASSIGNEE = "subject:https://idp.example#vol"
ACTOR = "oidc:https://idp.example#vol"


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(TEST_DSN, 1, 1)  # one connection: the logger sees every statement
    yield p
    await p.close()


WAKE = "SELECT pg_notify($1, '')"  # the outbox waker's, debounced, after writes commit


class Statements:
    """The statements a one-connection pool sends from ``start()`` on, but the outbox waker's
    (a wake-up of the relays that a burst of writes shares, not part of a write)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def _log(self, record: Any) -> None:
        if record.query != WAKE:
            self.sent.append(record.query)

    async def start(self, pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn:
            conn.add_query_logger(self._log)
        self.sent.clear()


def _write(tenant: str, entity_id: str, *, expires: str | None = None) -> Write:
    return created_write(tenant, entity_id, expires=expires, actor=ACTOR)


async def _grants(pool: asyncpg.Pool, schema: str, tenant: str) -> dict[str, dict[str, Any]]:
    """entity id → its permission and audit row (the only ones the test makes)."""
    async with pool.acquire() as conn:
        perms = await conn.fetch(
            f"SELECT id, assignee, action, entity_id, types, scopes, personal, created_by"
            f" FROM {schema}.permissions"
        )
        audits = await conn.fetch(
            "SELECT tenant, actor, action, resource, detail FROM cityos.audit_log"
            " WHERE tenant = $1",
            tenant,
        )
    by_resource = {a["resource"]: a for a in audits}
    assert len(by_resource) == len(audits) == len(perms)
    out = {}
    for p in perms:
        audit = by_resource[p["id"]]
        out[p["entity_id"]] = {
            "permission": (p["assignee"], p["action"], p["types"], p["scopes"], p["personal"]),
            "created_by": p["created_by"],
            "audit": (audit["tenant"], audit["actor"], audit["action"]),
            "detail": audit["detail"],
        }
    return out


def _expected(tenant: str, entity_id: str) -> dict[str, Any]:
    return {
        "permission": (ASSIGNEE, 4, None, None, False),
        "created_by": ACTOR,
        "audit": (tenant, ACTOR, "permission.created"),
        "detail": {
            "assignee": ASSIGNEE,
            "action": "own",
            "entityId": entity_id,
            "types": None,
            "scopes": None,
            "automatic": True,
        },
    }


async def _ready(pool: asyncpg.Pool, tenant: str) -> tuple[str, EntityRepository, OwnerGrant]:
    schema = await Tenants(pool).schema(tenant, create=True)
    async with pool.acquire() as conn:  # what a process does once a month (cached)
        await ensure_partition(conn, "audit_log", datetime.now(UTC))
    return schema, EntityRepository(pool), OwnerGrant(tenant, ASSIGNEE, ACTOR)


async def test_a_create_with_its_grant_is_one_statement(pool: asyncpg.Pool, tenant: str) -> None:
    schema, repo, owner = await _ready(pool, tenant)
    statements = Statements()
    await statements.start(pool)
    assert await repo.insert(schema, [_write(tenant, "urn:e:1")], owner) == {"urn:e:1"}
    assert statements.sent == [repo.sql(schema).insert_owned]
    assert await _grants(pool, schema, tenant) == {"urn:e:1": _expected(tenant, "urn:e:1")}

    # an id that exists: nothing inserted, nothing granted, still one statement
    statements.sent.clear()
    assert await repo.insert(schema, [_write(tenant, "urn:e:1")], owner) == set()
    assert len(statements.sent) == 1
    assert set(await _grants(pool, schema, tenant)) == {"urn:e:1"}

    # without a grant (authentication off, an admin) the plain insert: no permission
    assert await repo.insert(schema, [_write(tenant, "urn:e:2")]) == {"urn:e:2"}
    assert set(await _grants(pool, schema, tenant)) == {"urn:e:1"}
    await repo.waker.close()


async def test_a_batch_grants_what_it_inserts_in_its_transaction(
    pool: asyncpg.Pool, tenant: str
) -> None:
    schema, repo, owner = await _ready(pool, tenant)
    assert await repo.insert(schema, [_write(tenant, "urn:e:old")])  # made by someone else
    statements = Statements()
    await statements.start(pool)
    batch = BatchWrites(
        inserts=[_write(tenant, f"urn:e:{i}") for i in range(3)] + [_write(tenant, "urn:e:old")],
        strict=False,
        owner=owner,
    )
    outcome = await repo.write_batch(schema, batch)
    assert outcome.committed and outcome.written == {"urn:e:0", "urn:e:1", "urn:e:2"}
    assert statements.sent == ["BEGIN;", repo.sql(schema).insert_owned, "COMMIT;"]
    assert await _grants(pool, schema, tenant) == {
        f"urn:e:{i}": _expected(tenant, f"urn:e:{i}") for i in range(3)
    }
    await repo.waker.close()


async def test_entity_by_entity_the_refused_one_gets_no_grant(
    pool: asyncpg.Pool, tenant: str
) -> None:
    schema, repo, owner = await _ready(pool, tenant)
    writes = [_write(tenant, f"urn:e:{i}") for i in range(4)]
    writes[1] = _write(tenant, "urn:e:1", expires="not a time")  # PostgreSQL refuses it
    outcome = await repo.write_batch(schema, BatchWrites(inserts=writes, owner=owner))
    assert outcome.committed and set(outcome.failed) == {"urn:e:1"}
    assert outcome.written == {"urn:e:0", "urn:e:2", "urn:e:3"}
    assert await _grants(pool, schema, tenant) == {
        i: _expected(tenant, i) for i in ("urn:e:0", "urn:e:2", "urn:e:3")
    }
    await repo.waker.close()
