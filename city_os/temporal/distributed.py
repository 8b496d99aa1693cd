"""The temporal side of distributed operations: what TemporalService hands the federation hook.

Layer: temporal/ at the core level (no I/O of its own). ``distributed_retrieve`` and
``distributed_query`` call the installed ``TemporalFederation`` (federation/distributed_temporal.py)
with the local operation as a callable; they answer None when no context source matches, and
the service then runs the local operation as without federation. ``TemporalResult`` (what the
temporal service answers) lives here so both sides share it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from city_os.core.query import selection_of
from city_os.core.request import RequestContext
from city_os.ngsild.query.entity_selection import Selection
from city_os.store.postgres.temporal import InstanceFilter
from city_os.temporal.render import TemporalOptions, project

if TYPE_CHECKING:
    from city_os.temporal.service import TemporalService


@dataclass(frozen=True)
class TemporalResult:
    bodies: list[dict[str, Any]]
    content_range: str | None = None  # set when instances were cut (206)
    total: int | None = None  # entities, with count=true
    more: bool = False  # entities after this page
    # where each entity came from (EntityMap entries, §5.14: "@none" = here, else registration
    # ids); None: every entity is local
    places: dict[str, list[str]] | None = None


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int
    count: bool
    descending: bool = False
    local: bool = False


async def distributed_retrieve(
    service: TemporalService,
    ctx: RequestContext,
    entity_id: str,
    f: InstanceFilter,
    opts: TemporalOptions,
    local: bool,
) -> TemporalResult | None:
    assert service.federation is not None

    whole = replace(opts, pick=None, omit=None)  # merged by id: projected after the merge

    async def mine() -> tuple[dict[str, Any], str | None]:
        found = await service.retrieve_local(ctx, entity_id, f, whole)
        return found.bodies[0], found.content_range

    merged = await service.federation.retrieve(
        ctx,
        entity_id,
        mine,
        attrs=f.attrs,
        local_only=local,
        aggregated=opts.format == "aggregated",
        last_n=f.query.last_n,
        timeproperty=opts.timeproperty,
    )
    if merged is None:
        return None
    body, content_range, places = merged
    return TemporalResult([project(body, opts)], content_range, places={entity_id: places})


async def distributed_query(
    service: TemporalService,
    ctx: RequestContext,
    sel: Selection,
    f: InstanceFilter,
    opts: TemporalOptions,
    page: Page,
) -> TemporalResult | None:
    from city_os.federation.distributed_temporal import TemporalPage

    assert service.federation is not None

    whole = replace(opts, pick=None, omit=None)  # merged by id: projected after the merge

    async def mine(window: int) -> TemporalPage:
        found = await service.query_local(
            ctx, sel, f, whole, limit=window, offset=0, count=page.count,
            descending=page.descending, local=page.local,
        )  # fmt: skip
        return TemporalPage(found.bodies, found.content_range, found.total, found.more)

    merged = await service.federation.query(
        ctx,
        selection_of(ctx, sel),
        mine,
        limit=page.limit,
        offset=page.offset,
        count=page.count,
        attrs=sel.attrs,
        local_only=page.local,
        descending=page.descending,
        aggregated=opts.format == "aggregated",
        last_n=f.query.last_n,
        timeproperty=opts.timeproperty,
    )
    if merged is None:
        return None
    bodies = [project(b, opts) for b in merged.bodies]
    return TemporalResult(bodies, merged.content_range, merged.total, merged.more, merged.places)
