"""Subscription operations (§5.8): create, retrieve, query, update, delete.

Layer: core/. Parsing and rendering of the data type are pure (ngsild/subscription.py,
ngsild/subscription_render.py); this module decides what an operation means: the id, the
@context a subscription keeps (for its q/pick/omit terms and its notifications), the
``jsonldContext`` notifications carry (the one asked for, the single @context URL of the request,
or an ImplicitlyCreated context of §5.13 holding the request's @context), the status after an
update (§5.8.2.4), and the subscription change event written with every change. Updates are
optimistic and retried on a concurrent change. Hooks let the in-process notifier refresh its
index right after a commit (so the subscription applies to any change committed after the
response) and settle its delivery status before a read.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from city_os.auth.subscribers import check_visible, new_owner, visible_to
from city_os.core.context_registry import ContextRegistry
from city_os.core.contexts import ContextLoader
from city_os.core.entities import RequestContext
from city_os.errors import AlreadyExists, BadRequestData, NgsiLdError, ResourceNotFound
from city_os.events.model import SubscriptionChange, subscription_event
from city_os.ngsild.entity import check_entity_id, parse_datetime
from city_os.ngsild.jsonld import CORE_CONTEXT_URL, is_core_context_url
from city_os.ngsild.subscription import (
    Doc,
    check_rules,
    merge,
    parse_members,
    status,
)
from city_os.ngsild.subscription_render import render_subscription
from city_os.ngsild.subscription_selection import check_selection
from city_os.notifier.channels.endpoints import STREAM_URI, info_of
from city_os.notifier.channels.endpoints import check_endpoint as check_channel
from city_os.store.postgres.db import Tenants
from city_os.store.postgres.subscriptions import SubscriptionRepository, SubscriptionRow, Timer

log = logging.getLogger(__name__)
ID_PREFIX = "urn:ngsi-ld:Subscription:"
# The stored member holding what another API face (the NGSIv2 API) needs to render the
# subscription and its notifications; NGSI-LD neither shows nor changes it.
FACE = "face"
MAX_RETRIES = 20
# The stored member marking a context-source subscription (§5.11): the same machinery serves
# /csourceSubscriptions, each service sees only its own kind.
CSOURCE = "csource"

# (tenant, subscription id) → awaited after a change commits / before a read.
Hook = Callable[[str, str | None], Awaitable[None]]
# Members of another kind of subscription (§5.11 temporalQ): pops and checks them from a
# body, returning what to store (``update``: a fragment, None removes a member).
Extra = Callable[[dict[str, Any], bool], Doc]


def timers(doc: Doc) -> list[Timer]:
    """The cluster-wide timers a subscription needs (periodic firing, throttling)."""
    out = []
    if "timeInterval" in doc:
        out.append(Timer("interval", float(doc["timeInterval"])))
    if "throttling" in doc:
        out.append(Timer("throttle", float(doc["throttling"])))
    return out


def _single_url(context: Any) -> str | None:
    if isinstance(context, list) and len(context) == 1:
        context = context[0]
    return context if isinstance(context, str) else None


class SubscriptionService:
    def __init__(
        self,
        repo: SubscriptionRepository,
        tenants: Tenants,
        contexts: ContextLoader,
        registry: ContextRegistry | None,
        source: str,
        check_endpoint: Callable[[str, str | None], None] | None = None,
        *,
        csource: bool = False,
        extra: Extra | None = None,
    ) -> None:
        self.repo = repo
        self.csource = csource  # True: this service is /csourceSubscriptions
        self.extra = extra
        # The outbound network policy (auth/network.py): a literal address it refuses is a 400.
        self.check_endpoint = check_endpoint
        # ... and a host name resolving only to addresses it refuses (set by the app).
        self.resolve_endpoint: Callable[[str, str], Awaitable[None]] | None = None
        self.tenants = tenants
        self.contexts = contexts
        self.registry = registry
        self.source = source
        self.on_change: list[Hook] = []
        self.before_read: list[Hook] = []

    # ---------------------------------------------------------------- helpers

    async def _notify_context(self, doc: Doc, context: Any) -> str:
        """The URL of the @context notifications carry (``jsonldContext``, §5.2.12)."""
        asked = doc.get("jsonldContext")
        if asked is not None:
            await self.contexts.term_map(asked)  # 504 unreachable, 400 not a usable @context
            return str(asked)
        single = _single_url(context)
        if context is None or (single is not None and is_core_context_url(single)):
            return CORE_CONTEXT_URL
        if single is not None:
            return single
        if self.registry is None:
            raise BadRequestData("an inline or multi-item @context needs the @context registry")
        return await self.registry.add_implicit(context)

    def _event(
        self, kind: SubscriptionChange, ctx: RequestContext, sid: str, doc: Doc | None
    ) -> Any:
        return subscription_event(
            kind=kind,
            tenant=ctx.tenant,
            subscription_id=sid,
            subscription=doc,
            time=ctx.now,
            source=self.source,
            actor=ctx.actor,
        )

    async def _changed(self, tenant: str, sid: str) -> None:
        for hook in self.on_change:
            try:
                await hook(tenant, sid)
            except Exception:
                # Committed already; the notifier's LISTEN will pick it up instead.
                log.exception("refreshing subscription %s of tenant %r failed", sid, tenant)

    async def _settle(self, tenant: str, sid: str | None) -> None:
        for hook in self.before_read:
            await hook(tenant, sid)

    @staticmethod
    def _check_id(sid: str) -> str:
        return check_entity_id(sid, "subscription id")

    def _mine(self, row: SubscriptionRow | None) -> SubscriptionRow | None:
        """A row of the other kind (entity / context-source subscription) is not found."""
        if row is None or bool(row.doc.get(CSOURCE)) != self.csource:
            return None
        return row

    def _extra(self, body: object, update: bool) -> tuple[object, Doc]:
        if self.extra is None or not isinstance(body, dict):
            return body, {}
        rest = dict(body)
        return rest, self.extra(rest, update)

    async def _check_endpoint(self, doc: Doc) -> None:
        endpoint = doc["notification"]["endpoint"]
        uri = endpoint["uri"]
        # the channel's own members: MQTT topic, QoS and version, Web Push keys
        check_channel(uri, info_of(endpoint.get("notifierInfo", ())))
        if self.check_endpoint is not None and uri != STREAM_URI:
            host = urlsplit(uri).hostname
            try:
                self.check_endpoint(uri, host)
                if self.resolve_endpoint is not None and host:
                    await self.resolve_endpoint(uri, host)
            except BadRequestData as exc:
                raise BadRequestData(f"notification.endpoint.uri: {exc.detail}") from None

    # ---------------------------------------------------------------- operations

    async def create(self, ctx: RequestContext, body: object, *, face: Doc | None = None) -> str:
        owner = new_owner(ctx.principal, ctx.tenant)  # access control: None when off
        now = parse_datetime(ctx.now)
        body, extra = self._extra(body, False)
        doc = parse_members(body, ctx.terms, now, update=False)
        doc.update(extra)
        if self.csource:
            doc[CSOURCE] = True
        if face is not None:
            doc[FACE] = face
        check_rules(doc)
        check_selection(doc, ctx.terms)
        await self._check_endpoint(doc)
        sid = doc.pop("id", None) or ID_PREFIX + str(uuid.uuid4())
        doc = {"id": sid, **doc}
        notify_context = await self._notify_context(doc, ctx.context)
        schema = await self.tenants.schema(ctx.tenant, create=True)
        row = SubscriptionRow(
            id=sid,
            doc=doc,
            context=ctx.context,
            notify_context=notify_context,
            created_at=ctx.now,
            modified_at=ctx.now,
            expires_at=doc.get("expiresAt"),
            is_active=doc.get("isActive", True),
            owner=owner,
        )
        event = self._event("created", ctx, sid, doc)
        if not await self.repo.insert(schema, ctx.tenant, row, event, timers(doc)):
            raise AlreadyExists(f"subscription {sid} already exists")
        await self._changed(ctx.tenant, sid)
        return sid

    async def get(self, ctx: RequestContext, sid: str) -> SubscriptionRow:
        self._check_id(sid)
        schema = await self.tenants.schema(ctx.tenant, create=False)
        await self._settle(ctx.tenant, sid)
        row = self._mine(await self.repo.get(schema, sid))
        if row is None:
            raise ResourceNotFound(f"subscription {sid} not found")
        check_visible(ctx.principal, ctx.tenant, sid, row.owner)
        return row

    async def query(
        self, ctx: RequestContext, limit: int, offset: int, count: bool
    ) -> tuple[list[SubscriptionRow], int | None, bool]:
        """A page (and, with ``count``, the total); True when more follow the page."""
        schema = await self.tenants.schema(ctx.tenant, create=False)
        await self._settle(ctx.tenant, None)
        owner = visible_to(ctx.principal, ctx.tenant)  # only one's own (admins: all)
        kind = self.csource
        rows = await self.repo.page(schema, limit + 1 if limit else 0, offset, owner, kind)
        total = await self.repo.count(schema, owner, kind) if count else None
        return rows[:limit], total, len(rows) > limit

    def render(self, ctx: RequestContext, row: SubscriptionRow, sys_attrs: bool) -> Doc:
        return render_subscription(
            row.doc,
            ctx.terms,
            status=status(row.doc, parse_datetime(ctx.now)),
            jsonld_context=row.notify_context,
            delivery=row.delivery,
            system=(row.created_at, row.modified_at) if sys_attrs else None,
        )

    async def update(
        self, ctx: RequestContext, sid: str, body: object, *, face: Doc | None = None
    ) -> None:
        """§5.8.2: the fragment's members replace the stored ones (null removes one)."""
        self._check_id(sid)
        now = parse_datetime(ctx.now)
        body, extra = self._extra(body, True)
        fragment = parse_members(body, ctx.terms, now, update=True)
        fragment.update(extra)
        if fragment.get("id", sid) != sid:
            raise BadRequestData(f"id {fragment['id']} in the body differs from {sid} in the URL")
        schema = await self.tenants.schema(ctx.tenant, create=False)
        for _ in range(MAX_RETRIES):
            row = self._mine(await self.repo.get(schema, sid))
            if row is None:
                raise ResourceNotFound(f"subscription {sid} not found")
            check_visible(ctx.principal, ctx.tenant, sid, row.owner)
            doc = merge(row.doc, fragment)
            if face is not None:
                doc[FACE] = face
            if "expiresAt" in fragment and "isActive" not in fragment:
                # §5.8.2.4: a new expiresAt alone makes an expired subscription active again.
                if status(row.doc, now) == "expired" and doc.get("isActive") is False:
                    del doc["isActive"]
            check_rules(doc)
            # A fragment sent with an @context brings the terms its q, pick and omit use.
            context = ctx.context if ctx.context is not None else row.context
            terms = ctx.terms if context == ctx.context else await self.contexts.term_map(context)
            check_selection(doc, terms)
            await self._check_endpoint(doc)
            notify_context = row.notify_context
            if "jsonldContext" in fragment or context != row.context:
                notify_context = await self._notify_context(doc, context)
            new = replace(
                row,
                doc=doc,
                context=context,
                notify_context=notify_context,
                modified_at=ctx.now,
                expires_at=doc.get("expiresAt"),
                is_active=doc.get("isActive", True),
            )
            event = self._event("updated", ctx, sid, doc)
            if await self.repo.update(schema, ctx.tenant, new, event, timers(doc)):
                await self._changed(ctx.tenant, sid)
                return
        raise NgsiLdError(f"subscription {sid} is changing too often to update it; try again")

    async def delete(self, ctx: RequestContext, sid: str) -> None:
        self._check_id(sid)
        schema = await self.tenants.schema(ctx.tenant, create=False)
        row = self._mine(await self.repo.get(schema, sid))
        if row is None:
            raise ResourceNotFound(f"subscription {sid} not found")
        if visible_to(ctx.principal, ctx.tenant) is not None:
            check_visible(ctx.principal, ctx.tenant, sid, row.owner)
        event = self._event("deleted", ctx, sid, None)
        if not await self.repo.delete(schema, ctx.tenant, sid, event):
            raise ResourceNotFound(f"subscription {sid} not found")
        await self._changed(ctx.tenant, sid)
