"""EntityMaps (§5.14, §5.5.14, §6.32-6.34): which entity of a query lives where, kept for its pages.

Layer: federation/. An EntityMap is made for a query (GET /entityMaps?…, or ``entityMap=true``
on GET /entities): every matching entity id with the places that hold it — ``@none`` for this
broker, else the ids of the registrations whose sources answered it. A query sent with the
``NGSILD-EntityMap`` header then works on exactly those candidates: this broker is asked for
its ids, each source for its own (``id=`` list), the fragments are merged and the pages cut in
map order, so paging through a distributed query shows every entity exactly once even while
sources change. An entity that no longer fits the query is skipped (the page still fills from
the remaining candidates) and pruned from the map. Maps expire: the broker bounds the lifetime
asked for (``entityMapLifetime``, ISO 8601 duration; updates of ``expiresAt``); an expired
map is not served (404).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from city_os.core.query import EntityQuery, Page, QueryResult, QueryService, names, selection_of
from city_os.core.request import RequestContext
from city_os.errors import BadRequestData, NgsiLdError, NonexistentTenant, ResourceNotFound
from city_os.federation.distributed import MAX_SOURCE_PAGE, QUERY_OPERATIONS, Federation
from city_os.federation.merge import Fragment, group_by_id, merge_entity
from city_os.ngsild.entity import check_datetime, is_uri, parse_datetime
from city_os.ngsild.query.entity_selection import EntitySelector
from city_os.ngsild.representation import EntityRecord
from city_os.store.postgres.entitymaps import EntityMapRepository, StoredMap

HEADER = "NGSILD-EntityMap"
LOCAL = "@none"
DEFAULT_LIFETIME = timedelta(hours=1)
MAX_LIFETIME = timedelta(days=1)
MAX_ENTRIES = 10_000  # entities one map holds
_DURATION = re.compile(
    r"P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)


def parse_lifetime(raw: str | None) -> timedelta:
    """``entityMapLifetime``: an ISO 8601 duration (days, hours, minutes, seconds), bounded."""
    if raw is None:
        return DEFAULT_LIFETIME
    match = _DURATION.fullmatch(raw)
    if match is None or raw in ("P", "PT") or raw.endswith("T"):
        raise BadRequestData(f"entityMapLifetime {raw!r} is not an ISO 8601 duration")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    asked = timedelta(
        days=parts.get("d", 0), hours=parts.get("h", 0), minutes=parts.get("m", 0),
        seconds=parts.get("s", 0),
    )  # fmt: skip
    if asked <= timedelta(0):
        raise BadRequestData("entityMapLifetime must be longer than zero")
    return min(asked, MAX_LIFETIME)


@dataclass(frozen=True)
class TimeWindow:
    """``timerel``/``timeAt``/``endTimeAt``/``timeproperty`` of a temporal EntityMap."""

    timerel: str
    time_at: datetime
    end_time_at: datetime | None = None
    timeproperty: str = "observedAt"

    @classmethod
    def parse(
        cls, timerel: str | None, time_at: str | None, end: str | None, prop: str | None
    ) -> TimeWindow:
        if timerel is None:
            raise BadRequestData("a temporal EntityMap needs a temporal query (timerel, timeAt)")
        if timerel not in ("before", "after", "between"):
            raise BadRequestData(f"timerel must be before, after or between, not {timerel!r}")
        if time_at is None:
            raise BadRequestData("timerel needs timeAt")
        if timerel == "between" and end is None:
            raise BadRequestData("timerel=between needs endTimeAt")
        prop = prop or "observedAt"
        if prop not in ("observedAt", "createdAt", "modifiedAt", "deletedAt"):
            raise BadRequestData(f"timeproperty {prop!r} is not supported")

        def moment(raw: str, what: str) -> datetime:
            value = parse_datetime(check_datetime(raw, what))
            return value if value.tzinfo else value.replace(tzinfo=UTC)

        ending = moment(end, "endTimeAt") if end is not None else None
        return cls(timerel, moment(time_at, "timeAt"), ending, prop)

    def holds(self, record: EntityRecord) -> bool:
        """Whether the entity has an instance whose time falls in the window."""
        for raw in self._times(record):
            try:
                moment = parse_datetime(raw)
            except (ValueError, NgsiLdError):
                continue
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            if self.timerel == "before" and moment < self.time_at:
                return True
            if self.timerel == "after" and moment > self.time_at:
                return True
            end = self.end_time_at
            if self.timerel == "between" and end and self.time_at <= moment < end:
                return True
        return False

    def _times(self, record: EntityRecord) -> list[str]:
        if self.timeproperty == "createdAt":
            return [record.created_at]
        if self.timeproperty == "modifiedAt":
            return [record.modified_at]
        return [
            i[self.timeproperty]
            for instances in record.attrs.values()
            for i in instances
            if isinstance(i.get(self.timeproperty), str)
        ]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def map_id_of(value: str) -> str:
    """The map id from an ``NGSILD-EntityMap`` value (its URL) or a path segment."""
    map_id = unquote(value.strip().rstrip("/").rsplit("/", 1)[-1])
    if not is_uri(map_id):
        raise BadRequestData(f"EntityMap id {map_id!r} is not a URI")
    return map_id


class EntityMapService:
    def __init__(
        self,
        repo: EntityMapRepository,
        queries: QueryService,
        federation: Federation | None,
        base_url: str,
    ) -> None:
        self.repo = repo
        self.queries = queries
        self.federation = federation
        self.base_url = base_url

    def location(self, map_id: str) -> str:
        from urllib.parse import quote

        return f"{self.base_url}/ngsi-ld/v1/entityMaps/{quote(map_id, safe=':')}"

    # -------------------------------------------------------------- the map

    async def create(
        self, ctx: RequestContext, query: EntityQuery, lifetime: str | None
    ) -> dict[str, Any]:
        duration = parse_lifetime(lifetime)
        # Validates the query as a query would be (too wide, bad q, …) before any source call.
        await self.queries.local_query(ctx, query, Page(limit=0, count=True))
        entries = await self._collect(ctx, query)
        stored = StoredMap(
            f"urn:ngsi-ld:EntityMap:{uuid.uuid4()}",
            datetime.now(UTC) + duration,
            [(k, v) for k, v in ctx.params if k not in ("entityMap", "entityMapLifetime")],
            entries,
        )
        await self.repo.sweep()
        await self.repo.insert(ctx.tenant, stored)
        return self.render(stored)

    async def create_from(
        self, ctx: RequestContext, entries: list[tuple[str, list[str]]], lifetime: str | None
    ) -> dict[str, Any]:
        """A map of entries already known (a temporal retrieve or query, §5.7.3.4, §5.7.4.4)."""
        stored = StoredMap(
            f"urn:ngsi-ld:EntityMap:{uuid.uuid4()}",
            datetime.now(UTC) + parse_lifetime(lifetime),
            [(k, v) for k, v in ctx.params if k not in ("entityMap", "entityMapLifetime")],
            entries[:MAX_ENTRIES],
        )
        await self.repo.sweep()
        await self.repo.insert(ctx.tenant, stored)
        return self.render(stored)

    async def create_temporal(
        self,
        ctx: RequestContext,
        query: EntityQuery,
        when: TimeWindow,
        lifetime: str | None,
    ) -> dict[str, Any]:
        """A map for a temporal query (§5.14.5): the local entities with instances inside the
        window of ``timeproperty`` (createdAt, modifiedAt, observedAt)."""
        duration = parse_lifetime(lifetime)
        found = await self.queries.local_query(ctx, query, Page(limit=MAX_ENTRIES))
        entries = [(r.id, [LOCAL]) for r in found.records if when.holds(r)]
        stored = StoredMap(
            f"urn:ngsi-ld:EntityMap:{uuid.uuid4()}",
            datetime.now(UTC) + duration,
            [(k, v) for k, v in ctx.params if k != "entityMapLifetime"],
            entries,
        )
        await self.repo.sweep()
        await self.repo.insert(ctx.tenant, stored)
        return self.render(stored)

    def render(self, stored: StoredMap) -> dict[str, Any]:
        return {
            "id": stored.id,
            "type": "EntityMap",
            "expiresAt": _iso(stored.expires_at),
            "entityMap": {entity_id: places for entity_id, places in stored.entries},
        }

    async def get(self, tenant: str, map_id: str) -> StoredMap:
        if not is_uri(map_id):
            raise BadRequestData(f"EntityMap id {map_id!r} is not a URI")
        stored = await self.repo.get(tenant, map_id)
        if stored is None:
            raise ResourceNotFound(f"EntityMap {map_id} not found (or expired)")
        return stored

    async def update(self, tenant: str, map_id: str, body: Any) -> None:
        """Only ``expiresAt`` may change (``entityMap`` is the broker's, ignored); the broker
        bounds it to its longest lifetime from now."""
        if not isinstance(body, dict):
            raise BadRequestData("the EntityMap fragment must be a JSON object")
        await self.get(tenant, map_id)
        raw = body.get("expiresAt")
        if raw is None:
            return
        expires = parse_datetime(check_datetime(raw, "expiresAt"))
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        bound = datetime.now(UTC) + MAX_LIFETIME
        if not await self.repo.set_expiry(tenant, map_id, min(expires, bound)):
            raise ResourceNotFound(f"EntityMap {map_id} not found (or expired)")

    async def delete(self, tenant: str, map_id: str) -> None:
        if not is_uri(map_id):
            raise BadRequestData(f"EntityMap id {map_id!r} is not a URI")
        if not await self.repo.delete(tenant, map_id):
            raise ResourceNotFound(f"EntityMap {map_id} not found (or expired)")

    async def _collect(
        self, ctx: RequestContext, query: EntityQuery
    ) -> list[tuple[str, list[str]]]:
        places: dict[str, list[str]] = {}
        try:
            schema = await self.queries.entities.schema(ctx, write=False)
        except NonexistentTenant:
            schema = None
        if schema is not None:
            access = self.queries.entities.access
            visible = await access.visible(ctx) if access is not None else None
            for entity_id in await self.queries.repo.ids(
                schema, query.selection, names(ctx), visible
            ):
                places.setdefault(entity_id, []).append(LOCAL)
        if self.federation is not None:
            sel = query.selection
            sources = await self.federation.sources(
                ctx,
                QUERY_OPERATIONS,
                local=query.local,
                attrs=sel.attrs,
                **selection_of(ctx, sel),
            )
            answers = await asyncio.gather(
                *(self.federation.ask(ctx, s, limit=MAX_SOURCE_PAGE) for s in sources)
            )
            for source, answer in zip(sources, answers, strict=True):
                for fragment in self.federation.fragments(ctx, source, answer):
                    places.setdefault(fragment.record.id, []).append(source.registration.id)
        return list(places.items())[:MAX_ENTRIES]

    # ------------------------------------------------------------- its pages

    async def page(
        self, ctx: RequestContext, query: EntityQuery, page: Page, map_id: str
    ) -> QueryResult:
        """A page of the query over the map's candidates (pruning what no longer fits)."""
        stored = await self.get(ctx.tenant, map_id)
        local_ids = [i for i, p in stored.entries if LOCAL in p]
        fragments: list[Fragment] = []
        if local_ids:
            only = _only_ids(query, local_ids)
            found = await self.queries.local_query(ctx, only, Page(limit=len(local_ids), offset=0))
            fragments.extend(Fragment(r, "local") for r in found.records)
        if self.federation is not None:
            fragments.extend(await self._remote(ctx, query, stored))
        merged = {r.id: r for r in (merge_entity(g) for g in group_by_id(fragments))}
        gone = [i for i, _ in stored.entries if i not in merged]
        await self.repo.prune(ctx.tenant, stored.id, gone)
        ordered = [merged[i] for i, _ in stored.entries if i in merged]
        window = ordered[page.offset : page.offset + page.limit]
        more = len(ordered) > page.offset + page.limit
        return QueryResult(window, len(ordered) if page.count else None, more=more)

    async def _remote(
        self, ctx: RequestContext, query: EntityQuery, stored: StoredMap
    ) -> list[Fragment]:
        assert self.federation is not None
        by_source: dict[str, list[str]] = {}
        for entity_id, places in stored.entries:
            for place in places:
                if place != LOCAL:
                    by_source.setdefault(place, []).append(entity_id)
        if not by_source:
            return []
        sel = query.selection
        sources = await self.federation.sources(
            ctx, QUERY_OPERATIONS, attrs=sel.attrs, **selection_of(ctx, sel)
        )
        sources = [s for s in sources if s.registration.id in by_source]
        calls = []
        for source in sources:
            ids = by_source[source.registration.id]
            params = [(k, v) for k, v in ctx.params if k not in ("id", "idPattern")]
            scoped = replace(ctx, params=(*params, ("id", ",".join(ids))))
            calls.append(self.federation.ask(scoped, source, limit=len(ids)))
        answers = await asyncio.gather(*calls)
        out: list[Fragment] = []
        for source, answer in zip(sources, answers, strict=True):
            out.extend(self.federation.fragments(ctx, source, answer))
        return out


def _only_ids(query: EntityQuery, ids: list[str]) -> EntityQuery:
    """The query restricted to ``ids`` (each selector keeps its types and pattern)."""
    sel = query.selection
    wanted = set(ids)
    if not sel.selectors:
        selectors: tuple[EntitySelector, ...] = (EntitySelector(ids=tuple(ids)),)
    else:
        selectors = tuple(
            replace(s, ids=tuple(i for i in (s.ids or ids) if i in wanted) or ("urn:none",))
            for s in sel.selectors
        )
    return replace(query, selection=replace(sel, selectors=selectors))


async def map_of_retrieve(
    maps: EntityMapService,
    ctx: RequestContext,
    entity_id: str,
    *,
    used: str | None,
    make: bool,
    lifetime: str | None,
    places: list[str] | None = None,
) -> str | None:
    """The ``NGSILD-EntityMap`` of a retrieve (§5.7.1.4): a live map referenced by the request is
    used and its location returned unchanged; an unknown or expired one is no error — a new map
    is made, as for ``entityMap=true``, holding the entity and where it was found (``@none``
    here). ``None``: the request asked for no map."""
    if used is not None:
        try:
            await maps.get(ctx.tenant, map_id_of(used))
        except ResourceNotFound:
            make = True
        else:
            return used
    if not make:
        return None
    doc = await maps.create_from(ctx, [(entity_id, places or [LOCAL])], lifetime)
    return maps.location(doc["id"])
