"""Permissions as resources (/cityos/v1/permissions): what they mean, who may change them, and
the per-process cache of each tenant's type/scope permissions.

Layer: auth/ (service; no aiohttp, no SQL). A permission body::

    {"assignee": {"kind": "public" | "authenticated" | "subject" | "group" | "client" | "apiKey",
                  "value": "…", "issuer": "…"},          # value for all but public/authenticated;
                                                          # issuer for subject
     "action": "read" | "write" | "admin" | "own",
     "target": {"entity": "urn:…"} | {"types": ["AED"], "scopes": ["/Saga/#"]},
     "personal": false}                                   # types/scopes also cover personal data

Type names are terms of the request's @context (or IRIs). Tenant admins manage every permission;
whoever may ``share`` an entity (action admin on it) may grant read, write or admin on that
entity alone. ``public`` may only read, and never personal data. The cache is loaded per tenant on
first use and dropped on ``NOTIFY cityos_permissions`` (every change), and entirely when the
listener reconnects.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final

from city_os.auth.policy import (
    Action,
    Operation,
    Permission,
    TenantOperation,
    decide,
    may,
    parse_scope_pattern,
    scope_pattern_text,
)
from city_os.auth.principal import Principal, subject_key
from city_os.errors import AccessDenied, BadRequestData, NgsiLdError, ResourceNotFound
from city_os.ngsild.entity import check_entity_id, parse_types
from city_os.ngsild.jsonld import TermMap
from city_os.store.postgres.auth_permissions import CHANNEL, PermissionRepository
from city_os.store.postgres.db import Tenants
from city_os.store.postgres.listen import ChannelListener

ACTIONS: Final = {a.name.lower(): a for a in Action}
_KINDS: Final = {
    "public": None,
    "authenticated": None,
    "subject": "subject:",
    "group": "group:",
    "client": "client:",
    "apiKey": "apikey:",
}
_MEMBERS: Final = {"assignee", "action", "target", "personal", "@context"}


@dataclass(frozen=True, slots=True)
class StoredPermission:
    permission: Permission
    created_by: str
    created_at: str


def assignee_key(raw: object) -> str:
    """The assignee object of a body → its key (``Principal.assignee_keys`` form)."""
    if not isinstance(raw, dict) or raw.get("kind") not in _KINDS:
        raise BadRequestData(f"assignee must be an object with kind one of {', '.join(_KINDS)}")
    kind, value, issuer = raw["kind"], raw.get("value"), raw.get("issuer")
    unknown = set(raw) - {"kind", "value", "issuer"}
    if unknown:
        raise BadRequestData(f"assignee: unknown members {', '.join(sorted(unknown))}")
    prefix = _KINDS[kind]
    if prefix is None:
        if value is not None or issuer is not None:
            raise BadRequestData(f"assignee {kind} takes no value or issuer")
        return str(kind)
    if not isinstance(value, str) or not value:
        raise BadRequestData(f"assignee {kind} needs a value (a string)")
    if kind == "subject":
        if not isinstance(issuer, str) or not issuer:
            raise BadRequestData("assignee subject needs the issuer of the token's sub")
        return subject_key(issuer, value)
    if issuer is not None:
        raise BadRequestData(f"assignee {kind} takes no issuer")
    return prefix + value


def assignee_body(key: str) -> dict[str, str]:
    if key in ("public", "authenticated"):
        return {"kind": key}
    prefix, _, rest = key.partition(":")
    if prefix == "subject":
        issuer, _, subject = rest.partition("#")
        return {"kind": "subject", "value": subject, "issuer": issuer}
    return {"kind": "apiKey" if prefix == "apikey" else prefix, "value": rest}


def parse_permission(body: dict[str, Any], terms: TermMap) -> Permission:
    unknown = set(body) - _MEMBERS
    if unknown:
        raise BadRequestData(f"unknown members: {', '.join(sorted(unknown))}")
    assignee = assignee_key(body.get("assignee"))
    action = ACTIONS.get(body.get("action"))  # type: ignore[arg-type]
    if action is None:
        raise BadRequestData(f"action must be one of {', '.join(ACTIONS)}")
    personal = body.get("personal", False)
    if not isinstance(personal, bool):
        raise BadRequestData("personal must be true or false")
    target = body.get("target")
    if not isinstance(target, dict) or not target or set(target) - {"entity", "types", "scopes"}:
        raise BadRequestData("target must be {entity} or {types and/or scopes}")
    pid = "urn:cityos:Permission:" + uuid.uuid4().hex
    if assignee == "public" and (action > Action.READ or personal):
        raise BadRequestData("public may only be granted read, and never on personal data")
    if "entity" in target:
        if len(target) > 1 or personal:
            raise BadRequestData("an entity target stands alone (no types, scopes or personal)")
        entity_id = target["entity"]
        if not isinstance(entity_id, str):
            raise BadRequestData("target.entity must be an entity id")
        check_entity_id(entity_id)
        return Permission(pid, assignee, action, entity_id=entity_id)
    types = scopes = None
    if "types" in target:
        if not isinstance(target["types"], list) or not target["types"]:
            raise BadRequestData("target.types must be a non-empty list of type names")
        types = frozenset(parse_types(terms, target["types"]))
    if "scopes" in target:
        raw = target["scopes"]
        if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
            raise BadRequestData("target.scopes must be a non-empty list of scope patterns")
        try:
            scopes = tuple(parse_scope_pattern(s) for s in raw)
        except ValueError as exc:
            raise BadRequestData(f"target.scopes: {exc}") from None
    return Permission(pid, assignee, action, types=types, scopes=scopes, personal=personal)


class PermissionService:
    def __init__(self, repo: PermissionRepository, tenants: Tenants, dsn: str | None) -> None:
        self.repo = repo
        self.tenants = tenants
        self._dsn = dsn
        self._cache: dict[str, tuple[Permission, ...]] = {}
        self._generation = 0  # bumped on every invalidation: a load begun before is not kept
        self._listener: ChannelListener | None = None

    # -- the cache -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._dsn is not None:
            self._listener = ChannelListener(self._dsn, CHANNEL, self._changed, self._reset)
            await self._listener.start()

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()

    async def _changed(self, tenant: str) -> None:
        self._generation += 1
        self._cache.pop(tenant, None)

    async def _reset(self) -> None:
        self._generation += 1
        self._cache = {}

    async def of_tenant(self, tenant: str) -> tuple[Permission, ...]:
        """The tenant's type/scope permissions, from memory after the first call."""
        cached = self._cache.get(tenant)
        if cached is not None:
            return cached
        generation = self._generation
        try:
            schema = await self.tenants.schema(tenant, create=False)
        except NgsiLdError:
            return ()  # no tenant, no permissions
        loaded = tuple(await self.repo.of_tenant(schema))
        if generation == self._generation:
            self._cache[tenant] = loaded
        return loaded

    # -- the resource ----------------------------------------------------------------------

    async def _check(self, principal: Principal, tenant: str, permission: Permission) -> str:
        """The tenant schema, if the principal may create or delete ``permission``."""
        admin = may(principal, tenant, TenantOperation.MANAGE_ACCESS)
        if permission.entity_id is None:
            if not admin:
                raise AccessDenied(admin.reason)
            return await self.tenants.schema(tenant, create=True)
        schema = await self.tenants.schema(tenant, create=False)
        facts = await self.repo.facts(schema, permission.entity_id)
        if facts is None:
            raise ResourceNotFound(f"entity {permission.entity_id} not found")
        if admin:
            return schema
        grants = (*await self.of_tenant(tenant), *await self.repo.for_entity(schema, facts.id))
        share = decide(principal, tenant, Operation.SHARE, facts, grants)
        if not share or permission.action is Action.OWN:
            raise AccessDenied(
                f"granting {permission.action.name.lower()} on {facts.id} needs the role admin"
                + ("" if share else " or the right to share the entity")
            )
        return schema

    async def create(
        self, principal: Principal, tenant: str, body: dict[str, Any], terms: TermMap
    ) -> StoredPermission:
        permission = parse_permission(body, terms)
        schema = await self._check(principal, tenant, permission)
        by, at = await self.repo.create(schema, tenant, permission, principal.actor["cityosactor"])
        await self._changed(tenant)
        return StoredPermission(permission, by, at)

    async def delete(self, principal: Principal, tenant: str, permission_id: str) -> None:
        found = await self.get(principal, tenant, permission_id)
        schema = await self._check(principal, tenant, found.permission)
        actor = principal.actor["cityosactor"]
        if not await self.repo.delete(schema, tenant, permission_id, actor):
            raise ResourceNotFound(f"permission {permission_id} not found")
        await self._changed(tenant)

    async def get(self, principal: Principal, tenant: str, permission_id: str) -> StoredPermission:
        schema = await self.tenants.schema(tenant, create=False)
        found = await self.repo.get(schema, permission_id)
        if found is None:
            raise ResourceNotFound(f"permission {permission_id} not found")
        permission, (by, at) = found
        if permission.entity_id is None or not await self._may_share(
            principal, tenant, schema, permission
        ):
            admin = may(principal, tenant, TenantOperation.MANAGE_ACCESS)
            if not admin:
                raise AccessDenied(admin.reason)
        return StoredPermission(permission, by, at)

    async def _may_share(
        self, principal: Principal, tenant: str, schema: str, permission: Permission
    ) -> bool:
        assert permission.entity_id is not None
        facts = await self.repo.facts(schema, permission.entity_id)
        if facts is None:
            return False
        grants = (*await self.of_tenant(tenant), *await self.repo.for_entity(schema, facts.id))
        return decide(principal, tenant, Operation.SHARE, facts, grants).allowed

    async def find(
        self, principal: Principal, tenant: str, entity_id: str | None, assignee: object
    ) -> list[StoredPermission]:
        admin = may(principal, tenant, TenantOperation.MANAGE_ACCESS)
        if not admin:
            raise AccessDenied(admin.reason)
        schema = await self.tenants.schema(tenant, create=False)
        key = assignee_key(assignee) if assignee is not None else None
        rows = await self.repo.find(schema, entity_id=entity_id, assignee=key)
        return [StoredPermission(p, by, at) for p, (by, at) in rows]


def permission_body(stored: StoredPermission, terms: TermMap) -> dict[str, Any]:
    p = stored.permission
    target: dict[str, Any] = {}
    if p.entity_id is not None:
        target["entity"] = p.entity_id
    if p.types is not None:
        target["types"] = sorted(terms.compact_type(t) for t in p.types)
    if p.scopes is not None:
        target["scopes"] = [scope_pattern_text(m) for m in p.scopes]
    return {
        "id": p.id,
        "assignee": assignee_body(p.assignee),
        "action": p.action.name.lower(),
        "target": target,
        "personal": p.personal,
        "createdBy": stored.created_by,
        "createdAt": stored.created_at,
    }
