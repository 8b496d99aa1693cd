"""EntityMaps on the temporal API (§5.7.3.4, §5.7.4.4, §5.5.14): ``entityMap=true`` and the
``NGSILD-EntityMap`` header on GET /temporal/entities/{id}, GET /temporal/entities and
POST /temporal/entityOperations/query.

Layer: federation/ (like federation/entitymap.py, over the temporal service). A temporal
retrieve or query asking for a map gets one made of the entities it found and where each came
from (``@none`` here, else the registration ids). A query sent with the header of a live map
works on that map's entities only (their ids replace the selection's, for the local store and
for the sources), and the header is echoed; an unknown or expired map is not an error: a new
map is made, as when ``entityMap=true`` is given (5.7.4.4: "if no EntityMap currently exists,
a new EntityMap shall be created"). A query that makes a map answers 201 and the map holds
every matching entity (up to the map's bound), not only the page's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from city_os.core.request import RequestContext
from city_os.errors import ResourceNotFound
from city_os.federation.entitymap import LOCAL, MAX_ENTRIES, EntityMapService, map_id_of
from city_os.ngsild.query.entity_selection import EntitySelector, Selection
from city_os.store.postgres.temporal import InstanceFilter
from city_os.temporal.distributed import Page, TemporalResult
from city_os.temporal.render import TemporalOptions
from city_os.temporal.service import TemporalService


@dataclass(frozen=True)
class MapAnswer:
    result: TemporalResult
    header: str | None = None  # NGSILD-EntityMap of the answer
    created: bool = False  # a new map was made (a query answers 201)


async def retrieve_map(
    maps: EntityMapService, ctx: RequestContext, entity_id: str, result: TemporalResult,
    lifetime: str | None,
) -> str:  # fmt: skip
    """The location of a new map holding the retrieved entity."""
    places = (result.places or {}).get(entity_id) or [LOCAL]
    doc = await maps.create_from(ctx, [(entity_id, places)], lifetime)
    return maps.location(doc["id"])


async def query_map(
    maps: EntityMapService,
    temporal: TemporalService,
    ctx: RequestContext,
    sel: Selection,
    f: InstanceFilter,
    opts: TemporalOptions,
    page: Page,
    *,
    used: str | None,
    make: bool,
    lifetime: str | None,
) -> MapAnswer:
    if used is not None:
        try:
            stored = await maps.get(ctx.tenant, map_id_of(used))
        except ResourceNotFound:
            make = True
        else:
            ids = [i for i, _ in stored.entries]
            scoped = replace(ctx, params=_only_ids_params(ctx, ids))
            result = await temporal.query(
                scoped, _only_ids(sel, ids), f, opts, limit=page.limit, offset=page.offset,
                count=page.count, descending=page.descending, local=page.local,
            )  # fmt: skip
            return MapAnswer(result, used)
    if not make:
        result = await temporal.query(
            ctx, sel, f, opts, limit=page.limit, offset=page.offset, count=page.count,
            descending=page.descending, local=page.local,
        )  # fmt: skip
        return MapAnswer(result)
    every = await temporal.query(
        ctx, sel, f, opts, limit=MAX_ENTRIES, offset=0, count=page.count,
        descending=page.descending, local=page.local,
    )  # fmt: skip
    places = every.places or {}
    entries = [(str(b.get("id")), places.get(str(b.get("id"))) or [LOCAL]) for b in every.bodies]
    doc = await maps.create_from(ctx, entries, lifetime)
    window = page.offset + page.limit
    result = TemporalResult(
        every.bodies[page.offset : window],
        every.content_range,
        every.total,
        every.more or len(every.bodies) > window,
    )
    return MapAnswer(result, maps.location(doc["id"]), created=True)


def _only_ids_params(ctx: RequestContext, ids: list[str]) -> tuple[tuple[str, str], ...]:
    kept = tuple((k, v) for k, v in ctx.params if k not in ("id", "idPattern"))
    return (*kept, ("id", ",".join(ids) or "urn:none"))


def _only_ids(sel: Selection, ids: list[str]) -> Selection:
    """The selection restricted to ``ids`` (each selector keeps its types and pattern)."""
    wanted = set(ids)
    if not sel.selectors:
        return replace(sel, selectors=(EntitySelector(ids=tuple(ids) or ("urn:none",)),))
    selectors = tuple(
        replace(s, ids=tuple(i for i in (s.ids or ids) if i in wanted) or ("urn:none",))
        for s in sel.selectors
    )
    return replace(sel, selectors=selectors)
