"""Context source registration operations (§5.9, §5.10): create, retrieve, query, update, delete.

Layer: federation/ (service, like core/: no aiohttp, no SQL text). Parsing and rendering are
pure (registrations_parse.py, registrations_render.py); this module decides what an operation
means: the id, the @context a registration keeps (it is sent with forwarded requests), the
conflicts that make a registration a 409 (§4.3.6.3, §5.9.2.4: an exclusive registration over
the attributes of another exclusive or redirect one, or a redirect one over an exclusive one;
an exclusive registration over an existing local entity holding one of its attributes, a
redirect one over an existing local entity it names), and the change event written with every
change. Updates are optimistic and retried on a concurrent change. ``on_change`` hooks let the
in-process registration index refresh right after a commit.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from city_os.core.entities import EntityService, RequestContext
from city_os.core.expiry import core_terms
from city_os.errors import AlreadyExists, BadRequestData, NgsiLdError, ResourceNotFound
from city_os.federation.events import RegistrationChange, registration_event
from city_os.federation.model import Doc, Registration
from city_os.federation.registrations_parse import build, merge, parse_members
from city_os.federation.registrations_query import RegistrationFilter, select
from city_os.federation.registrations_render import render_registration
from city_os.ngsild.entity import check_entity_id, parse_datetime
from city_os.store.postgres.csource import RegistrationRepository, RegistrationRow
from city_os.store.postgres.db import Tenants

log = logging.getLogger(__name__)
ID_PREFIX = "urn:ngsi-ld:ContextSourceRegistration:"
MAX_RETRIES = 20
Hook = Callable[[str, str], Awaitable[None]]  # (tenant, registration id) after a commit


def _expired(row: RegistrationRow, now: str) -> bool:
    return row.expires_at is not None and parse_datetime(row.expires_at) <= parse_datetime(now)


def _conflict(detail: str) -> AlreadyExists:
    # §5.9.2.4 names the error Conflict; Table 6.3.2-1 maps 409 to AlreadyExists.
    return AlreadyExists(f"Conflict: {detail}")


class RegistrationService:
    def __init__(
        self,
        repo: RegistrationRepository,
        tenants: Tenants,
        entities: EntityService,
        source: str,
        check_endpoint: Callable[[str, str | None], None] | None = None,
    ) -> None:
        self.repo = repo
        self.tenants = tenants
        self.entities = entities
        self.source = source
        # The outbound network policy (auth/network.py): an endpoint it refuses is a 400.
        self.check_endpoint = check_endpoint
        self.on_change: list[Hook] = []

    # ---------------------------------------------------------------- helpers

    def _event(
        self,
        kind: RegistrationChange,
        ctx: RequestContext,
        rid: str,
        doc: Doc | None,
        previous: Doc | None,
    ) -> dict[str, Any]:
        return registration_event(
            kind=kind,
            tenant=ctx.tenant,
            registration_id=rid,
            registration=doc,
            previous=previous,
            time=ctx.now,
            source=self.source,
            actor=ctx.actor,
        )

    async def _changed(self, tenant: str, rid: str) -> None:
        for hook in self.on_change:
            try:
                await hook(tenant, rid)
            except Exception:
                # Committed already; the index's LISTEN will pick it up instead.
                log.exception("refreshing registration %s of tenant %r failed", rid, tenant)

    def _check_endpoint(self, reg: Registration) -> None:
        if self.check_endpoint is None:
            return
        try:
            self.check_endpoint(reg.endpoint, urlsplit(reg.endpoint).hostname)
        except BadRequestData as exc:
            raise BadRequestData(f"endpoint: {exc.detail}") from None

    async def _check_conflicts(self, schema: str, reg: Registration) -> None:
        """§4.3.6.3 and §5.9.2.4 (see the module docstring); raise a 409."""
        if reg.mode not in ("exclusive", "redirect"):
            return
        for row in await self.repo.all(schema):
            if row.id == reg.id:
                continue
            other = Registration.from_doc(row.doc)
            if "exclusive" not in (reg.mode, other.mode) or other.mode not in (
                "exclusive",
                "redirect",
            ):
                continue
            if reg.overlaps(other):
                raise _conflict(
                    f"the {other.mode} registration {other.id} already covers these entity ids"
                    " and attributes"
                )
        ids = sorted(reg.entity_ids())
        if not ids:
            return
        stored = await self.entities.repo.get_many(schema, ids)
        for entity_id, found in stored.items():
            record = found.record
            if not reg.covers(entity_id, record.types):
                continue
            if reg.mode == "redirect":
                raise _conflict(f"entity {entity_id} exists here; a redirect source cannot own it")
            held = reg.registered_attrs(entity_id, record.types)
            common = sorted(set(record.attrs) & held) if held is not None else sorted(record.attrs)
            if common:
                raise _conflict(
                    f"entity {entity_id} exists here with {', '.join(common)}; an exclusive"
                    " source cannot own them"
                )

    @staticmethod
    def _check_id(rid: str) -> str:
        return check_entity_id(rid, "registration id")

    # ---------------------------------------------------------------- operations

    async def create(self, ctx: RequestContext, body: object) -> str:
        now = parse_datetime(ctx.now)
        doc = parse_members(body, ctx.terms, now, update=False)
        rid = doc.pop("id", None) or ID_PREFIX + str(uuid.uuid4())
        doc = {"id": rid, "type": "ContextSourceRegistration", **doc}
        doc["createdAt"] = doc["modifiedAt"] = ctx.now
        if ctx.context is not None:
            doc["@context"] = ctx.context if isinstance(ctx.context, list) else [ctx.context]
        reg = build(doc)
        self._check_endpoint(reg)
        schema = await self.tenants.schema(ctx.tenant, create=True)
        await self._check_conflicts(schema, reg)
        stored = reg.to_doc()
        row = RegistrationRow(
            id=rid,
            doc=stored,
            context=ctx.context,
            created_at=ctx.now,
            modified_at=ctx.now,
            expires_at=reg.expires_at,
        )
        if not await self.repo.insert(
            schema, ctx.tenant, row, self._event("created", ctx, rid, stored, None)
        ):
            raise AlreadyExists(f"registration {rid} already exists")
        await self._changed(ctx.tenant, rid)
        return rid

    async def get(self, ctx: RequestContext, rid: str) -> RegistrationRow:
        self._check_id(rid)
        schema = await self.tenants.schema(ctx.tenant, create=False)
        row = await self.repo.get(schema, rid)
        if row is None or _expired(row, ctx.now):
            # §5.9.2.4: a registration is deleted when its expiresAt is reached (the sweep,
            # ``sweep_expired``, removes it for real within a second).
            raise ResourceNotFound(f"registration {rid} not found")
        return row

    async def registrations(self, tenant: str) -> list[Registration]:
        """Every registration of ``tenant`` (none for an unknown tenant)."""
        try:
            schema = await self.tenants.schema(tenant, create=False)
        except NgsiLdError:
            return []
        return [Registration.from_doc(r.doc) for r in await self.repo.all(schema)]

    async def query(
        self, ctx: RequestContext, flt: RegistrationFilter, limit: int, offset: int, count: bool
    ) -> tuple[list[Registration], int | None, bool]:
        """A page of matching registrations (and, with ``count``, the total); True when more
        follow the page."""
        schema = await self.tenants.schema(ctx.tenant, create=False)
        rows = await self.repo.all(schema)
        found = select((Registration.from_doc(r.doc) for r in rows), flt, parse_datetime(ctx.now))
        page = found[offset : offset + limit] if limit else []
        return page, len(found) if count else None, len(found) > offset + limit

    def render(
        self, ctx: RequestContext, reg: Registration | RegistrationRow, sys_attrs: bool
    ) -> Doc:
        doc = reg.doc if isinstance(reg, RegistrationRow) else reg.to_doc()
        return render_registration(doc, ctx.terms, sys_attrs=sys_attrs)

    async def update(self, ctx: RequestContext, rid: str, body: object) -> None:
        """§5.9.3: the fragment's members replace the stored ones (null removes one)."""
        self._check_id(rid)
        now = parse_datetime(ctx.now)
        fragment = parse_members(body, ctx.terms, now, update=True)
        if fragment.get("id", rid) != rid:
            raise BadRequestData(f"id {fragment['id']} in the body differs from {rid} in the URL")
        schema = await self.tenants.schema(ctx.tenant, create=False)
        for _ in range(MAX_RETRIES):
            row = await self.repo.get(schema, rid)
            if row is None:
                raise ResourceNotFound(f"registration {rid} not found")
            doc = merge(row.doc, fragment)
            doc["modifiedAt"] = ctx.now
            reg = build(doc)
            self._check_endpoint(reg)
            await self._check_conflicts(schema, reg)
            stored = reg.to_doc()
            new = replace(row, doc=stored, modified_at=ctx.now, expires_at=reg.expires_at)
            event = self._event("updated", ctx, rid, stored, row.doc)
            if await self.repo.update(schema, ctx.tenant, new, event):
                await self._changed(ctx.tenant, rid)
                return
        raise NgsiLdError(f"registration {rid} is changing too often to update it; try again")

    async def sweep_expired(self, tenant: str, schema: str, now: str) -> int:
        """Delete the registrations of one tenant whose expiresAt has passed (§5.9.2.4), each
        with its ``deleted`` change event (the index and csourceSubscriptions see it like any
        delete); returns how many went."""
        removed = 0
        for row in await self.repo.expired(schema):
            ctx = RequestContext(tenant=tenant, terms=core_terms(), now=now)
            event = self._event("deleted", ctx, row.id, None, row.doc)
            if await self.repo.delete(schema, tenant, row.id, event):
                removed += 1
                await self._changed(tenant, row.id)
        return removed

    async def delete(self, ctx: RequestContext, rid: str) -> None:
        self._check_id(rid)
        schema = await self.tenants.schema(ctx.tenant, create=False)
        row = await self.repo.get(schema, rid)
        if row is None:
            raise ResourceNotFound(f"registration {rid} not found")
        event = self._event("deleted", ctx, rid, None, row.doc)
        if not await self.repo.delete(schema, ctx.tenant, rid, event):
            raise ResourceNotFound(f"registration {rid} not found")
        await self._changed(ctx.tenant, rid)
