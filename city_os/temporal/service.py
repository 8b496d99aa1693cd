"""Temporal operations (§5.6.11-5.6.19 provision, §5.7.3-5.7.4 consumption): what each means.

Layer: temporal/ at the core level: takes a RequestContext, parses with ngsild/ and
temporal/params, stores and reads through store.postgres.temporal, renders with
temporal/render. No aiohttp, no SQL text. Instance pages are cut at ``max_instances`` per
entity, on a change of instant, so consecutive pages (next timeAt = the range end) see every
instance exactly once (§6.3.10).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from city_os.core.entities import EntityService
from city_os.core.request import RequestContext
from city_os.errors import AlreadyExists, BadRequestData, ResourceNotFound
from city_os.ngsild.entity import (
    ENTITY_MEMBERS,
    OUTPUT_ONLY_MEMBERS,
    RESERVED_ATTRIBUTE_NAMES,
    VALUE_KEY,
    check_datetime,
    check_entity_id,
    expand_attr_name,
    is_null_encoding,
    is_uri,
    parse_instance,
    parse_scopes,
    parse_types,
)
from city_os.ngsild.query.entity_selection import Names, Selection
from city_os.ngsild.query.evaluate import compile_selection
from city_os.ngsild.representation import EntityRecord
from city_os.store.postgres.db import Tenants
from city_os.store.postgres.temporal import InstanceFilter, TemporalRepository
from city_os.temporal.render import (
    INSTANCE_PREFIX,
    Row,
    TemporalOptions,
    iso,
    project,
    render_aggregated,
    render_entity,
)


@dataclass(frozen=True)
class TemporalResult:
    bodies: list[dict[str, Any]]
    content_range: str | None = None  # set when instances were cut (206)
    total: int | None = None  # entities, with count=true
    more: bool = False  # entities after this page


def names(ctx: RequestContext) -> Names:
    return Names(type=ctx.terms.expand_type, attr=lambda term: expand_attr_name(ctx.terms, term))


def parse_temporal_entity(
    body: object, ctx: RequestContext, *, id_required: bool = True
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """A temporal entity (§5.2.37): entity members and, per attribute IRI, its instances (an
    instance or an array of instances, several per datasetId allowed)."""
    if not isinstance(body, dict):
        raise BadRequestData("a temporal entity must be a JSON object")
    head: dict[str, Any] = {"id": None, "types": [], "scopes": None}
    if id_required:
        head["id"] = check_entity_id(body.get("id", body.get("@id")))
        raw_type = body.get("type", body.get("@type"))
        if raw_type is None:
            raise BadRequestData("entity type is missing")
        head["types"] = parse_types(ctx.terms, raw_type, ctx.limits)
    if "scope" in body:
        head["scopes"] = parse_scopes(body["scope"])
    attrs: dict[str, list[dict[str, Any]]] = {}
    for name, raw in body.items():
        if name in ENTITY_MEMBERS or name == "expiresAt":
            continue
        if name in RESERVED_ATTRIBUTE_NAMES or name in OUTPUT_ONLY_MEMBERS:
            raise BadRequestData(f"{name!r} is a reserved NGSI-LD member, not an attribute name")
        iri = expand_attr_name(ctx.terms, name)
        attrs[iri] = [_parse_instance(name, x, ctx) for x in _items(raw)]
    if "expiresAt" in body:  # 5.5.4: no NGSI-LD Null as a first-level member here
        check_datetime(body["expiresAt"], "expiresAt")
    return head, attrs


DELETED = "__deleted__"  # marks a parsed instance that records a deletion (§4.5.7)


def _parse_instance(name: str, raw: Any, ctx: RequestContext) -> dict[str, Any]:
    """One instance; one whose value is the NGSI-LD Null is a deletion in the history
    (the deleted-instance representation of §4.5.7 is legal temporal input, ETSI 5611_01)."""
    if isinstance(raw, dict):
        kind = raw.get("type", "Property")
        member = VALUE_KEY.get(kind, "value") if isinstance(kind, str) else "value"
        if member in raw and is_null_encoding(kind, raw[member]):
            inst: dict[str, Any] = {"type": kind, member: raw[member], DELETED: True}
            for key in ("datasetId", "observedAt"):
                if key in raw:
                    inst[key] = check_datetime(raw[key], key) if key == "observedAt" else raw[key]
            return inst
    return parse_instance(name, raw, ctx.terms, ctx.now)


def _items(raw: Any) -> list[Any]:
    """An attribute of a temporal entity: one instance or an array of instances."""
    if isinstance(raw, list) and raw and all(isinstance(x, dict) for x in raw):
        return raw
    return [raw]


def split_latest(
    body: dict[str, Any], attrs: dict[str, list[dict[str, Any]]], ctx: RequestContext
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The newest instance of each attribute and datasetId (by observedAt, else the last one
    given) as an entity fragment in the request's own terms, and the other instances (parsed):
    the fragment goes through the entity API (current state, events, captured history), the
    others straight into the history."""
    fragment: dict[str, Any] = {}
    rest: dict[str, list[dict[str, Any]]] = {}
    for name, raw in body.items():
        if name in ENTITY_MEMBERS or name == "expiresAt":
            if name in ("id", "@id", "type", "@type", "scope"):
                fragment[name] = raw
            continue
        iri = expand_attr_name(ctx.terms, name)
        parsed = attrs[iri]
        newest: dict[str, int] = {}
        for i, inst in enumerate(parsed):
            if inst.get(DELETED):
                continue  # a deletion is history only
            ds = inst.get("datasetId") or ""
            j = newest.get(ds)
            if j is None or (inst.get("observedAt") or "~") >= (parsed[j].get("observedAt") or ""):
                newest[ds] = i
        raws = _items(raw)
        keep = sorted(newest.values())
        if keep:
            fragment[name] = raws[keep[0]] if len(keep) == 1 else [raws[k] for k in keep]
        others = [inst for i, inst in enumerate(parsed) if i not in newest.values()]
        if others:
            rest[iri] = others
    return fragment, rest


