"""The CSourceRegistration data type (GS CIM 009 v1.9.1 §5.2.9, §5.2.10, §4.3.6): a parsed model.

Layer: federation/ (pure, no I/O). A registration tells the broker that a context source at
``endpoint`` holds (``inclusive``, ``auxiliary``) or owns (``exclusive``, ``redirect``) some
entities and attributes. ``Registration`` is what validation produces and what the store keeps
(``to_doc``/``from_doc``: the same JSON, round-tripped); every name in it is an expanded IRI, so a
registration written with one @context is matched and rendered under any other.

- ``information``: RegistrationInfo items (§5.2.10). ``EntityInfo.types`` are expanded type IRIs
  of which the entity must have one; ``property_names``/``relationship_names`` expanded attribute
  IRIs. An item without entities covers every entity; without names, every attribute.
- ``mode`` (§4.3.6.2–5): ``inclusive`` (default), ``exclusive``, ``redirect``, ``auxiliary``.
- ``operations``: the expanded set of operation names (§4.20, Table 4.20-1: the groups
  ``federationOps`` (the default), ``updateOps``, ``retrieveOps``, ``redirectionOps`` expand to
  their members); ``operations_asked`` keeps what the client wrote, as rendered back.
- ``tenant`` is the tenant *at the source* (sent as NGSILD-Tenant when forwarding);
  ``context`` the @context of the registration, sent with forwarded requests.
- ``context_source_info`` key/value pairs (§5.2.22) to add to forwarded requests as headers.
- ``properties``: the additional members, context-source properties (§5.2.9 "CSourcePropertyName"),
  expanded attribute IRI → the attribute as the client wrote it; ``csf`` evaluates on them.
- ``management`` (§5.2.34): ``local_only``, ``cache_duration``, ``timeout``, ``cooldown``
  (``cacheDuration`` an ISO 8601 duration; ``timeout`` and ``cooldown`` numbers, in
  milliseconds). The ``status`` members
  (§5.2.9, Table 5.2.9-1) are read-only: the broker's record of its calls to the source.

Helpers for the index and distributed operations: ``covers(entity_id, types, attrs)`` — does a
RegistrationInfo match the entity (id / idPattern / one of the types) and, when attributes are
asked, one of them; ``registered_attrs(entity_id, types)`` — the attributes the registration
holds for that entity (``None``: all); ``serves(operation)``; ``overlaps(other)`` — the §4.3.6.3
exclusive/redirect conflict; ``expired(now)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from city_os.ngsild.entity import parse_datetime
from city_os.ngsild.query.regex import compile_pattern

Doc = dict[str, Any]
Mode = Literal["inclusive", "exclusive", "redirect", "auxiliary"]
MODES: Final[tuple[Mode, ...]] = ("inclusive", "exclusive", "redirect", "auxiliary")

# --------------------------------------------------------------------------- operations

_PROVISION: Final = (
    "createEntity", "updateEntity", "appendAttrs", "updateAttrs", "deleteAttrs", "deleteEntity",
    "mergeEntity", "replaceEntity", "replaceAttrs",
)  # fmt: skip
_BATCH_WRITES: Final = ("createBatch", "upsertBatch", "updateBatch", "deleteBatch", "mergeBatch")
_TEMPORAL_WRITES: Final = (
    "upsertTemporal", "appendAttrsTemporal", "deleteAttrsTemporal", "updateAttrInstanceTemporal",
    "deleteAttrInstanceTemporal", "deleteTemporal",
)  # fmt: skip
_DISCOVERY: Final = (
    "retrieveEntityTypes", "retrieveEntityTypeDetails", "retrieveEntityTypeInfo",
    "retrieveAttrTypes", "retrieveAttrTypeDetails", "retrieveAttrTypeInfo",
)  # fmt: skip
_CONSUMPTION: Final = ("retrieveEntity", "queryEntity", "queryBatch")
_TEMPORAL_READS: Final = ("retrieveTemporal", "queryTemporal")
_SUBSCRIPTION: Final = (
    "createSubscription", "updateSubscription", "retrieveSubscription", "querySubscription",
    "deleteSubscription",
)  # fmt: skip

#: Every operation name a registration may list (§4.20).
OPERATIONS: Final[frozenset[str]] = frozenset(
    _PROVISION + _BATCH_WRITES + _TEMPORAL_WRITES + _DISCOVERY + _CONSUMPTION + _TEMPORAL_READS
    + _SUBSCRIPTION
)  # fmt: skip
#: The operation groups (§4.20, Table 4.20-1) and the names each stands for.
GROUPS: Final[Mapping[str, frozenset[str]]] = {
    "federationOps": frozenset(_CONSUMPTION + _DISCOVERY + _SUBSCRIPTION),
    "updateOps": frozenset({"updateEntity", "updateAttrs", "replaceEntity", "replaceAttrs"}),
    "retrieveOps": frozenset({"retrieveEntity", "queryEntity"}),
    "redirectionOps": frozenset(_PROVISION + _DISCOVERY + ("retrieveEntity", "queryEntity")),
}
DEFAULT_OPERATIONS: Final = ("federationOps",)
#: Operations that change data: an auxiliary source serves none of them (§4.3.6.5, §5.9.2.4).
WRITE_OPERATIONS: Final[frozenset[str]] = frozenset(_PROVISION + _BATCH_WRITES + _TEMPORAL_WRITES)


def expand_operations(names: Iterable[str]) -> frozenset[str]:
    """Operation names with every group replaced by its members (unknown names are kept out:
    validation refuses them before a Registration is built)."""
    out: set[str] = set()
    for name in names:
        if name in GROUPS:
            out |= GROUPS[name]
        elif name in OPERATIONS:
            out.add(name)
    return frozenset(out)


# --------------------------------------------------------------------------- members


@dataclass(frozen=True, slots=True)
class EntityInfo:
    """§5.2.8: an entity id, an id pattern, or neither; and the types (expanded), one of which
    the entity must have (empty: any type)."""

    id: str | None = None
    id_pattern: str | None = None
    types: tuple[str, ...] = ()

    def matches(self, entity_id: str | None, types: Iterable[str] | None) -> bool:
        """None for ``entity_id``/``types`` means "not known": it does not exclude a match."""
        if entity_id is not None:
            if self.id is not None and self.id != entity_id:
                return False
            if self.id_pattern is not None and not _pattern(self.id_pattern).search(entity_id):
                return False
        if types is not None and self.types and not set(self.types) & set(types):
            return False
        return True

    def to_doc(self) -> Doc:
        doc: Doc = {}
        if self.id is not None:
            doc["id"] = self.id
        if self.id_pattern is not None:
            doc["idPattern"] = self.id_pattern
        if self.types:
            doc["type"] = list(self.types)
        return doc


@dataclass(frozen=True, slots=True)
class RegistrationInfo:
    """§5.2.10: which entities (empty: all) and which attributes (empty: all)."""

    entities: tuple[EntityInfo, ...] = ()
    property_names: tuple[str, ...] = ()
    relationship_names: tuple[str, ...] = ()

    @property
    def attrs(self) -> frozenset[str]:
        return frozenset(self.property_names + self.relationship_names)

    def matches_entity(self, entity_id: str | None, types: Iterable[str] | None) -> bool:
        if not self.entities:
            return True
        kinds = None if types is None else tuple(types)
        return any(e.matches(entity_id, kinds) for e in self.entities)

    def to_doc(self) -> Doc:
        doc: Doc = {}
        if self.entities:
            doc["entities"] = [e.to_doc() for e in self.entities]
        if self.property_names:
            doc["propertyNames"] = list(self.property_names)
        if self.relationship_names:
            doc["relationshipNames"] = list(self.relationship_names)
        return doc


@dataclass(frozen=True, slots=True)
class TimeInterval:
    """§5.2.11 TimeInterval: ISO 8601 texts as given; ``end_at`` may be open."""

    start_at: str
    end_at: str | None = None

    def overlaps(self, start: datetime, end: datetime | None) -> bool:
        """Does [start_at, end_at] meet [start, end] (``end`` None: a single instant)?"""
        mine_start = parse_datetime(self.start_at)
        mine_end = parse_datetime(self.end_at) if self.end_at else None
        last = start if end is None else end
        return mine_start <= last and (mine_end is None or start <= mine_end)

    def to_doc(self) -> Doc:
        doc: Doc = {"startAt": self.start_at}
        if self.end_at is not None:
            doc["endAt"] = self.end_at
        return doc


@dataclass(frozen=True, slots=True)
class Management:
    """§5.2.34 RegistrationManagementInfo."""

    local_only: bool | None = None
    cache_duration: str | None = None  # ISO 8601 duration
    timeout: float | None = None  # milliseconds
    cooldown: float | None = None

    def to_doc(self) -> Doc:
        pairs = (
            ("localOnly", self.local_only),
            ("cacheDuration", self.cache_duration),
            ("timeout", self.timeout),
            ("cooldown", self.cooldown),
        )
        return {k: v for k, v in pairs if v is not None}


@dataclass(frozen=True, slots=True)
class Status:
    """The read-only status members (§5.2.9): the broker's experience of the source."""

    status: Literal["ok", "failed"] | None = None
    times_sent: int = 0
    times_failed: int = 0
    last_success: str | None = None
    last_failure: str | None = None

    def to_doc(self) -> Doc:
        doc: Doc = {}
        if self.status is not None:
            doc["status"] = self.status
        if self.times_sent:
            doc["timesSent"] = self.times_sent
        if self.times_failed:
            doc["timesFailed"] = self.times_failed
        if self.last_success is not None:
            doc["lastSuccess"] = self.last_success
        if self.last_failure is not None:
            doc["lastFailure"] = self.last_failure
        return doc


