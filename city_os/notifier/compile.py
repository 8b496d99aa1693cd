"""A stored subscription made ready for matching and rendering (once per change of it).

Layer: notifier/. Reads the document of ngsild/subscription.py with the subscription's own
@context: entity selectors as sets of type IRIs, watched attributes, the expanded triggers, the
``Selection`` of its q/geoQ/scopeQ (for the selection filter and periodic queries), the
rendering ``View`` and the ``Endpoint``. Nothing here runs per event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from city_os.core.contexts import ContextLoader
from city_os.ngsild.entity import expand_attr_name, parse_datetime
from city_os.ngsild.jsonld import TermMap
from city_os.ngsild.linked import parse_join
from city_os.ngsild.query.entity_selection import Names, Selection
from city_os.ngsild.query.evaluate import CompiledSelection
from city_os.ngsild.query.projection import project
from city_os.ngsild.representation import Format, RenderOptions
from city_os.ngsild.subscription import Doc, triggers
from city_os.ngsild.subscription_selection import check_selection, names_of, selection_of
from city_os.notifier.channels import Endpoint
from city_os.notifier.render import Face, View
from city_os.store.postgres.subscriptions import SubscriptionRow

_FORMATS: dict[str, Format] = {
    "normalized": "normalized",
    "concise": "concise",
    "keyValues": "keyValues",
    "simplified": "keyValues",
}
ATTRIBUTE_TRIGGERS = ("attributeCreated", "attributeUpdated", "attributeDeleted")


@dataclass(frozen=True, slots=True)
class Selector:
    ids: frozenset[str]  # empty: any id
    pattern: str | None
    types: tuple[frozenset[str], ...]  # alternatives: all of one of them


@dataclass(slots=True)
class Subscription:
    """A subscription as the notifier uses it."""

    tenant: str
    id: str
    doc: Doc
    created: float  # epoch seconds; earlier changes are not notified
    expires: float | None
    active: bool
    periodic: float | None  # timeInterval
    throttle: float | None
    selectors: tuple[Selector, ...]  # empty: any entity
    watched: frozenset[str] | None
    triggers: frozenset[str]  # entityUpdated expanded into the attribute triggers
    asked: frozenset[str]  # as the client wrote them
    selection: Selection  # for the query engine (periodic notifications)
    names: Names
    compiled: CompiledSelection  # the same, evaluated in process
    filtered: bool  # idPattern, q, geoQ or scopeQ: the selection filter decides
    view: View
    endpoint: Endpoint
    owner: dict[str, Any] | None = None  # its creator (auth/subscribers.py); None: auth off

    @property
    def key(self) -> tuple[str, str]:
        return (self.tenant, self.id)

    def live(self, now: float) -> bool:
        return self.active and (self.expires is None or self.expires > now)

    def reported(self, trigger: str) -> str:
        """The triggerReason: the trigger as the client asked for it."""
        if trigger in self.asked or trigger not in ATTRIBUTE_TRIGGERS:
            return trigger
        return "entityUpdated"


def _epoch(value: str | None) -> float | None:
    return None if value is None else parse_datetime(value).timestamp()


class Compiler:
    def __init__(
        self,
        contexts: ContextLoader,
        default_timeout: float,
        faces: Mapping[str, Face] | None = None,
    ) -> None:
        self._contexts = contexts
        self._timeout = default_timeout
        self._faces = dict(faces or {})  # API face name -> its notification renderer

    async def compile(self, tenant: str, row: SubscriptionRow) -> Subscription:
        """Raises NgsiLdError when the subscription's @context cannot be used now."""
        doc = row.doc
        terms = await self._contexts.term_map(row.context)
        asked = doc.get("jsonldContext")
        view_terms = terms if asked is None else await self._contexts.term_map(asked)
        wanted = frozenset(triggers(doc))
        expanded = set(wanted - {"entityUpdated"})
        if "entityUpdated" in wanted:
            expanded.update(ATTRIBUTE_TRIGGERS)
        selection = selection_of(doc)
        selectors = tuple(
            Selector(
                ids=frozenset([s["id"]] if "id" in s else []),
                pattern=s.get("idPattern"),
                types=tuple(frozenset(group) for group in s["type"]),
            )
            for s in doc.get("entities", ())
        )
        notification = doc["notification"]
        endpoint = notification["endpoint"]
        return Subscription(
            tenant=tenant,
            id=row.id,
            doc=doc,
            created=parse_datetime(row.created_at).timestamp(),
            expires=_epoch(doc.get("expiresAt")),
            active=doc.get("isActive", True),
            periodic=doc.get("timeInterval"),
            throttle=doc.get("throttling"),
            selectors=selectors,
            watched=frozenset(doc["watchedAttributes"]) if "watchedAttributes" in doc else None,
            triggers=frozenset(expanded),
            asked=wanted,
            selection=selection,
            names=names_of(terms),
            compiled=check_selection(doc, terms),
            filtered=any(s.pattern for s in selectors)
            or any(x is not None for x in (selection.q, selection.geo, selection.scope)),
            view=self._view(tenant, doc, terms, view_terms, row.notify_context, expanded),
            owner=row.owner,
            endpoint=Endpoint(
                uri=endpoint["uri"],
                timeout=endpoint.get("timeout", self._timeout * 1000) / 1000,
                cooldown=endpoint["cooldown"] / 1000 if "cooldown" in endpoint else None,
                notifier_info=tuple(
                    (p["key"], p["value"]) for p in endpoint.get("notifierInfo", ())
                ),
            ),
        )

    def _view(
        self,
        tenant: str,
        doc: Doc,
        terms: TermMap,
        view_terms: TermMap,
        context_url: str,
        expanded: set[str],
    ) -> View:
        notification: dict[str, Any] = doc["notification"]
        attributes = notification.get("attributes")
        opts = RenderOptions(
            format=_FORMATS[notification.get("format", "normalized")],
            sys_attrs=notification.get("sysAttrs", False),
            attrs=frozenset(attributes) if attributes else None,
            lang=doc.get("lang"),
            geometry_property=expand_attr_name(terms, "location"),
        )
        pick, omit = notification.get("pick"), notification.get("omit")
        opts = project(
            opts,
            ",".join(pick) if pick else None,
            ",".join(omit) if omit else None,
            lambda term: expand_attr_name(terms, term),
        )
        endpoint = notification["endpoint"]
        face_doc = doc.get("face")
        face = self._faces.get(face_doc.get("name", "")) if isinstance(face_doc, dict) else None
        return View(
            terms=view_terms,
            opts=opts,
            accept=endpoint.get("accept", "application/json"),
            show_changes=notification.get("showChanges", False),
            datasets=frozenset(doc["datasetId"]) if "datasetId" in doc else None,
            join=parse_join(notification.get("join"), notification.get("joinLevel")),
            context_url=context_url,
            deleted_as_null="attributeDeleted" in expanded,
            tenant=tenant,
            receiver_info=tuple((p["key"], p["value"]) for p in endpoint.get("receiverInfo", ())),
            face=face,
            face_doc=face_doc if face is not None else None,
        )
