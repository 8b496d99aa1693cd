"""Linked Entity retrieval (§4.5.23): fetch the entities that retrieved entities link to.

Layer: core/. Walks ``joinLevel`` levels breadth-first from the root entities; each level is one
batched lookup (``id = ANY($1)``) of the ids not seen yet, so the cost grows with the depth, not
with the number of Relationships. Which Relationships are followed, and with which projection,
is decided by the pure ``ngsild.linked.links``.
"""

from __future__ import annotations

from city_os.auth.policy import Operation
from city_os.core.entities import EntityService, RequestContext
from city_os.ngsild.linked import Join, links
from city_os.ngsild.representation import EntityRecord, RenderOptions


async def linked_entities(
    entities: EntityService,
    ctx: RequestContext,
    roots: list[EntityRecord],
    opts: RenderOptions,
    join: Join,
) -> dict[str, EntityRecord]:
    """Every entity reachable within ``join.level`` Relationships, by id (roots included)."""
    known = {r.id: r for r in roots}
    frontier = [(r, opts) for r in roots]
    schema: str | None = None
    for _ in range(join.level):
        wanted = [(target, child) for r, o in frontier for target, child in links(r, o)]
        missing = list(dict.fromkeys(t for t, _ in wanted if t not in known))
        if missing:
            schema = schema or await entities.schema(ctx, write=False)
            found = await entities.repo.get_many(schema, missing)
            hidden = {}  # access control: linked entities the caller may not read stay out
            if entities.access is not None:
                records = [s.record for s in found.values()]
                hidden = await entities.access.refusals(ctx, schema, Operation.READ, records)
            known.update((i, s.record) for i, s in found.items() if i not in hidden)
        visited: set[tuple[str, RenderOptions]] = set()
        frontier = []
        for target, child in wanted:
            if target in known and (target, child) not in visited:
                visited.add((target, child))
                frontier.append((known[target], child))
        if not frontier:
            break
    return known
