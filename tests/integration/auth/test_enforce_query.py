"""Queries, counts, purge and discovery under permissions (phase 2): for random permissions
(seeded), every page and ``NGSILD-Results-Count`` equal those of an unrestricted query over only
the entities the caller may read — the oracle is reading each entity by id — and ``/types`` and
``/attributes`` show only what those entities carry; the same for a query of any type by a
string equality (pages picked from attr_values); a purge deletes only what the caller may
delete. (A service's query under a consent is logged: test_enforce_subscriptions.py.)"""

from __future__ import annotations

import random
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.auth.conftest import as_user
from tests.integration.auth.issuer import LocalIssuer

Client = TestClient  # type: ignore[type-arg]
ENTITIES = "/ngsi-ld/v1/entities"
PERMISSIONS = "/cityos/v1/permissions"
TYPES = ("Shelter", "AED", "Hydrant")
SCOPES = ("/Saga/Kase", "/Saga/Ogi", "/Fukuoka", None)


def population(rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for n in range(40):
        entity: dict[str, Any] = {
            "id": f"urn:ngsi-ld:Thing:{n:03d}",
            "type": rng.choice(TYPES),
            rng.choice(("height", "capacity", "colour")): {"type": "Property", "value": n},
        }
        scope = rng.choice(SCOPES)
        if scope is not None:
            entity["scope"] = scope
        out.append(entity)
    return out


def random_grant(rng: random.Random, sub: str, issuer: str) -> dict[str, Any]:
    target: dict[str, Any] = {}
    if rng.random() < 0.7:
        target["types"] = rng.sample(TYPES, rng.randint(1, 2))
    if not target or rng.random() < 0.5:
        target["scopes"] = rng.sample(["/Saga/#", "/Saga/Ogi", "/Fukuoka", "/+/Kase"], 1)
    return {
        "assignee": {"kind": "subject", "value": sub, "issuer": issuer},
        "action": "read",
        "target": target,
    }


async def ids_of(
    client: Client, headers: dict[str, str], limit: int, query: dict[str, str] | None = None
) -> tuple[list[str], int]:
    """Every page of ``query`` (default ``type=…``) with ``count=true``: the ids in order and
    the count."""
    ids: list[str] = []
    counts = set()
    offset = 0
    query = query or {"type": ",".join(TYPES)}
    while True:
        resp = await client.get(
            ENTITIES,
            params={**query, "limit": limit, "offset": offset, "count": "true"},
            headers=headers,
        )
        assert resp.status == 200, await resp.json()
        counts.add(int(resp.headers["NGSILD-Results-Count"]))
        page = [e["id"] for e in await resp.json()]
        ids += page
        if len(page) < limit:
            break
        offset += limit
    assert len(counts) == 1  # the same count on every page
    return ids, counts.pop()


async def readable_ids(
    client: Client, headers: dict[str, str], entities: list[dict[str, Any]]
) -> set[str]:
    """The oracle: the entities the caller reads by id."""
    found = set()
    for e in entities:
        got = await client.get(f"{ENTITIES}/{e['id']}", headers=headers)
        assert got.status in (200, 404)
        if got.status == 200:
            found.add(e["id"])
    return found


@pytest.mark.parametrize("seed", range(5))
async def test_pages_and_counts_equal_readable_only(
    secured: Client, issuer: LocalIssuer, tenant: str, seed: int
) -> None:
    rng = random.Random(seed)
    admin = as_user(issuer, tenant, "admin", sub="admin")
    entities = population(rng)
    resp = await secured.post("/ngsi-ld/v1/entityOperations/create", json=entities, headers=admin)
    assert resp.status == 201, await resp.text()
    user = as_user(issuer, tenant, sub="user")
    for _ in range(rng.randint(1, 2)):
        grant = random_grant(rng, "user", issuer.url)
        assert (await secured.post(PERMISSIONS, json=grant, headers=admin)).status == 201
    shared = rng.choice(entities)["id"]  # and one entity permission
    one = {
        "assignee": {"kind": "subject", "value": "user", "issuer": issuer.url},
        "action": "read",
        "target": {"entity": shared},
    }
    assert (await secured.post(PERMISSIONS, json=one, headers=admin)).status == 201

    readable = await readable_ids(secured, user, entities)
    assert shared in readable and len(readable) < len(entities)  # a real restriction

    everything, total = await ids_of(secured, admin, 1000)
    assert total == len(entities)
    expected = [i for i in everything if i in readable]
    for limit in (1, 3, 7, 1000):
        ids, count = await ids_of(secured, user, limit)
        assert ids == expected
        assert count == len(expected)

    # discovery: only the types and attributes of readable entities
    types = await (await secured.get("/ngsi-ld/v1/types", headers=user)).json()
    by_id = {e["id"]: e for e in entities}
    assert sorted(types["typeList"]) == sorted({by_id[i]["type"] for i in readable})
    attrs = await (await secured.get("/ngsi-ld/v1/attributes", headers=user)).json()
    seen = {k for i in readable for k in by_id[i] if k not in ("id", "type", "scope")}
    assert sorted(attrs["attributeList"]) == sorted(seen)
    for kind in TYPES:
        info = await secured.get(f"/ngsi-ld/v1/types/{kind}", headers=user)
        n = sum(1 for i in readable if by_id[i]["type"] == kind)
        if n:
            assert (await info.json())["entityCount"] == n
        else:
            assert info.status == 404


DISTRICTS = ("urn:ngsi-ld:District:kase", "urn:ngsi-ld:District:ogi")


@pytest.mark.parametrize("seed", range(3))
async def test_untyped_string_query_equals_readable_only(
    secured: Client, issuer: LocalIssuer, tenant: str, seed: int
) -> None:
    """q=refDistrict=="…" of any type: the store picks the page from the entities with that
    object and checks each against the readable scope (store/postgres/query.py,
    ``_driven_page``). With a scope grant and one entity permission, a type has readable and
    unreadable matches; every page and the count equal the admin's over the readable only."""
    rng = random.Random(seed)
    admin = as_user(issuer, tenant, "admin", sub="admin")
    entities = population(rng)
    for e in entities:
        e["refDistrict"] = {"type": "Relationship", "object": rng.choice(DISTRICTS)}
        if rng.random() < 0.2:
            e["type"] = [e["type"], "Hydrant" if e["type"] != "Hydrant" else "AED"]
    resp = await secured.post("/ngsi-ld/v1/entityOperations/create", json=entities, headers=admin)
    assert resp.status == 201, await resp.text()
    user = {"kind": "subject", "value": "user", "issuer": issuer.url}
    scope = {"scopes": [rng.choice(["/Saga/#", "/Fukuoka"])]}
    for target in (scope, {"entity": rng.choice(entities)["id"]}):
        grant = {"assignee": user, "action": "read", "target": target}
        assert (await secured.post(PERMISSIONS, json=grant, headers=admin)).status == 201
    headers = as_user(issuer, tenant, sub="user")
    readable = await readable_ids(secured, headers, entities)

    query = {"q": f'refDistrict=="{DISTRICTS[0]}"'}
    everything, total = await ids_of(secured, admin, 1000, query)
    matches = {e["id"]: e for e in entities if e["refDistrict"]["object"] == DISTRICTS[0]}
    assert sorted(everything) == everything and set(everything) == set(matches)
    assert total == len(matches)

    def types(ids: set[str]) -> set[str]:
        kinds = [matches[i]["type"] for i in ids]
        return {t for k in kinds for t in ([k] if isinstance(k, str) else k)}

    # a type of which some matches are readable and some not
    assert types(set(matches) & readable) & types(set(matches) - readable)
    expected = [i for i in everything if i in readable]
    for limit in (1, 3, 7, 1000):
        assert await ids_of(secured, headers, limit, query) == (expected, len(expected))


async def test_purge_only_deletable(secured: Client, issuer: LocalIssuer, tenant: str) -> None:
    admin = as_user(issuer, tenant, "admin", sub="admin")
    entities = [
        {"id": f"urn:ngsi-ld:Shelter:{n}", "type": "Shelter", "scope": s}
        for n, s in enumerate(["/Saga", "/Saga", "/Fukuoka", "/Fukuoka"])
    ]
    resp = await secured.post("/ngsi-ld/v1/entityOperations/create", json=entities, headers=admin)
    assert resp.status == 201
    for action, scope in (("write", "/Saga"), ("read", "/Fukuoka")):
        grant = {
            "assignee": {"kind": "subject", "value": "user", "issuer": issuer.url},
            "action": action,
            "target": {"scopes": [scope]},
        }
        assert (await secured.post(PERMISSIONS, json=grant, headers=admin)).status == 201
    user = as_user(issuer, tenant, sub="user")
    resp = await secured.delete(ENTITIES, params={"type": "Shelter"}, headers=user)
    assert resp.status == 204, await resp.text()
    left, count = await ids_of(secured, admin, 100)
    assert left == ["urn:ngsi-ld:Shelter:2", "urn:ngsi-ld:Shelter:3"] and count == 2
