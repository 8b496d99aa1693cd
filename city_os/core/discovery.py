"""Discovery of entity types and attributes (§5.7.5-5.7.10): what a tenant holds right now.

Layer: core/. Aggregates come from the store over all live entities of the tenant (that the
caller may read, with access control on); names are
compacted with the request's @context into the EntityTypeList, EntityType, EntityTypeInfo,
AttributeList and Attribute shapes of §5.2.24-5.2.29.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from city_os.core.entities import EntityService, RequestContext
from city_os.errors import ResourceNotFound
from city_os.store.postgres.discovery import AttributeStats, DiscoveryRepository
from city_os.store.postgres.query import Visible

if TYPE_CHECKING:
    from city_os.federation.distributed import Federation


def _list_id(kind: str) -> str:
    return f"urn:ngsi-ld:{kind}:{uuid.uuid4()}"


class DiscoveryService:
    def __init__(self, entities: EntityService, repo: DiscoveryRepository) -> None:
        self.entities = entities
        self.repo = repo
        self.federation: Federation | None = None  # distributed discovery (federation/)

    async def types(self, ctx: RequestContext, *, details: bool) -> Any:
        local = await self.local_types(ctx, details=details)
        if self.federation is None:
            return local
        from city_os.federation.distributed_discovery import join_list

        return await join_list(self.federation, ctx, "types", local, details=details)

    async def attributes(self, ctx: RequestContext, *, details: bool) -> Any:
        local = await self.local_attributes(ctx, details=details)
        if self.federation is None:
            return local
        from city_os.federation.distributed_discovery import join_list

        return await join_list(self.federation, ctx, "attributes", local, details=details)

    async def type_info(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        if self.federation is None:
            return await self.local_type_info(ctx, name)
        return await self._joined(ctx, "types", name, ctx.terms.expand_type(name))

    async def attribute(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        if self.federation is None:
            return await self.local_attribute(ctx, name)
        return await self._joined(ctx, "attributes", name, ctx.terms.expand_attr(name) or name)

    async def _joined(self, ctx: RequestContext, kind: str, name: str, iri: str) -> dict[str, Any]:
        from city_os.federation.distributed_discovery import join_one

        assert self.federation is not None
        local = self.local_type_info if kind == "types" else self.local_attribute
        mine: dict[str, Any] | None = None
        try:
            mine = await local(ctx, name)
        except ResourceNotFound:
            pass  # perhaps a source knows it
        found = await join_one(self.federation, ctx, kind, name, iri, mine)
        if found is None:
            what = "entity of type" if kind == "types" else "entity has an attribute"
            raise ResourceNotFound(f"no {what} {name} exists here or at a context source")
        return found

    async def _visible(self, ctx: RequestContext) -> Visible | None:
        access = self.entities.access  # only what the caller may read counts (auth/)
        return await access.visible(ctx) if access is not None else None

    async def local_types(self, ctx: RequestContext, *, details: bool) -> Any:
        schema = await self.entities.schema(ctx, write=False)
        found = await self.repo.types(schema, await self._visible(ctx))
        tm = ctx.terms
        if not details:
            return {
                "id": _list_id("EntityTypeList"),
                "type": "EntityTypeList",
                "typeList": [tm.compact_type(t) for t in found],
            }
        return [
            {
                "id": iri,
                "type": "EntityType",
                "typeName": tm.compact_type(iri),
                "attributeNames": [tm.compact_attr(a) for a in attrs],
            }
            for iri, attrs in found.items()
        ]

    async def local_type_info(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        schema = await self.entities.schema(ctx, write=False)
        iri = ctx.terms.expand_type(name)
        count, attrs = await self.repo.type_info(schema, iri, await self._visible(ctx))
        if count == 0:
            raise ResourceNotFound(f"no entity of type {name} exists")
        tm = ctx.terms
        return {
            "id": iri,
            "type": "EntityTypeInfo",
            "typeName": tm.compact_type(iri),
            "entityCount": count,
            "attributeDetails": [
                {
                    "id": attr,
                    "type": "Attribute",
                    "attributeName": tm.compact_attr(attr),
                    "attributeTypes": kinds,
                }
                for attr, kinds in attrs.items()
            ],
        }

    async def local_attributes(self, ctx: RequestContext, *, details: bool) -> Any:
        schema = await self.entities.schema(ctx, write=False)
        stats = await self.repo.attributes(schema, None, await self._visible(ctx))
        tm = ctx.terms
        if not details:
            return {
                "id": _list_id("AttributeList"),
                "type": "AttributeList",
                "attributeList": [tm.compact_attr(s.iri) for s in stats],
            }
        return [
            {
                "id": s.iri,
                "type": "Attribute",
                "attributeName": tm.compact_attr(s.iri),
                "typeNames": [tm.compact_type(t) for t in s.types],
            }
            for s in stats
        ]

    async def local_attribute(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        schema = await self.entities.schema(ctx, write=False)
        iri = ctx.terms.expand_attr(name)
        stats: list[AttributeStats] = []
        if iri is not None and not iri.startswith("@"):
            stats = await self.repo.attributes(schema, iri, await self._visible(ctx))
        if not stats:
            raise ResourceNotFound(f"no entity has an attribute {name}")
        s, tm = stats[0], ctx.terms
        return {
            "id": s.iri,
            "type": "Attribute",
            "attributeName": tm.compact_attr(s.iri),
            "attributeCount": s.count,
            "attributeTypes": s.kinds,
            "typeNames": [tm.compact_type(t) for t in s.types],
        }
