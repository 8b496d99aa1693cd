"""Claims → principal: role claim forms, tenant trust, assignee keys, actor attributes; and the
CITYOS_OIDC_ISSUERS setting, with the errors that stop start-up."""

from __future__ import annotations

import pytest

from city_os.auth.issuers import Issuer, parse_issuers
from city_os.auth.oidc import principal_from_claims
from city_os.auth.principal import ANONYMOUS, UNRESTRICTED, KeyScope, Principal, parse_roles

ISS = "https://idp.saga.example/realms/staff"


@pytest.mark.parametrize(
    ("claim", "roles", "operator"),
    [
        (
            ["writer@saga", "reader", "operator", "nonsense", "admin@"],
            {"saga": {"writer"}, "": {"reader", "admin"}},
            True,
        ),
        (
            {"saga": ["admin", "steward"], "kyoto": "reader"},
            {"saga": {"admin", "steward"}, "kyoto": {"reader"}},
            False,
        ),
        ("writer@saga", {"saga": {"writer"}}, False),
        (None, {}, False),
        (42, {}, False),
        (["operator@saga"], {}, False),  # operator is a platform role, not a tenant's
    ],
)
def test_role_claims(claim: object, roles: dict[str, set[str]], operator: bool) -> None:
    parsed, is_operator, _ = parse_roles(claim)
    assert {t: set(r) for t, r in parsed.items()} == roles
    assert is_operator is operator


def test_an_issuer_for_some_tenants() -> None:
    issuer = Issuer(ISS, "city-os", frozenset({"saga"}), roles_claim="realm_access.roles")
    claims = {
        "sub": "u1",
        "azp": "dashboard",
        "exp": 2_000_000_000,
        "realm_access": {"roles": ["admin@saga", "admin@kyoto", "operator"]},
        "groups": ["disaster"],
    }
    p = principal_from_claims(claims, issuer)
    assert p.roles_in("saga") == {"admin"}
    assert p.roles_in("kyoto") == set()  # not trusted there
    assert p.operator is False  # only from an issuer trusted for every tenant
    assert p.assignee_keys("saga") == {
        "public",
        "authenticated",
        f"subject:{ISS}#u1",
        "client:dashboard",
        "group:disaster",
        "group:admin@saga",
        "group:admin@kyoto",
        "group:operator",
    }
    assert p.assignee_keys("kyoto") == {"public"}
    assert p.actor == {"cityosactor": f"oidc:{ISS}#u1", "cityosclient": "dashboard"}
    assert p.rate_key == f"subject:{ISS}#u1"


def test_other_principals() -> None:
    key = Principal(api_key=KeyScope("k1", "saga", frozenset({"read"})))
    assert key.assignee_keys("saga") == {"public", "apikey:k1"}
    assert key.assignee_keys("kyoto") == {"public"}
    assert key.actor == {"cityosactor": "apikey:k1"}
    assert ANONYMOUS.assignee_keys("saga") == {"public"}
    assert ANONYMOUS.actor == {"cityosactor": "anonymous"}
    assert ANONYMOUS.rate_key is None
    assert UNRESTRICTED.actor == {"cityosactor": "local"}


def test_issuers_setting() -> None:
    raw = (
        f'[{{"issuer": "{ISS}", "audience": "city-os", "tenants": ["*"]}},'
        ' {"issuer": "https://idp.saga.example/realms/citizens", "audience": "city-os",'
        ' "citizens": true, "rolesClaim": "realm_access.roles"}]'
    )
    issuers = parse_issuers(raw)
    assert issuers[ISS].tenants is None
    assert issuers[ISS].discovery_url == ISS + "/.well-known/openid-configuration"
    citizens = issuers["https://idp.saga.example/realms/citizens"]
    assert citizens.citizens and citizens.tenants == {""}
    assert citizens.roles_claim == "realm_access.roles"
    assert parse_issuers("") == {}


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("{", "not JSON"),
        ('{"issuer": "x"}', "JSON list"),
        ('["x"]', "not an object"),
        ('[{"issuer": "idp", "audience": "a"}]', "http(s) URL"),
        ('[{"issuer": "https://i/#x", "audience": "a"}]', "without a fragment"),
        ('[{"issuer": "https://i", "audience": ""}]', "audience"),
        ('[{"issuer": "https://i", "audience": "a", "tenants": "saga"}]', "tenants must be"),
        ('[{"issuer": "https://i", "audience": "a", "citizens": "yes"}]', "true or false"),
        ('[{"issuer": "https://i", "audience": "a", "colour": 1}]', "unknown members"),
        (
            '[{"issuer": "https://i", "audience": "a"}, {"issuer": "https://i", "audience": "b"}]',
            "twice",
        ),
    ],
)
def test_bad_issuers_setting(raw: str, error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("(", r"\(").replace(")", r"\)")):
        parse_issuers(raw)
