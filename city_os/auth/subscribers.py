"""Subscriptions belong to their creator: the owner snapshot, and who may see or change one.

Layer: auth/ (pure). A subscription created with authentication on stores its owner: the
creating principal as far as it counts in the subscription's tenant (assignee key, user, client,
tenant roles, groups, citizen flag, API key scope) — a token is gone after the request, but the
notifier must decide for the owner at every delivery (``notifier/access.py``), with the
permissions and consents current then. Only the owner and the tenant's admins see, change or
delete it; to others it does not exist (404). With authentication off there is no owner and
nothing changes.
"""

from __future__ import annotations

from typing import Any

from city_os.auth.policy import Operation, TenantOperation, may
from city_os.auth.principal import KeyScope, Principal, subject_key
from city_os.errors import AccessDenied, ResourceNotFound, Unauthorized


def _restricted(principal: Principal | None) -> Principal | None:
    return None if principal is None or principal.unrestricted else principal


def owner_key(principal: Principal) -> str | None:
    if principal.api_key is not None:
        return "apikey:" + principal.api_key.key_id
    if principal.subject is not None and principal.issuer is not None:
        return subject_key(principal.issuer, principal.subject)
    return None


def new_owner(principal: Principal | None, tenant: str) -> dict[str, Any] | None:
    """The owner a new subscription records (None: authentication off). A caller without an
    identity in the tenant cannot subscribe (401 anonymous, 403 another tenant's); an API key
    needs its ``read`` operation."""
    p = _restricted(principal)
    if p is None:
        return None
    key = owner_key(p)
    if key is None or p.anonymous:
        raise Unauthorized("subscribing needs credentials", error=None)
    if not p.trusted_for(tenant):
        raise AccessDenied(f"this identity does not count in tenant {tenant!r}")
    owner: dict[str, Any] = {"key": key}
    if p.api_key is not None:
        if Operation.READ not in p.api_key.operations:
            raise AccessDenied("subscribing needs an API key with the read operation")
        owner["apiKey"] = {
            "id": p.api_key.key_id,
            "operations": sorted(p.api_key.operations),
            "types": sorted(p.api_key.types),
        }
        return owner
    owner.update(
        subject=p.subject,
        issuer=p.issuer,
        client=p.client,
        roles=sorted(p.roles_in(tenant)),
        groups=sorted(p.groups),
        citizen=p.citizen,
    )
    return owner


def owner_principal(owner: dict[str, Any], tenant: str) -> Principal:
    """The principal the notifier decides for (trusted in this tenant only)."""
    key = owner.get("apiKey")
    if key is not None:
        scope = KeyScope(key["id"], tenant, frozenset(key["operations"]), frozenset(key["types"]))
        return Principal(api_key=scope, tenants=frozenset({tenant}))
    return Principal(
        subject=owner.get("subject"),
        issuer=owner.get("issuer"),
        client=owner.get("client"),
        roles={tenant: frozenset(owner.get("roles", ()))},
        groups=frozenset(owner.get("groups", ())),
        tenants=frozenset({tenant}),
        citizen=bool(owner.get("citizen")),
    )


def visible_to(principal: Principal | None, tenant: str) -> str | None:
    """Whose subscriptions a caller sees: None for all (admins, authentication off), else its
    owner key (a caller without one sees none: the key ``-`` matches no owner)."""
    p = _restricted(principal)
    if p is None or may(p, tenant, TenantOperation.MANAGE_ACCESS):
        return None
    key = owner_key(p) if p.trusted_for(tenant) and not p.anonymous else None
    return key or "-"


def check_visible(
    principal: Principal | None, tenant: str, subscription_id: str, owner: dict[str, Any] | None
) -> None:
    """404 unless the caller may see (and so change) this subscription."""
    key = visible_to(principal, tenant)
    if key is not None and (owner is None or owner.get("key") != key):
        raise ResourceNotFound(f"subscription {subscription_id} not found")
