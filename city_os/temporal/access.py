"""Per-entity access control on the temporal API (issue #10): the same decisions as the entity API.

Layer: temporal/ at the core level (no aiohttp, no SQL text). The temporal routes are ``Entity``
rules (auth/rules.py): decided here, where the temporal entity is known, by the entity API's
``EntityAccess`` (auth/enforce.py) on the temporal entity's id, types and scopes:

* a retrieve, or a write to the history of an entity the caller may not read, is 404 (ids do
  not leak); one it may read but not change is 403;
* a query ANDs the caller's readable scope into its SQL (``TemporalRepository.select``), so
  pages and counts only ever hold readable entities; consent reads of a page are logged;
* creating a temporal entity needs the right to create an entity of its types and scopes.

With authentication off ``EntityService.access`` is None and every method returns at once.
Entity permissions are keyed by entity id, so they apply to the entity's history as well; when
the entity itself is deleted its permissions go with it (tenant.sql ``forget_entity_access``),
and what remains of its history is governed by type and scope rights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from city_os.auth.enforce import EntityAccess
from city_os.auth.policy import Operation, ReadableScope
from city_os.core.entities import EntityService
from city_os.core.request import RequestContext
from city_os.ngsild.representation import EntityRecord


def record_of(head: Mapping[str, Any]) -> EntityRecord:
    """The facts of a temporal entity (a temporal_entities row, or a parsed head) as the access
    decisions take them: id, types and scopes (no attributes, no timestamps)."""
    scopes = head.get("scopes")
    return EntityRecord(
        id=head["id"],
        types=list(head["types"]),
        attrs={},
        scopes=list(scopes) if scopes else None,
        created_at="",
        modified_at="",
    )


class TemporalAccess:
    """The entity API's access decisions, applied to temporal entities."""

    def __init__(self, entities: EntityService | None) -> None:
        self._entities = entities

    @property
    def enforcer(self) -> EntityAccess | None:
        # Read at each call: the access context starts after the temporal one (app.py).
        return self._entities.access if self._entities is not None else None

    async def check(
        self, ctx: RequestContext, schema: str, operation: Operation, head: Mapping[str, Any]
    ) -> None:
        """404 for an entity the caller may not read, 403 for one it may not ``operation``."""
        enforcer = self.enforcer
        if enforcer is not None:
            await enforcer.check(ctx, schema, operation, record_of(head))

    async def check_new(self, ctx: RequestContext, head: Mapping[str, Any]) -> None:
        """May the caller create an entity of these types and scopes (403 otherwise)?"""
        enforcer = self.enforcer
        if enforcer is not None:
            await enforcer.check_new(ctx, Operation.CREATE, record_of(head))

    async def scope(self, ctx: RequestContext) -> ReadableScope | None:
        """What the caller may read in the tenant, for the query's SQL; None: everything."""
        enforcer = self.enforcer
        return None if enforcer is None else await enforcer.scope(ctx, Operation.READ)

    async def log_page(
        self, ctx: RequestContext, schema: str, heads: Sequence[Mapping[str, Any]]
    ) -> None:
        """Log the entities of a page read only under a consent (as the entity query does)."""
        enforcer = self.enforcer
        if enforcer is not None and heads:
            await enforcer.log_page(ctx, schema, [record_of(h) for h in heads], "temporal")