@dataclass(frozen=True, slots=True)
class Registration:
    """One CSourceRegistration, every name expanded (see the module docstring)."""

    id: str
    endpoint: str
    information: tuple[RegistrationInfo, ...]
    mode: Mode = "inclusive"
    operations_asked: tuple[str, ...] = DEFAULT_OPERATIONS
    registration_name: str | None = None
    description: str | None = None
    tenant: str | None = None
    context_source_info: tuple[tuple[str, str], ...] = ()
    scope: tuple[str, ...] = ()
    location: Doc | None = None
    observation_space: Doc | None = None
    operation_space: Doc | None = None
    observation_interval: TimeInterval | None = None
    management_interval: TimeInterval | None = None
    expires_at: str | None = None
    refresh_rate: str | None = None
    management: Management = field(default_factory=Management)
    properties: Mapping[str, Any] = field(default_factory=dict)
    context: tuple[Any, ...] = ()  # the @context items the registration was written with
    created_at: str | None = None
    modified_at: str | None = None
    status: Status = field(default_factory=Status)
    operations: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "operations", expand_operations(self.operations_asked))

    # ------------------------------------------------------------------ questions

    def serves(self, operation: str) -> bool:
        """Does the source take ``operation`` (an operation name, or a whole group)?"""
        if operation in GROUPS:
            return GROUPS[operation] <= self.operations
        return operation in self.operations

    def covers(
        self,
        entity_id: str | None = None,
        types: Iterable[str] | None = None,
        attrs: Iterable[str] | None = None,
    ) -> bool:
        """Does one RegistrationInfo match the entity and, if ``attrs`` is given (expanded
        names; empty or None: any), hold one of those attributes?"""
        kinds = None if types is None else tuple(types)
        wanted = frozenset(attrs) if attrs else None
        for info in self.information:
            if not info.matches_entity(entity_id, kinds):
                continue
            if wanted is None or not info.attrs or info.attrs & wanted:
                return True
        return False

    def registered_attrs(
        self, entity_id: str | None = None, types: Iterable[str] | None = None
    ) -> frozenset[str] | None:
        """The attributes the source holds for that entity: None for all of them, an empty
        set when no RegistrationInfo matches the entity."""
        kinds = None if types is None else tuple(types)
        out: set[str] = set()
        for info in self.information:
            if info.matches_entity(entity_id, kinds):
                if not info.attrs:
                    return None
                out |= info.attrs
        return frozenset(out)

    def entity_ids(self) -> frozenset[str]:
        return frozenset(e.id for i in self.information for e in i.entities if e.id is not None)

    def overlaps(self, other: Registration) -> bool:
        """§4.3.6.3: do the two name the same entity id with a common attribute? (Exclusive
        registrations always name ids and attributes; an item without attributes covers all.)"""
        for mine in self.information:
            for theirs in other.information:
                ids = {e.id for e in mine.entities} & {e.id for e in theirs.entities} - {None}
                if not ids:
                    continue
                if not mine.attrs or not theirs.attrs or mine.attrs & theirs.attrs:
                    return True
        return False

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and parse_datetime(self.expires_at) <= now

    # ------------------------------------------------------------------ storage form

    def to_doc(self) -> Doc:
        """The stored JSON (expanded names; status members included)."""
        doc: Doc = {
            "id": self.id,
            "type": "ContextSourceRegistration",
            "endpoint": self.endpoint,
            "information": [i.to_doc() for i in self.information],
            "mode": self.mode,
            "operations": list(self.operations_asked),
        }
        optional: tuple[tuple[str, Any], ...] = (
            ("registrationName", self.registration_name),
            ("description", self.description),
            ("tenant", self.tenant),
            ("location", self.location),
            ("observationSpace", self.observation_space),
            ("operationSpace", self.operation_space),
            ("expiresAt", self.expires_at),
            ("refreshRate", self.refresh_rate),
            ("createdAt", self.created_at),
            ("modifiedAt", self.modified_at),
        )
        doc.update((k, v) for k, v in optional if v is not None)
        if self.context_source_info:
            doc["contextSourceInfo"] = [{"key": k, "value": v} for k, v in self.context_source_info]
        if self.scope:
            doc["scope"] = list(self.scope)
        for name, interval in (
            ("observationInterval", self.observation_interval),
            ("managementInterval", self.management_interval),
        ):
            if interval is not None:
                doc[name] = interval.to_doc()
        management = self.management.to_doc()
        if management:
            doc["management"] = management
        if self.properties:
            doc["properties"] = dict(self.properties)
        if self.context:
            doc["@context"] = list(self.context)
        doc.update(self.status.to_doc())
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Registration:
        """A stored document back into a Registration (the inverse of ``to_doc``)."""

        def interval(raw: Any) -> TimeInterval | None:
            return None if raw is None else TimeInterval(raw["startAt"], raw.get("endAt"))

        management = doc.get("management") or {}
        return cls(
            id=doc["id"],
            endpoint=doc["endpoint"],
            information=tuple(
                RegistrationInfo(
                    entities=tuple(
                        EntityInfo(e.get("id"), e.get("idPattern"), tuple(e.get("type") or ()))
                        for e in info.get("entities") or ()
                    ),
                    property_names=tuple(info.get("propertyNames") or ()),
                    relationship_names=tuple(info.get("relationshipNames") or ()),
                )
                for info in doc["information"]
            ),
            mode=doc.get("mode", "inclusive"),
            operations_asked=tuple(doc.get("operations") or DEFAULT_OPERATIONS),
            registration_name=doc.get("registrationName"),
            description=doc.get("description"),
            tenant=doc.get("tenant"),
            context_source_info=tuple(
                (p["key"], p["value"]) for p in doc.get("contextSourceInfo") or ()
            ),
            scope=tuple(doc.get("scope") or ()),
            location=doc.get("location"),
            observation_space=doc.get("observationSpace"),
            operation_space=doc.get("operationSpace"),
            observation_interval=interval(doc.get("observationInterval")),
            management_interval=interval(doc.get("managementInterval")),
            expires_at=doc.get("expiresAt"),
            refresh_rate=doc.get("refreshRate"),
            management=Management(
                local_only=management.get("localOnly"),
                cache_duration=management.get("cacheDuration"),
                timeout=management.get("timeout"),
                cooldown=management.get("cooldown"),
            ),
            properties=dict(doc.get("properties") or {}),
            context=tuple(doc.get("@context") or ()),
            created_at=doc.get("createdAt"),
            modified_at=doc.get("modifiedAt"),
            status=Status(
                status=doc.get("status"),
                times_sent=doc.get("timesSent", 0),
                times_failed=doc.get("timesFailed", 0),
                last_success=doc.get("lastSuccess"),
                last_failure=doc.get("lastFailure"),
            ),
        )


_PATTERNS: dict[str, Any] = {}


def _pattern(source: str) -> Any:
    """idPatterns compiled once (validation already refused the ones RE2 cannot run)."""
    compiled = _PATTERNS.get(source)
    if compiled is None:
        if len(_PATTERNS) > 4096:
            _PATTERNS.clear()
        compiled = _PATTERNS[source] = compile_pattern(source, "idPattern")
    return compiled
