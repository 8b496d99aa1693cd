"""Value indexes, steward operations: opt an attribute of a tenant into number indexes.

Layer: core/. An attribute is named by a term of the request's @context or by its IRI. Building
the indexes of a large tenant takes as long as reading its entities once, so it runs in the
background (``CREATE INDEX CONCURRENTLY``: writes go on meanwhile); the registration's status
tells when it is ``ready`` (or ``failed``, and why). Why opt-in rather than automatic:
every index costs every write of the tenant, and only the steward knows which attributes are
queried by range (river levels, free places, temperatures).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from city_os.core.entities import RequestContext
from city_os.errors import BadRequestData, ResourceNotFound
from city_os.ngsild.entity import expand_attr_name
from city_os.store.postgres.db import Tenants
from city_os.store.postgres.indexes import ValueIndex, ValueIndexRepository

log = logging.getLogger(__name__)

KINDS = ("number",)


class ValueIndexService:
    def __init__(self, repo: ValueIndexRepository, tenants: Tenants) -> None:
        self.repo = repo
        self.tenants = tenants
        self._builds: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Resume the builds a stopped process left unfinished (any process may: one wins)."""
        for tenant, schema, attr in await self.repo.pending():
            self._build(tenant, schema, attr)

    async def close(self) -> None:
        """Stop running builds; what they leave is invalid and redone by the next start."""
        tasks = list(self._builds)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _build(self, tenant: str, schema: str, attr: str) -> None:
        # In the background: a build outlives the request (and its client's patience).
        task = asyncio.create_task(self._run_build(tenant, schema, attr))
        self._builds.add(task)
        task.add_done_callback(self._builds.discard)

    async def _run_build(self, tenant: str, schema: str, attr: str) -> None:
        try:
            await self.repo.build(tenant, schema, attr)
        except Exception:  # e.g. the database unreachable: the next start tries again
            log.exception("value index build on %s of tenant %r stopped", attr, tenant)

    def attr_iri(self, ctx: RequestContext, name: object) -> str:
        if not isinstance(name, str):
            raise BadRequestData("attribute must be an attribute name (a string)")
        return expand_attr_name(ctx.terms, name)

    async def list(self, ctx: RequestContext) -> list[ValueIndex]:
        await self.tenants.schema(ctx.tenant, create=False)  # 404 for an unknown tenant
        return await self.repo.of_tenant(ctx.tenant)

    async def get(self, ctx: RequestContext, name: str) -> ValueIndex:
        await self.tenants.schema(ctx.tenant, create=False)
        found = await self.repo.get(ctx.tenant, self.attr_iri(ctx, name))
        if found is None:
            raise ResourceNotFound(f"attribute {name!r} has no value index")
        return found

    async def create(
        self, ctx: RequestContext, name: object, kind: object
    ) -> tuple[ValueIndex, bool]:
        """The attribute's registration, and whether this request made it (its indexes are
        then being built: status ``building``)."""
        iri = self.attr_iri(ctx, name)
        if kind not in KINDS:
            raise BadRequestData(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        assert isinstance(name, str) and isinstance(kind, str)
        schema = await self.tenants.schema(ctx.tenant, create=True)
        index, created = await self.repo.register(ctx.tenant, schema, iri, name, kind)
        if created:
            self._build(ctx.tenant, schema, iri)
        return index, created

    async def drop(self, ctx: RequestContext, name: str) -> None:
        schema = await self.tenants.schema(ctx.tenant, create=False)
        if not await self.repo.drop(ctx.tenant, schema, self.attr_iri(ctx, name)):
            raise ResourceNotFound(f"attribute {name!r} has no value index")
