"""Every route has a declared access rule (auth/rules.py), and the rules are what they say.

* The application's routes (HEAD and the optional trailing slash aside) and ``RULES`` name the
  same set: a route without a rule fails here instead of landing as an open door.
* A role × route matrix, generated from the table, for the rules the middleware decides (tenant
  rules) and the open ones: each of anonymous, reader, writer, steward, admin, operator, a
  citizen, an API key and a writer of another tenant gets 401/403 exactly where the rule says,
  and never 401/403 where it allows.
* With authentication off nothing is refused (the default stays as before).
"""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient, TestServer

from city_os.api.rules import route_key
from city_os.app import create_app
from city_os.auth.rules import RULES, Open, Tenant, TenantRight
from city_os.ngsiv2.routes import PREFIXES as V2_PREFIXES
from tests.conftest import test_settings as settings_for
from tests.integration.auth.conftest import as_user
from tests.integration.auth.issuer import LocalIssuer

Client = TestClient  # type: ignore[type-arg]
_PARAMS = {
    "type": "Thing",
    "version": "1",
    "attribute": "height",
    "contextId": "urn:x:none",
}


def app_routes() -> set[tuple[str, str]]:
    app = create_app(settings_for())
    return {
        route_key(r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.method != "HEAD" and r.resource is not None
    }


def test_every_route_has_a_rule() -> None:
    routes = app_routes()
    assert sorted(routes - set(RULES)) == [], "routes without an access rule"
    assert sorted(set(RULES) - routes) == [], "rules naming no route"


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: _PARAMS.get(m.group(1), "x"), path)


# Who is allowed by a tenant right, by principal name (roles in the tested tenant).
ALLOWED = {
    TenantRight.READ: {"reader", "writer", "steward", "admin"},
    TenantRight.WRITE: {"writer", "admin"},
    TenantRight.STEWARD: {"steward", "admin"},
    TenantRight.OPERATE: {"operator"},
}


async def principals(
    client: Client, issuer: LocalIssuer, citizens: LocalIssuer, tenant: str
) -> dict[str, dict[str, str]]:
    admin = as_user(issuer, tenant, "admin", sub="admin")
    resp = await client.post(
        "/cityos/v1/apikeys",
        json={"name": "sensor", "operations": ["read", "create"]},
        headers=admin,
    )
    assert resp.status == 201, await resp.json()
    key = (await resp.json())["key"]
    operator = issuer.token(roles=["operator"], sub="operator")
    return {
        "anonymous": {"NGSILD-Tenant": tenant},
        "reader": as_user(issuer, tenant, "reader", sub="reader"),
        "writer": as_user(issuer, tenant, "writer", sub="writer"),
        "steward": as_user(issuer, tenant, "steward", sub="steward"),
        "admin": admin,
        "operator": {"Authorization": f"Bearer {operator}", "NGSILD-Tenant": tenant},
        "citizen": {
            "Authorization": f"Bearer {citizens.token(sub='citizen')}",
            "NGSILD-Tenant": tenant,
        },
        "apikey": {"X-API-Key": key, "NGSILD-Tenant": tenant},
        "outsider": as_user(issuer, "other-" + tenant, "admin", sub="x")
        | {"NGSILD-Tenant": tenant},
    }


async def test_role_route_matrix(
    secured: Client, issuer: LocalIssuer, citizens: LocalIssuer, tenant: str
) -> None:
    who = await principals(secured, issuer, citizens, tenant)
    checked = 0
    for (method, path), rule in sorted(RULES.items()):
        if not isinstance(rule, Tenant | Open):
            continue
        for name, headers in who.items():
            if path.startswith(V2_PREFIXES):  # the NGSIv2 face names its tenant so
                headers = headers | {"Fiware-Service": tenant}
            resp = await secured.request(method, concrete(path), json={}, headers=headers)
            refused = resp.status in (401, 403)
            if isinstance(rule, Open):
                expected: int | None = None
            elif name in ALLOWED[rule.right]:
                expected = None
            else:
                expected = 401 if name == "anonymous" else 403
            if expected is None:
                assert not refused, (method, path, name, resp.status, await resp.text())
            else:
                assert resp.status == expected, (method, path, name, resp.status)
                body = await resp.json()
                if "error" in body:  # the NGSIv2 face renders its own error shape
                    assert body["error"] in ("Unauthorized", "Forbidden", "AccessDenied"), body
                else:
                    assert body["type"].endswith(("Unauthorized", "AccessDenied")), body
                if expected == 401:
                    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            checked += 1
    assert checked > 100


@pytest.fixture
async def open_app() -> Client:  # type: ignore[misc]
    async with TestClient(TestServer(create_app(settings_for()))) as c:
        yield c


async def test_nothing_refused_with_authentication_off(open_app: Client, tenant: str) -> None:
    for (method, path), rule in sorted(RULES.items()):
        if isinstance(rule, Tenant):
            resp = await open_app.request(
                method, concrete(path), json={}, headers={"NGSILD-Tenant": tenant}
            )
            assert resp.status not in (401, 403), (method, path)
