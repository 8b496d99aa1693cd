"""Value indexes, steward operations: opt an attribute of a tenant into number indexes.

Layer: core/. An attribute is named by a term of the request's @context or by its IRI. Building
the indexes of a large tenant takes as long as reading its entities once; the request waits for
it (``CREATE INDEX CONCURRENTLY``: writes go on meanwhile). Why opt-in rather than automatic:
every index costs every write of the tenant, and only the steward knows which attributes are
queried by range (river levels, free places, temperatures).
"""

from __future__ import annotations

from city_os.core.entities import RequestContext
from city_os.errors import BadRequestData, ResourceNotFound
from city_os.ngsild.entity import expand_attr_name
from city_os.store.postgres.db import Tenants
from city_os.store.postgres.indexes import ValueIndex, ValueIndexRepository

KINDS = ("number",)


class ValueIndexService:
    def __init__(self, repo: ValueIndexRepository, tenants: Tenants) -> None:
        self.repo = repo
        self.tenants = tenants

    def attr_iri(self, ctx: RequestContext, name: object) -> str:
        if not isinstance(name, str):
            raise BadRequestData("attribute must be an attribute name (a string)")
        return expand_attr_name(ctx.terms, name)

    async def list(self, ctx: RequestContext) -> list[ValueIndex]:
        await self.tenants.schema(ctx.tenant, create=False)  # 404 for an unknown tenant
        return await self.repo.list(ctx.tenant)

    async def get(self, ctx: RequestContext, name: str) -> ValueIndex:
        await self.tenants.schema(ctx.tenant, create=False)
        found = await self.repo.get(ctx.tenant, self.attr_iri(ctx, name))
        if found is None:
            raise ResourceNotFound(f"attribute {name!r} has no value index")
        return found

    async def create(
        self, ctx: RequestContext, name: object, kind: object
    ) -> tuple[ValueIndex, bool]:
        """The attribute's index, and whether this request created it."""
        iri = self.attr_iri(ctx, name)
        if kind not in KINDS:
            raise BadRequestData(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        assert isinstance(name, str) and isinstance(kind, str)
        schema = await self.tenants.schema(ctx.tenant, create=True)
        return await self.repo.create(ctx.tenant, schema, iri, name, kind)

    async def drop(self, ctx: RequestContext, name: str) -> None:
        schema = await self.tenants.schema(ctx.tenant, create=False)
        if not await self.repo.drop(ctx.tenant, schema, self.attr_iri(ctx, name)):
            raise ResourceNotFound(f"attribute {name!r} has no value index")
