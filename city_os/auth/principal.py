"""Who is calling: the ``Principal`` every request carries, and how token claims become one.

Layer: auth/ (pure). A principal is built by the authentication middleware from a verified OIDC
token, an API key, or nothing (``ANONYMOUS``); with authentication off every request is
``UNRESTRICTED``. Roles are per tenant; ``operator`` is the one platform role. Role claim values
are ``role`` (the default tenant ``""``) or ``role@tenant`` (tenant names cannot hold ``@``), or
the claim is an object ``{tenant: [role, …]}``; other values are ignored as roles but, like
group claim values, still name the principal as the assignee of a permission (``group:…``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

ALL_TENANTS: Final = "*"


class Role(StrEnum):
    ADMIN = "admin"  # everything in the tenant, permissions included
    STEWARD = "steward"  # schemas, value indexes, @contexts (and reading entities)
    WRITER = "writer"
    READER = "reader"


OPERATOR: Final = "operator"  # platform role: tenant list, metrics, cross-tenant operations
TENANT_ROLES: Final = frozenset(r.value for r in Role)


@dataclass(frozen=True, slots=True)
class KeyScope:
    """What an API key may do: one tenant, some operations, optionally some entity types
    (expanded IRIs; empty = any type) and one browser ``Origin``."""

    key_id: str
    tenant: str
    operations: frozenset[str]
    types: frozenset[str] = frozenset()
    origin: str | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str | None = None  # `sub` of a token
    issuer: str | None = None  # `iss` of a token
    client: str | None = None  # `azp` (or `client_id`) of a token: the service acting
    roles: Mapping[str, frozenset[str]] = field(default_factory=dict)  # tenant → roles
    operator: bool = False
    groups: frozenset[str] = frozenset()  # group claim values and raw role claim values
    tenants: frozenset[str] | None = None  # tenants its issuer is trusted for; None = all
    api_key: KeyScope | None = None
    citizen: bool = False  # signed in at a citizens' IdP (the My Number Card portal)
    anonymous: bool = False
    unrestricted: bool = False  # authentication is off: everything is allowed
    expires: float | None = None  # `exp` of the token (epoch seconds)

    def trusted_for(self, tenant: str) -> bool:
        """Whether this principal's identity counts in ``tenant`` (its issuer is allowed there;
        an API key belongs to one tenant)."""
        if self.unrestricted:
            return True
        if self.api_key is not None:
            return self.api_key.tenant == tenant
        if self.anonymous:
            return False
        return self.tenants is None or tenant in self.tenants

    def roles_in(self, tenant: str) -> frozenset[str]:
        if not self.trusted_for(tenant):
            return frozenset()
        return self.roles.get(tenant, frozenset())

    def assignee_keys(self, tenant: str) -> frozenset[str]:
        """The permission assignees this principal is, in ``tenant`` (``public`` always)."""
        keys = {"public"}
        if not self.trusted_for(tenant):
            return frozenset(keys)
        if self.api_key is not None:
            keys.add("apikey:" + self.api_key.key_id)
            return frozenset(keys)
        keys.add("authenticated")
        if self.subject is not None and self.issuer is not None:
            keys.add(subject_key(self.issuer, self.subject))
        if self.client is not None:
            keys.add("client:" + self.client)
        keys.update("group:" + g for g in self.groups)
        return frozenset(keys)

    @property
    def actor(self) -> dict[str, str]:
        """CloudEvents extension attributes naming who made a change (docs/access-control.md):
        ``cityosactor`` and, for a token naming its client, ``cityosclient``."""
        if self.unrestricted:
            return {"cityosactor": "local"}
        if self.api_key is not None:
            return {"cityosactor": "apikey:" + self.api_key.key_id}
        if self.anonymous or self.subject is None or self.issuer is None:
            return {"cityosactor": "anonymous"}
        out = {"cityosactor": f"oidc:{self.issuer}#{self.subject}"}
        if self.client is not None:
            out["cityosclient"] = self.client
        return out

    @property
    def rate_key(self) -> str | None:
        """Whom a rate limit counts: the key, the token's subject, else None (the address)."""
        if self.api_key is not None:
            return "apikey:" + self.api_key.key_id
        if self.subject is not None and self.issuer is not None:
            return subject_key(self.issuer, self.subject)
        return None


def subject_key(issuer: str, subject: str) -> str:
    """Assignee key of one user. OIDC issuers are URLs without a fragment, so ``#`` separates."""
    return f"subject:{issuer}#{subject}"


ANONYMOUS: Final = Principal(anonymous=True)
UNRESTRICTED: Final = Principal(unrestricted=True)


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted claim path (``realm_access.roles``), or None."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def strings(value: Any) -> list[str]:
    """A claim as a list of strings: a string, or the strings of a list (others ignored)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def parse_roles(value: Any) -> tuple[dict[str, frozenset[str]], bool, frozenset[str]]:
    """Roles per tenant, the operator flag, and the raw values (for group assignees)."""
    per_tenant: dict[str, set[str]] = {}
    operator = False
    raw: list[str] = []
    pairs: Iterable[tuple[str, str]]
    if isinstance(value, Mapping):
        pairs = [(str(t), r) for t, rs in value.items() for r in strings(rs)]
    else:
        raw = strings(value)
        pairs = [(t, r) for r, _, t in (v.partition("@") for v in raw)]
    for tenant, role in pairs:
        if role == OPERATOR and not tenant:
            operator = True
        elif role in TENANT_ROLES:
            per_tenant.setdefault(tenant, set()).add(role)
    return {t: frozenset(rs) for t, rs in per_tenant.items()}, operator, frozenset(raw)
