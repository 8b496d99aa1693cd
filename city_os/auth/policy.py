"""The decision point: may this principal do this to this entity, and what may it read at all.

Layer: auth/ (pure: no I/O, no clock of its own — ``now`` is passed in). Three answers:

* ``decide(principal, tenant, operation, entity, permissions, consents, now)``: one entity.
* ``readable(principal, tenant, permissions)``: the caller's readable scope as a structured
  predicate (``ReadableScope``) that the query store turns into SQL
  (``store/postgres/auth_scope_sql.py``), so pages and counts only ever see readable entities.
  ``decide(READ)`` and the SQL it becomes select the same entities (a property test checks).
* ``may(principal, tenant, tenant_operation)``: operations on the tenant itself.

Rights, in order: authentication off → everything. An API key acts only in its tenant and only
for its operations; its own scope (types) grants them. Tenant roles: ``admin`` owns everything,
``writer`` writes, ``reader`` and ``steward`` read. A citizen reads the entities they are the
data subject of. Permissions grant an action (read < write < admin < own) on a target (one
entity, or types and/or scopes) to an assignee (``Principal.assignee_keys``). Entities with a
data subject are personal: a type/scope permission covers them only if it says ``personal``
(an entity permission always does), and a service (a token's client, not a citizen's token)
reads them under a valid consent of their data subject (``via_consent``: such a read must be
logged in the citizen's access log).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from city_os.auth.principal import Principal, Role
from city_os.ngsild.query.ast import ScopeMatch


class Action(IntEnum):
    READ = 1
    WRITE = 2
    ADMIN = 3  # manage the permissions of the target (share it)
    OWN = 4


class Operation(StrEnum):
    """What a request does to one entity."""

    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    SHARE = "share"  # create or delete permissions targeting the entity


REQUIRED: dict[Operation, Action] = {
    Operation.READ: Action.READ,
    Operation.CREATE: Action.WRITE,
    Operation.UPDATE: Action.WRITE,
    Operation.DELETE: Action.WRITE,
    Operation.SHARE: Action.ADMIN,
}
# What an API key may be scoped to (sharing is for people).
KEY_OPERATIONS = frozenset({Operation.READ, Operation.CREATE, Operation.UPDATE, Operation.DELETE})

ROLE_ACTION: dict[str, Action] = {
    Role.ADMIN: Action.OWN,
    Role.WRITER: Action.WRITE,
    Role.READER: Action.READ,
    Role.STEWARD: Action.READ,
}


class TenantOperation(StrEnum):
    MANAGE_ACCESS = "manageAccess"  # permissions, API keys, data subjects of the tenant
    STEWARD = "steward"  # schemas, value indexes, hosted @contexts
    OPERATE = "operate"  # platform: tenant list, metrics


@dataclass(frozen=True, slots=True)
class EntityFacts:
    """What the decision needs to know of an entity (types are expanded IRIs)."""

    id: str
    types: tuple[str, ...]
    scopes: tuple[str, ...] = ()
    subject: tuple[str, str] | None = None  # (issuer, sub) of its data subject


@dataclass(frozen=True, slots=True)
class Permission:
    id: str
    assignee: str  # an assignee key: public, authenticated, subject:…, group:…, client:…, apikey:…
    action: Action
    entity_id: str | None = None  # target: one entity, or else …
    types: frozenset[str] | None = None  # … these types (None = any) and
    scopes: tuple[ScopeMatch, ...] | None = None  # … these scopes (None = any)
    personal: bool = False  # a type/scope target also covers entities with a data subject

    def covers(self, entity: EntityFacts) -> bool:
        if self.entity_id is not None:
            return self.entity_id == entity.id
        if entity.subject is not None and not self.personal:
            return False
        if self.types is not None and self.types.isdisjoint(entity.types):
            return False
        return self.scopes is None or any(
            scope_covers(m, s) for m in self.scopes for s in entity.scopes
        )


@dataclass(frozen=True, slots=True)
class Consent:
    """A citizen's consent that a service (client id) reads their entities of some types."""

    id: str
    issuer: str
    subject: str
    client: str
    types: frozenset[str]
    expires: float  # epoch seconds
    revoked: bool = False

    def valid(self, now: float) -> bool:
        return not self.revoked and now < self.expires


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str
    via_consent: str | None = None  # the consent id a read relies on (log it)

    def __bool__(self) -> bool:
        return self.allowed


