"""PostgreSQL plumbing: the connection pool, migrations and the tenant directory.

Layer: store/. A tenant is a PostgreSQL schema created on its first write (no restart); schema
names are generated here from a hash of the tenant name, never taken from request text, so they
are safe to place in SQL as identifiers.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from typing import Any

import asyncpg
import asyncpg.pool
import orjson

from city_os.errors import BadRequestData, NonexistentTenant

DEFAULT_SCHEMA = "ngsild_default"
_TENANT_NAME = re.compile(r"^[A-Za-z0-9_.:\-/]{1,64}$")
_LOCK_TENANTS = 0x63697479  # advisory lock key for tenant creation ("city")


def _migration(name: str) -> str:
    return (resources.files("city_os.store") / "migrations" / name).read_text("utf-8")


def _global_migrations() -> list[str]:
    """The numbered global migrations (``0001_core.sql``, ``0002_…``), in order."""
    folder = resources.files("city_os.store") / "migrations"
    return sorted(p.name for p in folder.iterdir() if re.fullmatch(r"\d{4}_\w+\.sql", p.name))


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb",
        # bytes are JSON already serialised by the caller (store.postgres.entities._encoded)
        encoder=lambda v: b"\x01" + (v if isinstance(v, bytes) else orjson.dumps(v)),
        decoder=lambda b: orjson.loads(b[1:]),
        schema="pg_catalog",
        format="binary",
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release hook: skip asyncpg's reset query (an extra round trip per release).

    city-os never leaves session state on a pooled connection (no SET, LISTEN or session
    advisory locks: those live on dedicated connections), and asyncpg still rolls back any
    open transaction before calling this.
    """


# Client-side failures that leave a connection unusable (asyncpg's own protocol errors).
_BROKEN = (asyncpg.InterfaceError, asyncpg.exceptions._base.InternalClientError)


class PoolExhausted(Exception):
    """No connection became free (or could be opened) within the pool's acquire timeout."""


class _Acquire:
    """asyncpg's acquire context with its timeout turned into ``PoolExhausted``, and a
    connection whose protocol broke (a statement cut off by a terminated backend leaves
    "another operation is in progress") closed before it goes back, so the pool replaces it."""

    __slots__ = ("_conn", "_inner", "_timeout")

    def __init__(self, inner: Any, timeout: float | None) -> None:
        self._inner = inner
        self._timeout = timeout
        self._conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        try:
            self._conn = await self._inner.__aenter__()
        except TimeoutError:
            raise PoolExhausted(
                f"no database connection could be had within {self._timeout:g} s"
            ) from None
        return self._conn

    async def __aexit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if self._conn is not None and isinstance(exc, _BROKEN) and not self._conn.is_closed():
            self._conn.terminate()
        await self._inner.__aexit__(kind, exc, tb)


class BoundedPool(asyncpg.pool.Pool):  # type: ignore[misc]
    """A pool whose every acquire (also inside ``pool.fetch``…) waits at most
    ``acquire_timeout``: with the database gone or every connection busy, a request fails with
    a clear 503 instead of waiting for as long as the client does."""

    def __init__(self, *args: Any, acquire_timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._acquire_timeout = acquire_timeout

    def acquire(self, *, timeout: float | None = None) -> Any:
        timeout = self._acquire_timeout if timeout is None else timeout
        return _Acquire(super().acquire(timeout=timeout), timeout)


async def create_pool(
    dsn: str, min_size: int, max_size: int, acquire_timeout: float | None = None
) -> asyncpg.Pool:
    pool = BoundedPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        init=_init_connection,
        reset=_keep_session,
        # jit off: short OLTP statements never win from it, and the trigger statements over
        # transition tables (history capture, attr_values) are estimated at billions of rows,
        # which made PostgreSQL spend ~10 s compiling one partial update on a loaded machine.
        server_settings={"timezone": "UTC", "application_name": "city-os", "jit": "off"},
        acquire_timeout=acquire_timeout,
    )
    await pool
    return pool


# SQLSTATEs that mean "the server cannot serve this now", not "this statement is wrong":
# connection exceptions (08), operator intervention: admin/crash shutdown, cannot connect now
# (57P01-57P03), too many connections (53300).
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")


def refused_data(exc: BaseException) -> str | None:
    """Why PostgreSQL refused a statement's data (SQLSTATE class 22, data exception, or 54,
    program limit exceeded, e.g. a jsonb value over 255 MB), or None. The limits checked
    before the store make this rare; when it happens it is the request's data, a 400."""
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        if state.startswith(("22", "54")):
            return (str(exc).splitlines() or [state])[0][:200]
    return None


def transient(exc: BaseException) -> str | None:
    """Why PostgreSQL rolled a statement back for a concurrent one (SQLSTATE class 40: a
    deadlock, a serialization failure), or None. Writes of entities retry these themselves;
    where one still reaches the client (DDL of value indexes racing its background build), it is
    a 503 with Retry-After: the same request succeeds once the other is done."""
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        if state.startswith("40"):
            return f"a concurrent operation conflicted with this one ({state})"
    return None


