"""The selection filter: ``idPattern``, ``q``, ``geoQ`` and ``scopeQ`` of subscriptions.

Layer: notifier/. Decides whether the entity state a change left (the state before, for a
deletion) satisfies a subscription's selection, in process (ngsild/query/evaluate.py, proven
equal to the SQL engine), microseconds per test and no database round trip — except for a
``q`` that follows Relationships (``rel{attr}``): the entities those paths reach are read from
the store (their current state), all of a batch's at once, level by level.
"""

from __future__ import annotations

from collections import defaultdict

from city_os.errors import NgsiLdError
from city_os.ngsild.representation import EntityRecord
from city_os.notifier.compile import Subscription
from city_os.notifier.match import Change
from city_os.store.postgres.db import Tenants
from city_os.store.postgres.entities import EntityRepository

MAX_LINK_LEVELS = 8


class SelectionFilter:
    def __init__(self, entities: EntityRepository, tenants: Tenants) -> None:
        self._entities = entities
        self._tenants = tenants

    async def keep(self, pairs: list[tuple[Subscription, Change]]) -> list[bool]:
        """For each (subscription, change): does the subscription's selection hold?"""
        states = [state_of(change) for _, change in pairs]
        linked = await self._linked(pairs, states)
        return [
            sub.compiled.matches(state, linked=linked.get(sub.tenant, {}).get)
            for (sub, _), state in zip(pairs, states, strict=True)
        ]

    async def _linked(
        self, pairs: list[tuple[Subscription, Change]], states: list[EntityRecord]
    ) -> dict[str, dict[str, EntityRecord]]:
        """The entities the q of these subscriptions follows, per tenant."""
        known: dict[str, dict[str, EntityRecord]] = defaultdict(dict)
        following = [
            (sub, state)
            for (sub, _), state in zip(pairs, states, strict=True)
            if sub.compiled.follows_links
        ]
        for _ in range(MAX_LINK_LEVELS):
            wanted: dict[str, set[str]] = defaultdict(set)
            for sub, state in following:
                ids = sub.compiled.linked_ids(state, known[sub.tenant].get)
                wanted[sub.tenant].update(ids - known[sub.tenant].keys())
            if not any(wanted.values()):
                break
            for tenant, ids in wanted.items():
                try:
                    schema = await self._tenants.schema(tenant, create=False)
                except NgsiLdError:
                    continue
                found = await self._entities.get_many(schema, sorted(ids))
                known[tenant].update((i, s.record) for i, s in found.items())
                for missing in ids - found.keys():
                    known[tenant].setdefault(missing, _ABSENT)
        return {t: {i: r for i, r in m.items() if r is not _ABSENT} for t, m in known.items()}


_ABSENT = EntityRecord("", [], {}, None, "", "")  # looked up, not stored


def state_of(change: Change) -> EntityRecord:
    """The entity state a subscription's selection is evaluated on: after the change, or,
    for a deletion, before it (rebuilt from the change's previous instances)."""
    if change.record is not None:
        return change.record
    system = change.system or {}
    return EntityRecord(
        id=change.entity_id,
        types=change.types,
        attrs=dict(change.before),
        scopes=system.get("scopes"),
        created_at=system.get("createdAt") or change.time,
        modified_at=system.get("modifiedAt") or change.time,
    )