def scope_covers(match: ScopeMatch, scope: str) -> bool:
    """Whether ``scope`` (``/a/b``) matches the pattern, as scopeQ means it (§4.19)."""
    if not match.levels:
        return match.descendants and scope.startswith("/") and len(scope) > 1
    levels = scope.split("/")[1:]
    n = len(match.levels)
    if len(levels) < n or (len(levels) > n and not match.descendants):
        return False
    return all(p == "+" or p == lv for p, lv in zip(match.levels, levels, strict=False))


def parse_scope_pattern(text: str) -> ScopeMatch:
    """A permission's scope: ``/a/b`` (exactly), ``/a/+`` (one level), ``/a/#`` (and below)."""
    if not re.fullmatch(r"(/([^/#+]+|\+))*(/#)?", text) or text in ("", "/"):
        raise ValueError(f"{text!r} is not a scope pattern like /Saga/Kyushu, /Saga/+ or /Saga/#")
    descendants = text.endswith("/#")
    body = text[:-2] if descendants else text
    return ScopeMatch(tuple(body.split("/")[1:]) if body else (), descendants)


def scope_pattern_text(match: ScopeMatch) -> str:
    """The pattern as written (``parse_scope_pattern``'s inverse)."""
    return (
        "/" + "/".join(match.levels) + ("/#" if match.descendants else "") if match.levels else "/#"
    )


def _granted(
    keys: frozenset[str], entity: EntityFacts, permissions: Iterable[Permission], need: Action
) -> Permission | None:
    for p in permissions:
        if p.action >= need and p.assignee in keys and p.covers(entity):
            return p
    return None


def decide(
    principal: Principal,
    tenant: str,
    operation: Operation,
    entity: EntityFacts,
    permissions: Sequence[Permission] = (),
    consents: Sequence[Consent] = (),
    now: float = 0.0,
) -> Decision:
    """``permissions``: the tenant's type/scope permissions and those targeting this entity;
    ``consents``: consents of the entity's data subject (others are ignored)."""
    if principal.unrestricted:
        return Decision(True, "authentication is off")
    need = REQUIRED[operation]
    keys = _assignees(principal, tenant, operation)
    key = principal.api_key
    if key is not None and "apikey:" + key.key_id in keys:
        if not key.types or not key.types.isdisjoint(entity.types):
            return Decision(True, "API key scope")
    for role in principal.roles_in(tenant):
        if ROLE_ACTION[role] >= need:
            return Decision(True, f"role {role}")
    if (
        operation is Operation.READ
        and entity.subject is not None
        and entity.subject == citizen_of(principal, tenant)
    ):
        return Decision(True, "the caller is the data subject")
    granted = _granted(keys, entity, permissions, need)
    if granted is not None:
        return Decision(True, f"permission {granted.id}")
    client = consent_client(principal, tenant)
    if operation is Operation.READ and entity.subject is not None and client is not None:
        for consent in consents:
            if (
                (consent.issuer, consent.subject) == entity.subject
                and consent.client == client
                and consent.valid(now)
                and not consent.types.isdisjoint(entity.types)
            ):
                return Decision(True, f"consent {consent.id}", via_consent=consent.id)
    return Decision(False, f"no right to {operation} entity {entity.id}")