def unavailable(exc: BaseException) -> str | None:
    """Why ``exc`` means the database cannot be used right now (a 503 with Retry-After, never a
    500), or None when it is another failure. The one place this is decided."""
    if isinstance(exc, PoolExhausted):
        return str(exc)
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", None) or ""
        if state.startswith(_UNAVAILABLE_STATES) or isinstance(
            exc, asyncpg.PostgresConnectionError
        ):
            return f"the database connection failed ({state or type(exc).__name__})"
        return None
    if isinstance(exc, _BROKEN):
        return f"the database connection failed ({exc})"
    if isinstance(exc, OSError):  # refused, reset, unreachable: while (re)connecting
        return f"the database cannot be reached ({exc.strerror or type(exc).__name__})"
    return None


_LEDGER = """
CREATE SCHEMA IF NOT EXISTS cityos;
CREATE TABLE IF NOT EXISTS cityos.migrations (
    name       text PRIMARY KEY,      -- a global migration file, or 'tenant:<schema>'
    digest     text NOT NULL,         -- sha256 of the SQL applied
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


def _digest(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()


async def migrate(conn: asyncpg.Connection) -> None:
    """Apply the global migrations in order and bring every tenant schema up to date.

    Only SQL whose digest is not in the ledger runs: re-running DDL on a live database would take
    table locks that deadlock with writers (CREATE INDEX IF NOT EXISTS locks before it checks).
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_TENANTS)
        await conn.execute(_LEDGER)
        done = {r["name"]: r["digest"] for r in await conn.fetch("SELECT * FROM cityos.migrations")}
        for name in _global_migrations():
            sql = _migration(name)
            if done.get(name) != _digest(sql):
                await conn.execute(sql)
                await _record(conn, name, sql)
        # Tenants, and the frozen copies of Snapshots (0140_snapshots.sql, city_os/snapshots/)
        for row in await conn.fetch(
            "SELECT schema_name FROM cityos.tenants"
            " UNION ALL SELECT schema_name FROM cityos.snapshots"
        ):
            sql = tenant_ddl(row["schema_name"])
            if done.get("tenant:" + row["schema_name"]) != _digest(sql):
                await conn.execute(sql)
                await _record(conn, "tenant:" + row["schema_name"], sql)


async def _record(conn: asyncpg.Connection, name: str, sql: str) -> None:
    await conn.execute(
        "INSERT INTO cityos.migrations (name, digest) VALUES ($1, $2)"
        " ON CONFLICT (name) DO UPDATE SET digest = EXCLUDED.digest, applied_at = now()",
        name,
        _digest(sql),
    )


async def create_schema(conn: asyncpg.Connection, schema: str) -> None:
    """Make (or bring up to date) the objects of one tenant schema, in the caller's
    transaction, recorded in the ledger so that ``migrate`` keeps it current."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_TENANTS)
    sql = tenant_ddl(schema)
    await conn.execute(sql)
    await _record(conn, "tenant:" + schema, sql)


def tenant_ddl(schema: str) -> str:
    """The objects of one tenant: tenant.sql, then the temporal history (tenant_temporal.sql,
    its hourly rollups tenant_temporal_rollups.sql), the attribute values of q
    (tenant_values.sql) and context source registrations (tenant_csource.sql)."""
    parts = (
        "tenant.sql",
        "tenant_temporal.sql",
        "tenant_temporal_rollups.sql",
        "tenant_values.sql",
        "tenant_csource.sql",
    )
    sql = "\n".join(_migration(name) for name in parts)
    return sql.replace("{schema}", schema)


def schema_name(tenant: str) -> str:
    if tenant == "":
        return DEFAULT_SCHEMA
    slug = re.sub(r"[^a-z0-9]+", "_", tenant.lower()).strip("_")[:32]
    digest = hashlib.sha256(tenant.encode()).hexdigest()[:10]
    return f"t_{slug}_{digest}" if slug else f"t_{digest}"


def check_tenant(tenant: str) -> str:
    if tenant and not _TENANT_NAME.match(tenant):
        raise BadRequestData(
            f"NGSILD-Tenant {tenant!r} is invalid: use 1-64 letters, digits or _ . : - /"
        )
    return tenant


class Tenants:
    """Maps NGSILD-Tenant names to schemas, creating a tenant's schema on its first write."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._known: dict[str, str] = {}

    async def schema(self, tenant: str, *, create: bool) -> str:
        known = self._known.get(tenant)
        if known is not None:
            return known
        check_tenant(tenant)
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT schema_name FROM cityos.tenants WHERE name = $1", tenant
            )
            if row is None:
                if not create and tenant != "":
                    raise NonexistentTenant(f"tenant {tenant!r} does not exist")
                await self._create(conn, tenant)
                schema = schema_name(tenant)
            else:
                schema = row["schema_name"]
        self._known[tenant] = schema
        return schema

    async def _create(self, conn: asyncpg.Connection, tenant: str) -> None:
        schema = schema_name(tenant)
        async with conn.transaction():
            await create_schema(conn, schema)
            await conn.execute(
                "INSERT INTO cityos.tenants (name, schema_name) VALUES ($1, $2)"
                " ON CONFLICT (name) DO NOTHING",
                tenant,
                schema,
            )

    async def all(self) -> list[tuple[str, str]]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT name, schema_name FROM cityos.tenants ORDER BY name")
        return [(r["name"], r["schema_name"]) for r in rows]

    def alias(self, name: str, schema: str) -> None:
        """Let ``name`` resolve to ``schema`` in this process without a tenants row (the frozen
        copy of a Snapshot; the name cannot be sent as an NGSILD-Tenant header)."""
        self._known[name] = schema

    def forget(self) -> None:
        self._known.clear()
