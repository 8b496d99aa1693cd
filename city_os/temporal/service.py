"""Temporal operations (§5.6.11-5.6.19 provision, §5.7.3-5.7.4 consumption): what each means.

Layer: temporal/ at the core level: takes a RequestContext, parses with ngsild/ and
temporal/params, stores and reads through store.postgres.temporal, renders with
temporal/render. No aiohttp, no SQL text. Instance pages are cut at ``max_instances`` per
entity, on a change of instant, so consecutive pages (next timeAt = the range end) see every
instance exactly once (§6.3.10).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from city_os.auth.policy import Operation
from city_os.core.entities import EntityService
from city_os.core.request import RequestContext
from city_os.errors import AlreadyExists, BadRequestData, ResourceNotFound
from city_os.ngsild.attributes import parse_instance
from city_os.ngsild.entity import check_entity_id, expand_attr_name
from city_os.ngsild.query.entity_selection import Names, Selection
from city_os.ngsild.query.evaluate import compile_selection
from city_os.ngsild.representation import EntityRecord
from city_os.store.postgres.db import Tenants
from city_os.store.postgres.temporal import InstanceFilter, TemporalRepository
from city_os.temporal.access import TemporalAccess
from city_os.temporal.distributed import (
    Page,
    TemporalResult,
    distributed_query,
    distributed_retrieve,
)
from city_os.temporal.parse import (
    SCOPE_IRI,
    instance_row,
    instance_uuid,
    parse_temporal_entity,
    split_latest,
)
from city_os.temporal.render import (
    Row,
    TemporalOptions,
    content_range_of,
    iso,
    project,
    render_aggregated,
    render_entity,
)

if TYPE_CHECKING:
    from city_os.federation.distributed_temporal import TemporalFederation


def names(ctx: RequestContext) -> Names:
    return Names(type=ctx.terms.expand_type, attr=lambda term: expand_attr_name(ctx.terms, term))


def cut(rows: list[Row], cap: int, descending: bool) -> tuple[list[Row], bool]:
    """At most ``cap`` rows (already in page order), ending before a change of instant."""
    if len(rows) <= cap:
        return rows, False
    boundary = rows[cap]["t"]
    kept = [r for r in rows[:cap] if r["t"] != boundary]
    return (kept or rows[:cap]), True


class TemporalService:
    """``entities``: temporal provision also writes the entity's current state (its newest
    instances) through the entity API, so both APIs agree; None = temporal store only."""

    def __init__(
        self,
        repo: TemporalRepository,
        tenants: Tenants,
        max_instances: int,
        entities: EntityService | None = None,
    ) -> None:
        self.repo = repo
        self.tenants = tenants
        self.max_instances = max_instances
        self.entities = entities
        self.access = TemporalAccess(entities)
        self.federation: TemporalFederation | None = None  # distributed hook (federation/)

    async def schema(self, ctx: RequestContext, *, write: bool) -> str:
        return await self.tenants.schema(ctx.tenant, create=write)

    # -------------------------------------------------------------- consumption

    async def retrieve(
        self,
        ctx: RequestContext,
        entity_id: str,
        f: InstanceFilter,
        opts: TemporalOptions,
        *,
        local: bool = False,
    ) -> TemporalResult:
        """With federation installed, merged with the sources (temporal/distributed.py)."""
        check_entity_id(entity_id)
        if self.federation is not None:
            merged = await distributed_retrieve(self, ctx, entity_id, f, opts, local)
            if merged is not None:
                return merged
        return await self.retrieve_local(ctx, entity_id, f, opts)

    async def retrieve_local(
        self, ctx: RequestContext, entity_id: str, f: InstanceFilter, opts: TemporalOptions
    ) -> TemporalResult:
        schema = await self.schema(ctx, write=False)
        head = await self.repo.entity(schema, entity_id)
        if head is None:
            raise ResourceNotFound(f"temporal entity {entity_id} not found")
        await self.access.check(ctx, schema, Operation.READ, head)
        result = await self._render(ctx, schema, [head], f, opts)
        body = result.bodies[0]
        if not body or (f.attrs and not set(body) - {"id", "type", "scope"}):
            raise ResourceNotFound(f"entity {entity_id} has none of the attributes asked for")
        return result

    async def query(
        self,
        ctx: RequestContext,
        sel: Selection,
        f: InstanceFilter,
        opts: TemporalOptions,
        *,
        limit: int,
        offset: int,
        count: bool,
        descending: bool = False,
        local: bool = False,
    ) -> TemporalResult:
        if self.federation is not None:
            page = Page(limit, offset, count, descending, local)
            result = await distributed_query(self, ctx, sel, f, opts, page)
            if result is not None:
                return result
        return await self.query_local(
            ctx, sel, f, opts, limit=limit, offset=offset, count=count,
            descending=descending, local=local,
        )  # fmt: skip

    async def query_local(
        self,
        ctx: RequestContext,
        sel: Selection,
        f: InstanceFilter,
        opts: TemporalOptions,
        *,
        limit: int,
        offset: int,
        count: bool,
        descending: bool = False,
        local: bool = False,
    ) -> TemporalResult:
        typed = any(s.types is not None for s in sel.selectors)
        if not (typed or local or sel.attrs or sel.q is not None or sel.geo is not None):
            raise BadRequestData(
                "a temporal query needs at least one of type, attrs, q, geoQ or local=true"
            )
        schema = await self.schema(ctx, write=False)
        if sel.scope is not None:  # only instances observed under a matching scope (§4.18)
            f = replace(f, scope=sel.scope)
        # Entities without any instance in the window (or of the attrs asked for) are not
        # part of the result (ETSI 021_13, 021_18_07): selected in SQL when nothing else is
        # evaluated in process.
        narrowed = f.query.timerel is not None or bool(f.attrs) or f.datasets is not None
        post_filter = sel.q is not None or sel.geo is not None
        page = None if post_filter else limit + 1
        heads, total = await self.repo.select(
            schema,
            sel,
            names(ctx),
            limit=page,
            offset=0 if post_filter else offset,
            count=count,
            within=f if narrowed else None,
            descending=descending,
            visible=await self.access.scope(ctx),
            tenant=ctx.tenant,
            aggregated=opts.format == "aggregated",
        )
        if post_filter:
            heads = await self._matching(ctx, schema, sel, heads)
            total = len(heads) if count else None
            heads = heads[offset : offset + limit + 1]
        more = len(heads) > limit
        await self.access.log_page(ctx, schema, heads[:limit])
        result = await self._render(ctx, schema, heads[:limit], f, opts)
        return replace(result, total=total, more=more)

    async def _matching(
        self, ctx: RequestContext, schema: str, sel: Selection, heads: list[Row]
    ) -> list[Row]:
        """The entities whose latest instances satisfy q and geoQ (evaluated in process)."""
        test = compile_selection(Selection(q=sel.q, geo=sel.geo), names(ctx))
        latest: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for row in await self.repo.latest(schema, [h["id"] for h in heads]):
            if row["deleted_at"] is not None:
                continue
            inst = dict(row["inst"])
            if row["observed_at"] is not None:
                inst["observedAt"] = iso(row["observed_at"])
            latest.setdefault(row["entity_id"], {}).setdefault(row["attr"], []).append(inst)
        out = []
        for head in heads:
            record = EntityRecord(
                id=head["id"],
                types=list(head["types"]),
                attrs=latest.get(head["id"], {}),
                scopes=list(head["scopes"]) if head["scopes"] else None,
                created_at=iso(head["created_at"]) or "",
                modified_at=iso(head["modified_at"]) or "",
            )
            if test.matches(record):
                out.append(head)
        return out

    async def _render(
        self,
        ctx: RequestContext,
        schema: str,
        heads: list[Row],
        f: InstanceFilter,
        opts: TemporalOptions,
    ) -> TemporalResult:
        ids = [h["id"] for h in heads]
        if not ids:
            return TemporalResult([])
        if opts.format == "aggregated":
            rows = await self.repo.aggregate(schema, ids, f, packed=True)
            by_id = _by_entity(rows)
            bodies = [render_aggregated(h, by_id.get(h["id"], []), ctx.terms, opts) for h in heads]
            return TemporalResult([project(b, opts) for b in bodies])
        descending = f.query.last_n is not None
        by_id = _by_entity(
            await self.repo.instances(schema, ids, f, self.max_instances, audit=opts.sys_attrs)
        )
        bodies, ranges = [], []
        for head in heads:
            rows, was_cut = cut(by_id.get(head["id"], []), self.max_instances, descending)
            body = render_entity(head, rows, ctx.terms, opts)
            if was_cut:
                ranges.append((rows[0]["t"], rows[-1]["t"]))
                # Attributes the cut left without instances are listed empty (ETSI 020_14).
                for attr in await self.repo.attributes(schema, head["id"], f):
                    body.setdefault(ctx.terms.compact_attr(attr), [])
            bodies.append(project(body, opts))
        content_range = None
        if ranges:
            content_range = content_range_of(f, ranges, descending)
        return TemporalResult(bodies, content_range)

    # ---------------------------------------------------------------- provision

    async def create_or_update(self, ctx: RequestContext, body: object) -> bool:
        """POST /temporal/entities: a new temporal entity (True) or instances added (False)."""
        head, attrs = parse_temporal_entity(body, ctx)
        assert isinstance(body, dict)
        schema = await self.schema(ctx, write=True)
        stored = await self.repo.entity(schema, head["id"])
        if stored is not None:
            await self.access.check(ctx, schema, Operation.UPDATE, stored)
        else:
            await self.access.check_new(ctx, head)
        existed = stored is not None
        if self.entities is not None:
            fragment, attrs = split_latest(body, attrs, ctx)
            await self._write_current(ctx, schema, head["id"], fragment)
        rows = [
            instance_row(head["id"], a, i, ctx.now) for a, insts in attrs.items() for i in insts
        ]
        scoped = [instance_row(head["id"], SCOPE_IRI, i, ctx.now) for i in head["scope_instances"]]
        await self.repo.provision(
            schema,
            {**head, "now": ctx.now},
            rows + scoped,
            scope_given=bool(scoped),
            actor=ctx.actor,
        )
        return not existed

    async def _write_current(
        self, ctx: RequestContext, schema: str, entity_id: str, fragment: dict[str, Any]
    ) -> None:
        """The newest instances as the entity's current state: created, or appended to."""
        assert self.entities is not None
        if await self.entities.repo.get(schema, entity_id) is None:
            try:
                await self.entities.create(ctx, fragment)
                return
            except AlreadyExists:
                pass  # created meanwhile: append below
        attrs = {k: v for k, v in fragment.items() if k not in ("id", "@id", "type", "@type")}
        if attrs:
            await self.entities.append_attrs(ctx, entity_id, attrs, overwrite=True)

    async def add_attrs(self, ctx: RequestContext, entity_id: str, body: object) -> None:
        check_entity_id(entity_id)
        schema = await self.schema(ctx, write=False)
        head = await self.repo.entity(schema, entity_id)
        if head is None:
            raise ResourceNotFound(f"temporal entity {entity_id} not found")
        await self.access.check(ctx, schema, Operation.UPDATE, head)
        _, attrs = parse_temporal_entity(body, ctx, id_required=False)
        if not attrs:
            raise BadRequestData("no attribute to add")
        assert isinstance(body, dict)
        if self.entities is not None and await self.entities.repo.get(schema, entity_id):
            fragment, attrs = split_latest(body, attrs, ctx)
            fragment = {k: v for k, v in fragment.items() if k != "scope"}
            await self.entities.append_attrs(ctx, entity_id, fragment, overwrite=True)
        rows = [instance_row(entity_id, a, i, ctx.now) for a, insts in attrs.items() for i in insts]
        entity = {"id": entity_id, "types": list(head["types"]), "scopes": None, "now": ctx.now}
        await self.repo.provision(schema, entity, rows, actor=ctx.actor)

    async def delete_entity(self, ctx: RequestContext, entity_id: str) -> None:
        check_entity_id(entity_id)
        schema = await self.schema(ctx, write=False)
        head = await self.repo.entity(schema, entity_id)
        if head is not None:
            await self.access.check(ctx, schema, Operation.DELETE, head)
        current = False
        if self.entities is not None:
            try:
                await self.entities.delete(ctx, entity_id)
                current = True
            except ResourceNotFound:
                pass
        if not await self.repo.delete_entity(schema, entity_id) and not current:
            raise ResourceNotFound(f"temporal entity {entity_id} not found")

    async def delete_attr(
        self, ctx: RequestContext, entity_id: str, attr: str, dataset: str | None, every: bool
    ) -> None:
        check_entity_id(entity_id)
        schema = await self.schema(ctx, write=False)
        head = await self.repo.entity(schema, entity_id)
        if head is None:
            raise ResourceNotFound(f"temporal entity {entity_id} not found")
        await self.access.check(ctx, schema, Operation.UPDATE, head)
        iri = expand_attr_name(ctx.terms, attr)
        if not await self.repo.delete_attr(schema, entity_id, iri, dataset, every):
            raise ResourceNotFound(f"attribute {attr} of {entity_id} not found")

    async def modify_instance(
        self, ctx: RequestContext, entity_id: str, attr: str, instance_id: str, body: object
    ) -> None:
        check_entity_id(entity_id)
        schema = await self.schema(ctx, write=False)
        await self._may_change(ctx, schema, entity_id)
        iri = expand_attr_name(ctx.terms, attr)
        if not isinstance(body, dict):
            raise BadRequestData("the body must be a JSON object holding the attribute")
        raw = body.get(attr, body) if attr in body else body
        if isinstance(raw, list):
            if len(raw) != 1:
                raise BadRequestData("exactly one instance can replace an instance")
            raw = raw[0]
        inst = parse_instance(attr, raw, ctx.terms, ctx.now)
        row = instance_row(entity_id, iri, inst, ctx.now)
        uuid = instance_uuid(instance_id)
        if not await self.repo.modify_instance(schema, entity_id, iri, uuid, row, ctx.actor):
            raise ResourceNotFound(f"attribute instance {instance_id} of {attr} not found")

    async def _may_change(self, ctx: RequestContext, schema: str, entity_id: str) -> None:
        """A change of one instance needs the right to change the entity (404/403)."""
        if self.access.enforcer is None:
            return
        head = await self.repo.entity(schema, entity_id)
        if head is not None:
            await self.access.check(ctx, schema, Operation.UPDATE, head)

    async def delete_instance(
        self, ctx: RequestContext, entity_id: str, attr: str, instance_id: str
    ) -> None:
        check_entity_id(entity_id)
        schema = await self.schema(ctx, write=False)
        await self._may_change(ctx, schema, entity_id)
        iri = expand_attr_name(ctx.terms, attr)
        uuid = instance_uuid(instance_id)
        if not await self.repo.delete_instance(schema, entity_id, iri, uuid):
            raise ResourceNotFound(f"attribute instance {instance_id} of {attr} not found")


def _by_entity(rows: list[Any]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(row["entity_id"], []).append(row)
    return out
