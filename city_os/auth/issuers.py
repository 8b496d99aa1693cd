"""The trusted OIDC issuers, parsed from ``CITYOS_OIDC_ISSUERS`` (a JSON list).

Layer: auth/ (pure). Each entry::

    {"issuer": "https://idp.city.example/realms/city",   # `iss`, exactly
     "audience": "city-os",                               # `aud` must contain it
     "tenants": ["*"],                                    # tenants its users count in
     "rolesClaim": "realm_access.roles",                  # dotted path; default "roles"
     "groupsClaim": "groups",                             # default "groups"
     "citizens": false}                                   # a citizens' IdP (My Number Card)

``operator`` is honoured only from an issuer trusted for every tenant (``"*"``). A malformed
value stops start-up naming the setting, like any other setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from city_os.auth.principal import ALL_TENANTS

_MEMBERS = {"issuer", "audience", "tenants", "rolesClaim", "groupsClaim", "citizens"}


@dataclass(frozen=True, slots=True)
class Issuer:
    issuer: str
    audience: str
    tenants: frozenset[str] | None  # None = every tenant
    roles_claim: str = "roles"
    groups_claim: str = "groups"
    citizens: bool = False

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def parse_issuers(raw: str) -> dict[str, Issuer]:
    """Issuers by ``iss``; ValueError naming what is wrong."""
    if not raw.strip():
        return {}
    try:
        items = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(items, list):
        raise ValueError("expected a JSON list of issuer objects")
    out: dict[str, Issuer] = {}
    for n, item in enumerate(items):
        issuer = _issuer(item, n)
        if issuer.issuer in out:
            raise ValueError(f"issuer {issuer.issuer} is listed twice")
        out[issuer.issuer] = issuer
    return out


def _issuer(item: Any, n: int) -> Issuer:
    where = f"issuer #{n + 1}"
    if not isinstance(item, dict):
        raise ValueError(f"{where} is not an object")
    unknown = set(item) - _MEMBERS
    if unknown:
        raise ValueError(f"{where}: unknown members {', '.join(sorted(unknown))}")
    iss, audience = item.get("issuer"), item.get("audience")
    if not isinstance(iss, str) or not iss.startswith(("https://", "http://")) or "#" in iss:
        raise ValueError(f"{where}: issuer must be an http(s) URL without a fragment")
    if not isinstance(audience, str) or not audience:
        raise ValueError(f"{where}: audience must be a non-empty string")
    tenants = item.get("tenants", [""])
    if not isinstance(tenants, list) or not all(isinstance(t, str) for t in tenants):
        raise ValueError(f"{where}: tenants must be a list of tenant names or '*'")
    claims = {k: item.get(k, d) for k, d in (("rolesClaim", "roles"), ("groupsClaim", "groups"))}
    if not all(isinstance(v, str) and v for v in claims.values()):
        raise ValueError(f"{where}: rolesClaim and groupsClaim must be dotted claim paths")
    citizens = item.get("citizens", False)
    if not isinstance(citizens, bool):
        raise ValueError(f"{where}: citizens must be true or false")
    return Issuer(
        issuer=iss,
        audience=audience,
        tenants=None if ALL_TENANTS in tenants else frozenset(tenants),
        roles_claim=claims["rolesClaim"],
        groups_claim=claims["groupsClaim"],
        citizens=citizens,
    )
