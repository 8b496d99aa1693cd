"""A subscription owner's rights as they are now, for the notifier to decide each delivery.

Layer: auth/ (service over ``store/postgres/auth_identities.py`` and the API key store). A
token is gone after the request that created a subscription, so its roles used to be frozen in
the subscription. The rule now (docs/access-control.md, "Subscriptions"):

* an **API key** owner acts as the key is now: revoked or expired, the subscription notifies
  nothing; otherwise its current operations and types count;
* an **OIDC** owner has the tenant roles and groups of the **latest token the broker verified**
  for that user (through any API, for any tenant; ``seen`` records them). Those lapse
  ``grace`` seconds after that token expired — an owner who has not come back for that long
  keeps only what names them personally (their permissions, their own data as a citizen) —
  so a role withdrawn at the IdP stops counting at the owner's next sign-in, or at the latest
  after the grace. The client (whose consents count) and the citizen flag stay those of the
  creation: a consent given to one service does not flow to another client of the same user;
* no record (a subscription made before this rule, or an owner never seen since): the snapshot
  taken at creation.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from city_os.auth.principal import KeyScope, Principal
from city_os.auth.subscribers import owner_key, owner_principal
from city_os.store.postgres.auth_identities import IdentityRepository
from city_os.store.postgres.auth_keys import ApiKeyRepository

_MEMO_SIZE = 10_000
_EXPIRY_STEP = 600.0  # a later token's expiry is recorded when it moves by this much


class OwnerRights:
    def __init__(
        self, identities: IdentityRepository, keys: ApiKeyRepository, grace: float
    ) -> None:
        self._identities = identities
        self._keys = keys
        self.grace = grace
        # owner key → (roles and groups, expiry) recorded by this process
        self._recorded: OrderedDict[str, tuple[Any, float]] = OrderedDict()

    async def seen(self, principal: Principal) -> None:
        """Record a verified token's roles and groups (only when they or, by a step, its
        expiry changed: a token is verified once, and users keep their roles for long)."""
        key = owner_key(principal)
        if key is None or principal.api_key is not None:
            return
        roles = {t: sorted(r) for t, r in sorted(principal.roles.items())}
        groups = sorted(principal.groups)
        facts = (tuple((t, tuple(r)) for t, r in roles.items()), tuple(groups))
        expires = principal.expires or 0.0
        recorded = self._recorded.get(key)
        if recorded is not None and recorded[0] == facts and expires < recorded[1] + _EXPIRY_STEP:
            return
        await self._identities.record(key, roles, groups, principal.expires)
        self._recorded[key] = (facts, expires)
        self._recorded.move_to_end(key)
        if len(self._recorded) > _MEMO_SIZE:
            self._recorded.popitem(last=False)

    async def principal(
        self, owner: dict[str, Any], tenant: str, now: float | None = None
    ) -> Principal | None:
        """Whom to decide a delivery for; None: the owner has no rights at all any more (its
        API key was revoked or expired)."""
        now = time.time() if now is None else now
        key = owner.get("apiKey")
        if key is not None:
            stored = await self._keys.get(key["id"])
            if stored is None or stored.revoked_at is not None or stored.tenant != tenant:
                return None
            if stored.expires_at is not None and stored.expires_at.timestamp() <= now:
                return None
            scope = KeyScope(
                stored.id, tenant, frozenset(stored.operations), frozenset(stored.types)
            )
            return Principal(api_key=scope, tenants=frozenset({tenant}))
        snapshot = owner_principal(owner, tenant)
        identity = await self._identities.latest(owner["key"])
        if identity is None:
            return snapshot
        expires = identity.token_expires_at
        lapsed = expires is not None and expires.timestamp() + self.grace < now
        roles = frozenset() if lapsed else frozenset(identity.roles.get(tenant, ()))
        return Principal(
            subject=snapshot.subject,
            issuer=snapshot.issuer,
            client=snapshot.client,
            roles={tenant: roles},
            groups=frozenset() if lapsed else frozenset(identity.groups),
            tenants=frozenset({tenant}),
            citizen=snapshot.citizen,
        )
