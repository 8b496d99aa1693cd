"""The selection filter: ``idPattern``, ``q``, ``geoQ`` and ``scopeQ`` of subscriptions.

Layer: notifier/. The one place that decides whether an entity state satisfies the expressions
of a subscription's selection: the state the change left (the state before, for a deletion).
It asks the SQL query engine (store/postgres/query.py ``matching``, the reference semantics)
about those states, one statement per subscription and consumed batch. This is the adapter the
in-process evaluator (ngsild/query/evaluate.py, ``CompiledSelection.matches``) replaces: the
same question answered without a database round trip.
"""

from __future__ import annotations

from collections import defaultdict

from city_os.errors import NgsiLdError
from city_os.ngsild.representation import EntityRecord
from city_os.notifier.compile import Subscription
from city_os.notifier.match import Change
from city_os.store.postgres.db import Tenants
from city_os.store.postgres.query import QueryRepository


class SelectionFilter:
    def __init__(self, queries: QueryRepository, tenants: Tenants) -> None:
        self._queries = queries
        self._tenants = tenants

    async def keep(self, pairs: list[tuple[Subscription, Change]]) -> list[bool]:
        """For each (subscription, change) whose subscription is ``filtered``: does it pass?"""
        asked: dict[tuple[str, str], list[int]] = defaultdict(list)
        for n, (sub, _) in enumerate(pairs):
            asked[sub.key].append(n)
        answers = [False] * len(pairs)
        for positions in asked.values():
            sub = pairs[positions[0]][0]
            try:
                schema = await self._tenants.schema(sub.tenant, create=False)
            except NgsiLdError:
                continue
            # Each change is judged on its own state; one statement holds one state per entity.
            while positions:
                rounds: dict[str, int] = {}
                later = []
                for n in positions:
                    if pairs[n][1].entity_id in rounds:
                        later.append(n)
                    else:
                        rounds[pairs[n][1].entity_id] = n
                states = [state_of(pairs[n][1]) for n in rounds.values()]
                found = await self._queries.matching(schema, sub.selection, sub.names, states)
                for entity_id, n in rounds.items():
                    answers[n] = entity_id in found
                positions = later
        return answers


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
