"""The selection filter: ``idPattern``, ``q``, ``geoQ`` and ``scopeQ`` of subscriptions.

Layer: notifier/. The one place that decides whether an entity state satisfies the expressions
of a subscription's selection. It asks the SQL query engine (store/postgres/query.py, the
reference semantics) about the entities' stored state, one query per subscription and consumed
batch. This is the adapter the in-process evaluator (ngsild/query/evaluate.py,
``CompiledSelection.matches``) replaces: the same question answered without a database round
trip and on the event's own state instead of the stored one. Until then an entity that is gone
(deleted, expired) cannot be asked about and passes.
"""

from __future__ import annotations

from collections import defaultdict

from city_os.errors import NgsiLdError
from city_os.notifier.compile import Subscription
from city_os.notifier.match import GONE, Change
from city_os.store.postgres.db import Tenants
from city_os.store.postgres.query import QueryRepository


class SelectionFilter:
    def __init__(self, queries: QueryRepository, tenants: Tenants) -> None:
        self._queries = queries
        self._tenants = tenants

    async def keep(self, pairs: list[tuple[Subscription, Change]]) -> list[bool]:
        """For each (subscription, change) whose subscription is ``filtered``: does it pass?"""
        asked: dict[tuple[str, str], list[int]] = defaultdict(list)
        answers = [True] * len(pairs)
        for n, (sub, change) in enumerate(pairs):
            if change.kind not in GONE:
                asked[sub.key].append(n)
        for positions in asked.values():
            sub = pairs[positions[0]][0]
            ids = list({pairs[n][1].entity_id for n in positions})
            try:
                schema = await self._tenants.schema(sub.tenant, create=False)
                found = await self._queries.matching(schema, sub.selection, sub.names, ids)
            except NgsiLdError:
                found = set()
            for n in positions:
                answers[n] = pairs[n][1].entity_id in found
        return answers
