"""The readable-scope SQL against PostgreSQL: for random entities (types, scopes, data subjects),
permissions (type/scope and entity targets), consents and callers, the rows the predicate
selects are exactly the entities ``decide(READ)`` says the caller may read — also in the form
for a query of one type (``of_type``), among the entities of that type. Also: a deleted
entity takes its permissions and data subject with it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from city_os.auth.policy import (
    Action,
    Consent,
    EntityFacts,
    Operation,
    Permission,
    decide,
    readable,
)
from city_os.auth.principal import Principal
from city_os.store.postgres.auth_scope_sql import readable_to_sql
from city_os.store.postgres.db import migrate, schema_name, tenant_ddl
from city_os.store.postgres.query_sql import SqlParams
from tests.conftest import TEST_DSN
from tests.unit.auth.test_policy import consents, entities, permissions, principals

Sync = tuple[asyncio.AbstractEventLoop, asyncpg.Connection]
TENANT = "test-readable-" + uuid.uuid4().hex[:8]
SCHEMA = schema_name(TENANT)
NOW = time.time()


@pytest.fixture(scope="module")
def sync_conn() -> Iterator[Sync]:
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(asyncpg.connect(TEST_DSN, server_settings={"timezone": "UTC"}))
    loop.run_until_complete(migrate(conn))
    loop.run_until_complete(conn.execute(tenant_ddl(SCHEMA)))
    loop.run_until_complete(
        conn.execute(
            "INSERT INTO cityos.tenants (name, schema_name) VALUES ($1, $2)", TENANT, SCHEMA
        )
    )
    yield loop, conn
    loop.run_until_complete(conn.execute("DELETE FROM cityos.consents WHERE tenant = $1", TENANT))
    loop.run_until_complete(conn.close())
    loop.close()


async def _store(
    conn: asyncpg.Connection,
    rows: list[EntityFacts],
    perms: list[Permission],
    cons: list[Consent],
) -> None:
    async with conn.transaction():
        for table in ("entities", "permissions", "data_subjects"):  # tiny: faster than TRUNCATE
            await conn.execute(f"DELETE FROM {SCHEMA}.{table}")
        await conn.execute("DELETE FROM cityos.consents WHERE tenant = $1", TENANT)
        for e in rows:
            await conn.execute(
                f"INSERT INTO {SCHEMA}.entities (id, types, scopes, created_at, modified_at)"
                " VALUES ($1, $2, $3, now(), now())",
                e.id,
                list(e.types),
                list(e.scopes) or None,
            )
            if e.subject is not None:
                await conn.execute(
                    f"INSERT INTO {SCHEMA}.data_subjects (entity_id, issuer, subject, created_by)"
                    " VALUES ($1, $2, $3, 'test')",
                    e.id,
                    *e.subject,
                )
        for p in perms:
            # scope patterns are stored as text; the SQL under test takes them from the scope
            await conn.execute(
                f"INSERT INTO {SCHEMA}.permissions (id, assignee, action, entity_id, types,"
                " personal, created_by) VALUES ($1, $2, $3, $4, $5, $6, 'test')",
                p.id,
                p.assignee,
                int(p.action),
                p.entity_id,
                sorted(p.types) if p.types is not None else None,
                p.personal,
            )
        for c in cons:
            await conn.execute(
                "INSERT INTO cityos.consents (id, tenant, issuer, subject, client, types, purpose,"
                " expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, 'test',"
                " to_timestamp($7), CASE WHEN $8 THEN now() END)",
                uuid.UUID(c.id),
                TENANT,
                c.issuer,
                c.subject,
                c.client,
                sorted(c.types),
                c.expires,
                c.revoked,
            )


def _real_time(consent: Consent) -> Consent:
    """The generated expiry (just before or after the unit tests' NOW) moved to a day before or
    after the database's now()."""
    offset = 86400 if consent.expires > 1_800_000_000 else -86400
    return Consent(
        consent.id,
        consent.issuer,
        consent.subject,
        consent.client,
        consent.types,
        NOW + offset,
        consent.revoked,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    principal=principals,
    rows=st.lists(entities, max_size=6, unique_by=lambda e: e.id),
    perms=st.lists(permissions, max_size=6),
    cons=st.lists(consents, max_size=3),
)
def test_sql_selects_exactly_what_decide_allows(
    sync_conn: Sync,
    principal: object,
    rows: list[EntityFacts],
    perms: list[Permission],
    cons: list[Consent],
) -> None:
    loop, conn = sync_conn
    cons = [_real_time(c) for c in cons]
    loop.run_until_complete(_store(conn, rows, perms, cons))
    assert isinstance(principal, Principal)
    scope = readable(principal, "saga", [p for p in perms if p.entity_id is None])
    params = SqlParams()
    fragment, args = readable_to_sql(scope, schema=SCHEMA, tenant=TENANT, params=params)
    found = loop.run_until_complete(
        conn.fetch(f"SELECT id FROM {SCHEMA}.entities e WHERE {fragment}", *args)
    )
    expected = {
        e.id
        for e in rows
        if decide(principal, "saga", Operation.READ, e, perms, cons, time.time()).allowed
    }
    assert {r["id"] for r in found} == expected
    # A query of one type: the predicate without the type condition of a grant of that type
    # selects the same among the entities of that type.
    for of_type in sorted({t for e in rows for t in e.types}):
        params = SqlParams(2)
        fragment, args = readable_to_sql(
            scope, schema=SCHEMA, tenant=TENANT, params=params, of_type=of_type
        )
        found = loop.run_until_complete(
            conn.fetch(
                f"SELECT id FROM {SCHEMA}.entities e WHERE $1 = ANY(e.types) AND {fragment}",
                of_type,
                *args,
            )
        )
        assert {r["id"] for r in found} == {e.id for e in rows if of_type in e.types} & expected


CITIZENS = "https://idp.saga.example/citizens"
CHILD = "https://city-os.jp/ns/ChildcareApplication"
SERVICE = Principal(subject="svc", issuer="https://idp.saga.example/staff", client="childcare-app")
MINE = EntityFacts("urn:e:mine", (CHILD,), (), (CITIZENS, "c-1"))
THEIRS = EntityFacts("urn:e:theirs", (CHILD,), (), (CITIZENS, "c-2"))


def _consent(**changes: object) -> Consent:
    values: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "issuer": CITIZENS,
        "subject": "c-1",
        "client": "childcare-app",
        "types": frozenset({CHILD}),
        "expires": NOW + 3600,
        "revoked": False,
    }
    values.update(changes)
    return Consent(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("consent", "readable_ids"),
    [
        (_consent(), {MINE.id}),
        (_consent(revoked=True), set()),
        (_consent(expires=NOW - 3600), set()),
        (_consent(client="ads"), set()),
        (_consent(types=frozenset({"https://city-os.jp/ns/AED"})), set()),
        (_consent(subject="c-2"), {THEIRS.id}),
    ],
    ids=["valid", "revoked", "expired", "other-client", "other-types", "other-citizen"],
)
def test_consent_sql(sync_conn: Sync, consent: Consent, readable_ids: set[str]) -> None:
    loop, conn = sync_conn
    loop.run_until_complete(_store(conn, [MINE, THEIRS], [], [consent]))
    fragment, args = readable_to_sql(readable(SERVICE, "saga"), schema=SCHEMA, tenant=TENANT)
    found = loop.run_until_complete(
        conn.fetch(f"SELECT id FROM {SCHEMA}.entities e WHERE {fragment}", *args)
    )
    assert {r["id"] for r in found} == readable_ids
    expected = {
        e.id
        for e in (MINE, THEIRS)
        if decide(SERVICE, "saga", Operation.READ, e, (), [consent], time.time())
    }
    assert expected == readable_ids


def test_a_deleted_entity_takes_its_permissions_and_data_subject(sync_conn: Sync) -> None:
    loop, conn = sync_conn
    grant = Permission("p-1", "public", Action.READ, entity_id=MINE.id)
    loop.run_until_complete(_store(conn, [MINE, THEIRS], [grant], []))

    async def delete_and_count() -> tuple[int, int]:
        await conn.execute(f"DELETE FROM {SCHEMA}.entities WHERE id = $1", MINE.id)
        perms = await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.permissions")
        subjects = await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.data_subjects")
        return perms, subjects

    assert loop.run_until_complete(delete_and_count()) == (0, 1)  # THEIRS keeps its subject