def instance_row(entity_id: str, attr: str, inst: dict[str, Any], now: str) -> dict[str, Any]:
    skip = ("createdAt", "modifiedAt", "observedAt", DELETED)
    stored = {k: v for k, v in inst.items() if k not in skip}
    return {
        "entity_id": entity_id,
        "attr": attr,
        "dataset_id": inst.get("datasetId") or "",
        "observed_at": inst.get("observedAt"),
        "created_at": now,
        "modified_at": now,
        "deleted_at": now if inst.get(DELETED) else None,
        "inst": stored,
    }


def _instance_uuid(raw: str) -> str:
    """The uuid of an instanceId: 400 when it is not a URI, 404 when no instance can have it."""
    if not is_uri(raw):
        raise BadRequestData(f"instanceId {raw!r} is not a URI")
    value = raw.removeprefix(INSTANCE_PREFIX)
    if (
        len(value) != 36
        or value.count("-") != 4
        or not all(c in "0123456789abcdefABCDEF-" for c in value)
    ):
        raise ResourceNotFound(f"attribute instance {raw} not found")
    return value


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

    async def schema(self, ctx: RequestContext, *, write: bool) -> str:
        return await self.tenants.schema(ctx.tenant, create=write)

    # -------------------------------------------------------------- consumption

    async def retrieve(
        self, ctx: RequestContext, entity_id: str, f: InstanceFilter, opts: TemporalOptions
    ) -> TemporalResult:
        check_entity_id(entity_id)
        schema = await self.schema(ctx, write=False)
        head = await self.repo.entity(schema, entity_id)
        if head is None:
            raise ResourceNotFound(f"temporal entity {entity_id} not found")
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
        typed = any(s.types is not None for s in sel.selectors)
        if not (typed or local or sel.attrs or sel.q is not None or sel.geo is not None):
            raise BadRequestData(
                "a temporal query needs at least one of type, attrs, q, geoQ or local=true"
            )
        schema = await self.schema(ctx, write=False)
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
        )
        if post_filter:
            heads = await self._matching(ctx, schema, sel, heads)
            total = len(heads) if count else None
            heads = heads[offset : offset + limit + 1]
        more = len(heads) > limit
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
            rows = await self.repo.aggregate(schema, ids, f)
            by_id = _by_entity(rows)
            bodies = [render_aggregated(h, by_id.get(h["id"], []), ctx.terms, opts) for h in heads]
            return TemporalResult([project(b, opts) for b in bodies])
        descending = f.query.last_n is not None
        by_id = _by_entity(await self.repo.instances(schema, ids, f, self.max_instances))
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
            content_range = _content_range(f, ranges, descending)
        return TemporalResult(bodies, content_range)

    # ---------------------------------------------------------------- provision

    async def create_or_update(self, ctx: RequestContext, body: object) -> bool:
        """POST /temporal/entities: a new temporal entity (True) or instances added (False)."""
        head, attrs = parse_temporal_entity(body, ctx)
        assert isinstance(body, dict)
        schema = await self.schema(ctx, write=True)
        existed = await self.repo.entity(schema, head["id"]) is not None
        if self.entities is not None:
            fragment, attrs = split_latest(body, attrs, ctx)
            await self._write_current(ctx, schema, head["id"], fragment)
        rows = [
            instance_row(head["id"], a, i, ctx.now) for a, insts in attrs.items() for i in insts
        ]
        await self.repo.provision(schema, {**head, "now": ctx.now}, rows)
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
        await self.repo.provision(schema, entity, rows)

    async def delete_entity(self, ctx: RequestContext, entity_id: str) -> None:
        check_entity_id(entity_id)
        schema = await self.schema(ctx, write=False)
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
        if await self.repo.entity(schema, entity_id) is None:
            raise ResourceNotFound(f"temporal entity {entity_id} not found")
        iri = expand_attr_name(ctx.terms, attr)
        if not await self.repo.delete_attr(schema, entity_id, iri, dataset, every):
            raise ResourceNotFound(f"attribute {attr} of {entity_id} not found")

    async def modify_instance(
        self, ctx: RequestContext, entity_id: str, attr: str, instance_id: str, body: object
    ) -> None:
        check_entity_id(entity_id)
        schema = await self.schema(ctx, write=False)
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
        uuid = _instance_uuid(instance_id)
        if not await self.repo.modify_instance(schema, entity_id, iri, uuid, row):
            raise ResourceNotFound(f"attribute instance {instance_id} of {attr} not found")

    async def delete_instance(
        self, ctx: RequestContext, entity_id: str, attr: str, instance_id: str
    ) -> None:
        check_entity_id(entity_id)
        schema = await self.schema(ctx, write=False)
        iri = expand_attr_name(ctx.terms, attr)
        uuid = _instance_uuid(instance_id)
        if not await self.repo.delete_instance(schema, entity_id, iri, uuid):
            raise ResourceNotFound(f"attribute instance {instance_id} of {attr} not found")


def _content_range(f: InstanceFilter, ranges: list[tuple[Any, Any]], descending: bool) -> str:
    """§6.3.10: ``date-time <start>-<end>/<size>``; the range starts at the requested bound
    (timeAt, or endTimeAt for lastN between) when there is one, else at the first instance
    returned, and ends at the last instance returned."""
    tq = f.query
    if descending:
        first = max(r[0] for r in ranges)
        last = max(r[1] for r in ranges)
        if tq.timerel == "before":
            first = tq.time_at
        elif tq.timerel == "between":
            first = tq.end_time_at
    else:
        first = min(r[0] for r in ranges)
        last = min(r[1] for r in ranges)
        if tq.timerel in ("after", "between"):
            first = tq.time_at
    size = str(tq.last_n) if tq.last_n else "*"
    return f"date-time {iso(first)}-{iso(last)}/{size}"


def _by_entity(rows: list[Any]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(row["entity_id"], []).append(row)
    return out