def _assignees(principal: Principal, tenant: str, operation: Operation) -> frozenset[str]:
    """Whom the principal counts as for ``operation``: an API key used outside its tenant or
    its operations is just the public."""
    key = principal.api_key
    if key is not None and (key.tenant != tenant or operation not in key.operations):
        return frozenset({"public"})
    return principal.assignee_keys(tenant)


def citizen_of(principal: Principal, tenant: str) -> tuple[str, str] | None:
    """(issuer, sub) of a citizen signed in at a citizens' IdP trusted for the tenant."""
    if not principal.citizen or not principal.trusted_for(tenant):
        return None
    if principal.issuer is None or principal.subject is None:
        return None
    return principal.issuer, principal.subject


def consent_client(principal: Principal, tenant: str) -> str | None:
    """The service a principal acts as for consents: a token's client, unless the token is a
    citizen's own (a citizen using a service's app reads only their own data)."""
    if principal.citizen or principal.api_key is not None or not principal.trusted_for(tenant):
        return None
    return principal.client


def may(principal: Principal, tenant: str, operation: TenantOperation) -> Decision:
    if principal.unrestricted:
        return Decision(True, "authentication is off")
    if operation is TenantOperation.OPERATE:
        return Decision(principal.operator, "platform role operator")
    roles = principal.roles_in(tenant)
    if Role.ADMIN in roles:
        return Decision(True, "role admin")
    if operation is TenantOperation.STEWARD and Role.STEWARD in roles:
        return Decision(True, "role steward")
    needed = "admin" if operation is TenantOperation.MANAGE_ACCESS else "steward or admin"
    return Decision(False, f"{operation} in tenant {tenant!r} needs the role {needed}")


# --- the readable scope -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selector:
    """Entities of these types (None = any) with a scope matching one of these (None = any);
    personal ones (with a data subject) only if ``personal``."""

    types: frozenset[str] | None
    scopes: tuple[ScopeMatch, ...] | None
    personal: bool


@dataclass(frozen=True, slots=True)
class ReadableScope:
    """What a caller may read in a tenant: the union of the members that are set."""

    everything: bool = False
    selectors: tuple[Selector, ...] = ()
    grantees: frozenset[str] = frozenset()  # assignee keys whose entity permissions count
    subject: tuple[str, str] | None = None  # the citizen's own entities (issuer, sub)
    consent_client: str | None = None  # entities whose data subject consented to this client
    action: Action = Action.READ  # the least action an entity permission of grantees must give

    @property
    def nothing(self) -> bool:
        return (
            not (self.everything or self.selectors or self.grantees or self.subject)
            and self.consent_client is None
        )


def readable(
    principal: Principal,
    tenant: str,
    permissions: Sequence[Permission] = (),
    operation: Operation = Operation.READ,
) -> ReadableScope:
    """The readable scope; ``permissions`` are the tenant's type/scope permissions (entity
    permissions are looked up in SQL, through ``grantees``). With another ``operation``
    (delete: a purge) it is the scope of entities the principal may do that to: citizens and
    consents only ever read."""
    if principal.unrestricted:
        return ReadableScope(everything=True)
    need = REQUIRED[operation]
    keys = _assignees(principal, tenant, operation)
    key = principal.api_key
    selectors: list[Selector] = []
    if key is not None and "apikey:" + key.key_id in keys:
        if not key.types:
            return ReadableScope(everything=True)
        selectors.append(Selector(key.types, None, True))
    if any(ROLE_ACTION[r] >= need for r in principal.roles_in(tenant)):
        return ReadableScope(everything=True)
    for p in permissions:
        if p.entity_id is None and p.assignee in keys and p.action >= need:
            selectors.append(Selector(p.types, p.scopes, p.personal))
    reading = operation is Operation.READ
    return ReadableScope(
        selectors=tuple(dict.fromkeys(selectors)),
        grantees=keys,
        subject=citizen_of(principal, tenant) if reading else None,
        consent_client=consent_client(principal, tenant) if reading else None,
        action=need,
    )
