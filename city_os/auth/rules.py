"""The route rule table: every route of the API and the right it needs, in one declaration.

Layer: auth/ (pure data and one pure check). ``RULES`` maps ``(method, canonical path)`` to a
rule; ``tests/integration/auth/test_route_rules.py`` walks the application's router and fails on
a route without a rule (a new API cannot land as an open door) and on a rule naming no route.
The middleware (``api/rules.py``) applies the tenant rules before the handler runs; the others
say where their decision is taken:

* ``Open``: anyone (probes, public documents, answers that are always 400);
* ``Tenant``: a right on the tenant itself (steward, reader, operator), checked here — also
  the coarse rule of a face that does not decide per entity (yet): a tenant role that reads,
  or writes, so it is closed rather than open. The tenant is the request's: ``NGSILD-Tenant``,
  or ``Fiware-Service`` on the NGSIv2 face (``api/rules.py``);
* ``Entity``: an operation on entities, decided in core/ where the entity is known
  (``auth/enforce.py``: per entity, readable scope in SQL for queries and discovery);
* ``Owned``: a subscription, visible and changeable by its owner (and tenant admins);
* ``Service``: the service behind the route decides (permissions, API keys, consents, data
  subjects — they were built with their own checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from city_os.auth.policy import Decision, Operation, TenantOperation, may
from city_os.auth.principal import Principal, Role


class TenantRight(StrEnum):
    READ = "read"  # any tenant role (reader, writer, steward, admin)
    WRITE = "write"  # a tenant role that writes entities (writer, admin)
    STEWARD = "steward"  # schemas, value indexes, hosted @contexts
    OPERATE = "operate"  # the platform operator


@dataclass(frozen=True, slots=True)
class Open:
    why: str


@dataclass(frozen=True, slots=True)
class Tenant:
    right: TenantRight


@dataclass(frozen=True, slots=True)
class Entity:
    operation: Operation


@dataclass(frozen=True, slots=True)
class Owned:
    operation: Operation


@dataclass(frozen=True, slots=True)
class Service:
    where: str


Rule = Open | Tenant | Entity | Owned | Service

_E = "/ngsi-ld/v1/entities"
_OPS = "/ngsi-ld/v1/entityOperations"
_SCHEMAS = "/cityos/v1/schemas"
_SUBS = "/ngsi-ld/v1/subscriptions"
_CSR = "/ngsi-ld/v1/csourceRegistrations"
_SNAPS = "/ngsi-ld/v1/snapshots"
_CSUBS = "/ngsi-ld/v1/csourceSubscriptions"
READ, CREATE, UPDATE, DELETE = Operation.READ, Operation.CREATE, Operation.UPDATE, Operation.DELETE
STEWARD, READER = Tenant(TenantRight.STEWARD), Tenant(TenantRight.READ)
WRITER = Tenant(TenantRight.WRITE)
_T = "/ngsi-ld/v1/temporal/entities"
_V2 = "/v2/entities"

RULES: Final[dict[tuple[str, str], Rule]] = {
    # entities (§5.6): decided per entity in core/
    ("POST", _E): Entity(CREATE),
    ("PATCH", _E): Open("no entity id: always 400"),
    ("PUT", _E): Open("no entity id: always 400"),
    ("GET", _E + "/{entityId}"): Entity(READ),
    ("PUT", _E + "/{entityId}"): Entity(UPDATE),
    ("PATCH", _E + "/{entityId}"): Entity(UPDATE),
    ("DELETE", _E + "/{entityId}"): Entity(DELETE),
    ("POST", _E + "/{entityId}/attrs"): Entity(UPDATE),
    ("PATCH", _E + "/{entityId}/attrs"): Entity(UPDATE),
    ("PATCH", _E + "/{entityId}/attrs/{attrId}"): Entity(UPDATE),
    ("PUT", _E + "/{entityId}/attrs/{attrId}"): Entity(UPDATE),
    ("DELETE", _E + "/{entityId}/attrs/{attrId}"): Entity(UPDATE),
    # queries: the readable scope in SQL; purge: the deletable scope
    ("GET", _E): Entity(READ),
    ("POST", _OPS + "/query"): Entity(READ),
    ("DELETE", _E): Entity(DELETE),
    # batch: per entity, in the 207 result
    ("POST", _OPS + "/create"): Entity(CREATE),
    ("POST", _OPS + "/upsert"): Entity(UPDATE),
    ("POST", _OPS + "/update"): Entity(UPDATE),
    ("POST", _OPS + "/merge"): Entity(UPDATE),
    ("POST", _OPS + "/delete"): Entity(DELETE),
    # discovery: computed over the readable scope
    ("GET", "/ngsi-ld/v1/types"): Entity(READ),
    ("GET", "/ngsi-ld/v1/types/{type}"): Entity(READ),
    ("GET", "/ngsi-ld/v1/attributes"): Entity(READ),
    ("GET", "/ngsi-ld/v1/attributes/{attrId}"): Entity(READ),
    # hosted @contexts: public documents; adding and deleting is a steward's
    ("POST", "/ngsi-ld/v1/jsonldContexts"): STEWARD,
    ("GET", "/ngsi-ld/v1/jsonldContexts"): Open("@contexts are public documents"),
    ("GET", "/ngsi-ld/v1/jsonldContexts/{contextId}"): Open("@contexts are public documents"),
    ("DELETE", "/ngsi-ld/v1/jsonldContexts/{contextId}"): STEWARD,
    # the schema registry
    ("POST", _SCHEMAS): STEWARD,
    ("POST", _SCHEMAS + "/dryRun"): STEWARD,
    ("GET", _SCHEMAS): READER,
    ("GET", _SCHEMAS + "/{type}"): READER,
    ("DELETE", _SCHEMAS + "/{type}"): STEWARD,
    ("GET", _SCHEMAS + "/{type}/versions/{version}"): READER,
    ("DELETE", _SCHEMAS + "/{type}/versions/{version}"): STEWARD,
    ("POST", _SCHEMAS + "/{type}/versions/{version}/dryRun"): STEWARD,
    ("GET", _SCHEMAS + "/{type}/active"): READER,
    ("PUT", _SCHEMAS + "/{type}/active"): STEWARD,
    ("DELETE", _SCHEMAS + "/{type}/active"): STEWARD,
    # value indexes
    ("POST", "/cityos/v1/indexes"): STEWARD,
    ("GET", "/cityos/v1/indexes"): READER,
    ("GET", "/cityos/v1/indexes/{attribute}"): READER,
    ("DELETE", "/cityos/v1/indexes/{attribute}"): STEWARD,
    # subscriptions: their owner's (notifications carry only what the owner may read)
    ("POST", _SUBS): Owned(CREATE),
    ("GET", _SUBS): Owned(READ),
    ("GET", _SUBS + "/{subscriptionId}"): Owned(READ),
    ("PATCH", _SUBS + "/{subscriptionId}"): Owned(UPDATE),
    ("DELETE", _SUBS + "/{subscriptionId}"): Owned(DELETE),
    ("GET", "/ngsi-ld/v1/info/sourceIdentity"): Open("the broker's identity (§5.15)"),
    # context source registrations (§5.9, §5.10): a tenant's federation set-up; data
    # stewards register sources, any tenant role discovers them
    # EntityMaps (§5.14): made from a query over the readable scope; the tenant's readers
    ("GET", "/ngsi-ld/v1/entityMaps"): Entity(READ),
    ("GET", "/ngsi-ld/v1/temporal/entityMaps"): Entity(READ),
    ("GET", "/ngsi-ld/v1/entityMaps/{entityMapId}"): READER,
    ("PATCH", "/ngsi-ld/v1/entityMaps/{entityMapId}"): READER,
    ("DELETE", "/ngsi-ld/v1/entityMaps/{entityMapId}"): READER,
    # Snapshots (§5.16, snapshots/): a frozen copy holds what its creator could read, and the
    # copy has no permissions of its own, so only the tenant's writers make and read them
    ("POST", _SNAPS): WRITER,
    ("GET", _SNAPS): WRITER,
    ("DELETE", _SNAPS): WRITER,
    ("GET", _SNAPS + "/{snapshotId}"): WRITER,
    ("PATCH", _SNAPS + "/{snapshotId}"): WRITER,
    ("DELETE", _SNAPS + "/{snapshotId}"): WRITER,
    ("POST", _SNAPS + "/{snapshotId}/clone"): WRITER,
    ("POST", _CSR): STEWARD,
    ("GET", _CSR): READER,
    ("GET", _CSR + "/{registrationId}"): READER,
    ("PATCH", _CSR + "/{registrationId}"): STEWARD,
    ("DELETE", _CSR + "/{registrationId}"): STEWARD,
    # ... and their subscriptions (§5.11): their owner's, as entity subscriptions
    ("POST", _CSUBS): Owned(CREATE),
    ("GET", _CSUBS): Owned(READ),
    ("GET", _CSUBS + "/{subscriptionId}"): Owned(READ),
    ("PATCH", _CSUBS + "/{subscriptionId}"): Owned(UPDATE),
    ("DELETE", _CSUBS + "/{subscriptionId}"): Owned(DELETE),
    # access control's own resources
    ("POST", "/cityos/v1/apikeys"): Service("auth/apikeys.py: tenant admins"),
    ("GET", "/cityos/v1/apikeys"): Service("auth/apikeys.py: tenant admins"),
    ("GET", "/cityos/v1/apikeys/{keyId}"): Service("auth/apikeys.py: tenant admins"),
    ("DELETE", "/cityos/v1/apikeys/{keyId}"): Service("auth/apikeys.py: tenant admins"),
    ("POST", "/cityos/v1/permissions"): Service("auth/permissions.py: admins, sharers"),
    ("GET", "/cityos/v1/permissions"): Service("auth/permissions.py: admins"),
    ("GET", "/cityos/v1/permissions/{permissionId}"): Service("auth/permissions.py"),
    ("DELETE", "/cityos/v1/permissions/{permissionId}"): Service("auth/permissions.py"),
    ("PUT", "/cityos/v1/dataSubjects/{entityId}"): Service("auth/consent.py: entity writers"),
    ("GET", "/cityos/v1/dataSubjects/{entityId}"): Service("auth/consent.py: entity writers"),
    ("DELETE", "/cityos/v1/dataSubjects/{entityId}"): Service("auth/consent.py: writers"),
    ("GET", "/cityos/v1/audit"): Service("auth/audit.py: tenant admins"),
    ("GET", "/cityos/v1/me"): Open("who am I: anyone"),
    ("GET", "/cityos/v1/me/entities"): Service("auth/consent.py: citizens"),
    ("GET", "/cityos/v1/me/consents"): Service("auth/consent.py: citizens"),
    ("POST", "/cityos/v1/me/consents"): Service("auth/consent.py: citizens"),
    ("GET", "/cityos/v1/me/consents/{consentId}"): Service("auth/consent.py: citizens"),
    ("DELETE", "/cityos/v1/me/consents/{consentId}"): Service("auth/consent.py: citizens"),
    ("GET", "/cityos/v1/me/accessLog"): Service("auth/consent.py: citizens"),
    # the temporal API (§5.6.11-5.6.20): decided per entity in temporal/access.py
    ("POST", _T): Entity(CREATE),
    ("GET", _T): Entity(READ),
    ("GET", _T + "/{entity_id}"): Entity(READ),
    ("DELETE", _T + "/{entity_id}"): Entity(DELETE),
    ("POST", _T + "/{entity_id}/attrs"): Entity(UPDATE),
    ("DELETE", _T + "/{entity_id}/attrs/{attr}"): Entity(UPDATE),
    ("DELETE", _T + "/{entity_id}/attrs/{attr}/{instance_id}"): Entity(UPDATE),
    ("PATCH", _T + "/{entity_id}/attrs/{attr}/{instance_id}"): Entity(UPDATE),
    ("POST", "/ngsi-ld/v1/temporal/entityOperations/query"): Entity(READ),
    # NGSIv2 (a second face on the same core): decided per entity in core/ like NGSI-LD (the
    # request context carries the principal; Fiware-Service is the tenant), subscriptions owned
    ("GET", "/v2"): Open("the NGSIv2 entry point"),
    ("GET", "/version"): Open("the broker's version (Orion's /version)"),
    ("GET", "/statistics"): Tenant(TenantRight.OPERATE),
    ("POST", _V2): Entity(CREATE),
    ("GET", _V2): Entity(READ),
    ("PATCH", _V2): Open("no entity id: always 400"),
    ("PUT", _V2): Open("no entity id: always 400"),
    ("GET", _V2 + "/{entityId}"): Entity(READ),
    ("DELETE", _V2 + "/{entityId}"): Entity(DELETE),
    ("GET", _V2 + "/{entityId}/attrs"): Entity(READ),
    ("POST", _V2 + "/{entityId}/attrs"): Entity(UPDATE),
    ("PATCH", _V2 + "/{entityId}/attrs"): Entity(UPDATE),
    ("PUT", _V2 + "/{entityId}/attrs"): Entity(UPDATE),
    ("GET", _V2 + "/{entityId}/attrs/{attrName}"): Entity(READ),
    ("PUT", _V2 + "/{entityId}/attrs/{attrName}"): Entity(UPDATE),
    ("DELETE", _V2 + "/{entityId}/attrs/{attrName}"): Entity(UPDATE),
    ("GET", _V2 + "/{entityId}/attrs/{attrName}/value"): Entity(READ),
    ("PUT", _V2 + "/{entityId}/attrs/{attrName}/value"): Entity(UPDATE),
    ("GET", "/v2/types"): Entity(READ),
    ("GET", "/v2/types/{type}"): Entity(READ),
    ("POST", "/v2/op/query"): Entity(READ),
    ("POST", "/v2/op/update"): Entity(UPDATE),
    ("POST", "/v2/subscriptions"): Owned(CREATE),
    ("GET", "/v2/subscriptions"): Owned(READ),
    ("GET", "/v2/subscriptions/{subscriptionId}"): Owned(READ),
    ("PATCH", "/v2/subscriptions/{subscriptionId}"): Owned(UPDATE),
    ("DELETE", "/v2/subscriptions/{subscriptionId}"): Owned(DELETE),
    # registrations list nothing and creation is 501 (docs/ngsiv2.md): a tenant role
    ("POST", "/v2/registrations"): WRITER,
    ("GET", "/v2/registrations"): READER,
    ("GET", "/v2/registrations/{registrationId}"): READER,
    ("PATCH", "/v2/registrations/{registrationId}"): WRITER,
    ("DELETE", "/v2/registrations/{registrationId}"): WRITER,
    # notifications this broker's copies of Subscriptions at context sources send back
    # (api/remote_notify.py): the copy's unguessable id, or a reconciliation that changes nothing
    # unless a registration did, is all they can do
    ("POST", "/ngsi-ld/ex/remote-notify"): Open("notifications of context sources"),
    ("POST", "/ngsi-ld/ex/csource-notify"): Open("notifications of this broker's own watch"),
    # push and streams
    ("GET", "/cityos/v1/webpush/key"): Open("the VAPID public key (RFC 8292): public"),
    ("GET", "/cityos/v1/subscriptions/{subscriptionId}/stream"): Owned(READ),
    # the API's documentation
    ("GET", "/openapi.json"): Open("the OpenAPI document"),
    ("GET", "/docs"): Open("the API documentation page"),
    ("GET", "/docs/{asset}"): Open("the documentation page's assets"),
    # operations
    ("GET", "/metrics"): Tenant(TenantRight.OPERATE),
    ("GET", "/health"): Open("liveness probe"),
    ("GET", "/ready"): Open("readiness probe"),
}

_TENANT_OPERATIONS: Final = {
    TenantRight.STEWARD: TenantOperation.STEWARD,
    TenantRight.OPERATE: TenantOperation.OPERATE,
}


def allowed(principal: Principal, tenant: str, rule: Tenant) -> Decision:
    """A tenant rule's decision (``READ``: any tenant role)."""
    if rule.right is TenantRight.READ:
        if principal.unrestricted or principal.roles_in(tenant):
            return Decision(True, "a tenant role")
        return Decision(False, f"reading this in tenant {tenant!r} needs a tenant role")
    if rule.right is TenantRight.WRITE:
        roles = principal.roles_in(tenant)
        if principal.unrestricted or Role.WRITER in roles or Role.ADMIN in roles:
            return Decision(True, "a tenant role that writes")
        return Decision(False, f"changing this in tenant {tenant!r} needs the role writer")
    return may(principal, tenant, _TENANT_OPERATIONS[rule.right])
